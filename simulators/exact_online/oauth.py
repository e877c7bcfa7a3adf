"""OAuth 2.0 as Exact runs it: single-use codes, 600 s access tokens, a 570 s refresh floor and
refresh tokens that rotate on every use (API-NOTES §1).

A *chain* is one user consent: it owns the current refresh token, remembers every refresh
token it has rotated away (so reuse can be told apart from garbage), and the time its latest
access token was issued (for the 570 s rule).

Exact keeps one chain per (app, Exact user): when the same user consents to the same app again
(another company of an accountant, a reconnect), the older chains become obsolete as soon as
the newer one is first used, for an API call or a refresh; the old chain's next refresh is
refused with 400 (API-NOTES addendum 2026-12, Invantive itgenoda494). Its access tokens
already issued run out on their own 600 s.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .errors import OAuthError

ACCESS_TTL = timedelta(seconds=600)
REFRESH_FLOOR = timedelta(seconds=570)
CODE_TTL = timedelta(minutes=3)
REFRESH_TTL = timedelta(days=30)

TOO_EARLY = "Rate limit exceeded: access_token not expired"
# The wording of a refused obsolete chain is not documented beyond "400 Bad Request"; the
# notes quote practitioners seeing "Old refresh token used" for it (API-NOTES addendum).
OBSOLETE = "Old refresh token used."


@dataclass
class Chain:
    id: str
    client_id: str
    user_id: str
    # None = every division the user has, now or later; else the divisions consented to.
    divisions: list[int] | None
    refresh_token: str
    refresh_issued_at: datetime
    access_issued_at: datetime
    old_refresh_tokens: set[str] = field(default_factory=set)
    # Consent order (codes can be exchanged within one tick of a frozen clock).
    seq: int = 0
    created_at: datetime | None = None
    # Set on the chain's first use (API call or refresh); an older chain of the same user and
    # app is obsoleted at that moment.
    used: bool = False
    obsolete: bool = False


@dataclass
class Code:
    client_id: str
    user_id: str
    divisions: list[int] | None
    redirect_uri: str
    issued_at: datetime
    used: bool = False


@dataclass
class AccessToken:
    chain: Chain
    expires_at: datetime


class OAuthServer:
    """Not locked itself: callers hold ``State.lock``."""

    def __init__(self, clock, client_id: str, client_secret: str) -> None:
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.codes: dict[str, Code] = {}
        self.chains: dict[str, Chain] = {}
        self.by_refresh: dict[str, Chain] = {}
        self.access: dict[str, AccessToken] = {}

    def issue_code(
        self, *, client_id: str, user_id: str, divisions: list[int] | None, redirect_uri: str
    ) -> str:
        code = "sim-code-" + secrets.token_urlsafe(24)
        self.codes[code] = Code(client_id, user_id, divisions, redirect_uri, self.clock.now())
        return code

    def token(self, form: dict[str, str]) -> dict[str, str]:
        """Handle one ``POST /api/oauth2/token``; raises OAuthError for every refusal."""
        if (form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):
            raise OAuthError(400, "invalid_request")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        raise OAuthError(400, "unsupported_grant_type")

    def _exchange_code(self, form: dict[str, str]) -> dict[str, str]:
        now = self.clock.now()
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or now - code.issued_at > CODE_TTL:
            raise OAuthError(400, "invalid_grant", "The authorization code is invalid or expired.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "invalid_grant", "The redirect_uri does not match.")
        code.used = True  # single use, even if the rest fails
        chain = Chain(
            id=secrets.token_hex(8),
            client_id=code.client_id,
            user_id=code.user_id,
            divisions=code.divisions,
            refresh_token="",
            refresh_issued_at=now,
            access_issued_at=now,
            seq=len(self.chains) + 1,
            created_at=now,
        )
        self.chains[chain.id] = chain
        return self._issue(chain, now)

    def _refresh(self, form: dict[str, str]) -> dict[str, str]:
        now = self.clock.now()
        token = form.get("refresh_token", "")
        chain = self.by_refresh.get(token)
        if chain is None:
            raise OAuthError(
                400, "invalid_grant", "Token is not allowed, because of invalid or empty chainId"
            )
        if chain.obsolete:
            raise OAuthError(400, "invalid_grant", OBSOLETE)
        if token != chain.refresh_token:
            raise OAuthError(401, "unauthorized_client", "Old refresh token used.")
        expires = chain.refresh_issued_at + REFRESH_TTL
        if now > expires:
            raise OAuthError(
                400,
                "invalid_request",
                f"The refresh token expired at {_us_time(expires)} and it is now {_us_time(now)}.",
            )
        if now < chain.access_issued_at + REFRESH_FLOOR:
            raise OAuthError(400, "access_denied", TOO_EARLY,
                             headers={"Reason": f"TooEarlyToRefreshTokens: {TOO_EARLY}"})
        chain.old_refresh_tokens.add(chain.refresh_token)
        self.mark_used(chain)
        return self._issue(chain, now)

    def _issue(self, chain: Chain, now: datetime) -> dict[str, str]:
        access = "sim-at-" + secrets.token_urlsafe(32)
        refresh = "sim-rt-" + secrets.token_urlsafe(32)
        self.access[access] = AccessToken(chain, now + ACCESS_TTL)
        chain.refresh_token = refresh
        chain.refresh_issued_at = now
        chain.access_issued_at = now
        self.by_refresh[refresh] = chain
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": str(int(ACCESS_TTL.total_seconds())),
            "refresh_token": refresh,
        }

    def authenticate(self, access_token: str) -> Chain | None:
        """The chain behind a live access token; None if unknown or expired. Using a chain's
        access token is its first use too."""
        entry = self.access.get(access_token)
        if entry is None or self.clock.now() >= entry.expires_at:
            return None
        self.mark_used(entry.chain)
        return entry.chain

    def mark_used(self, chain: Chain) -> None:
        """The first use of ``chain`` obsoletes every older chain of the same user and app."""
        if chain.used:
            return
        chain.used = True
        for other in self.chains.values():
            if (other is not chain and other.client_id == chain.client_id
                    and other.user_id == chain.user_id and other.seq < chain.seq):
                other.obsolete = True

    def chains_of(self, user_id: str) -> list[dict]:
        """The chains of one user, oldest first (for the control API and tests)."""
        return [
            {"id": c.id, "used": c.used, "obsolete": c.obsolete,
             "created_at": c.created_at.isoformat() if c.created_at else None}
            for c in sorted(self.chains.values(), key=lambda c: c.seq)
            if c.user_id == user_id.lower()
        ]


def _us_time(dt: datetime) -> str:
    """Exact's wording uses US format: ``10/11/2022 9:18:20 PM``."""
    hour = dt.hour % 12 or 12
    return f"{dt.month}/{dt.day}/{dt.year} {hour}:{dt:%M:%S} {'AM' if dt.hour < 12 else 'PM'}"
