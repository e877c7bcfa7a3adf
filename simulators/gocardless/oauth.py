"""The partner app's OAuth server (API-NOTES-GOCARDLESS §1.5): settings, authorisation codes
and the access tokens they become.

A code is bound to the client, the redirect URI, the organisation that consented and the
scope; it is single-use and expires ``CODE_TTL`` after issue on the simulator's clock. Access
tokens do not expire (no refresh flow, notes §1.5 item 5) until revoked through the control
API. Not locked itself: callers hold the shared state lock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import iso_timestamp
from .errors import OAuthError

CODE_TTL = timedelta(minutes=10)
SCOPES = ("read_write", "read_only")
CONSENT_MODES = ("interactive", "allow", "deny")
DEFAULT_CLIENT_ID = "sim-gc-client-id"
DEFAULT_CLIENT_SECRET = "sim-gc-client-secret"
# The product's default callback (config/settings.py: PUBLIC_BASE_URL + path) and the one
# its tests use.
DEFAULT_REDIRECT_URIS = (
    "http://127.0.0.1:8000/connect/gocardless/callback/",
    "http://localhost:8000/connect/gocardless/callback/",
    "https://connector.example.test/connect/gocardless/callback/",
)
SETTINGS = ("client_id", "client_secret", "redirect_uris", "app_name", "consent",
            "consent_organisation")


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    organisation_id: str
    scope: str
    email: str
    issued_at: datetime
    used: bool = False


@dataclass
class Token:
    access_token: str
    client_id: str
    organisation_id: str
    scope: str
    email: str
    issued_at: datetime
    revoked_at: datetime | None = None

    def describe(self) -> dict:
        return {"access_token": self.access_token, "client_id": self.client_id,
                "organisation_id": self.organisation_id, "scope": self.scope,
                "email": self.email, "issued_at": iso_timestamp(self.issued_at),
                "revoked_at": iso_timestamp(self.revoked_at) if self.revoked_at else None}


class OAuthServer:
    def __init__(self, clock, *, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET,
                 redirect_uris=DEFAULT_REDIRECT_URIS, consent: str = "interactive",
                 app_name: str = "Simulated partner app") -> None:
        self.clock = clock
        self.settings: dict = {}
        self.configure(client_id=client_id, client_secret=client_secret,
                       redirect_uris=list(redirect_uris), consent=consent, app_name=app_name,
                       consent_organisation=None)
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}

    def configure(self, **changes) -> dict:
        """client_id, client_secret, redirect_uris (a list; empty = any URI), app_name,
        consent ("interactive" | "allow" | "deny"), consent_organisation (OR… that
        consents when nobody chooses; None = the first organisation)."""
        for name, value in changes.items():
            if name not in SETTINGS:
                raise ValueError(f"unknown OAuth setting {name!r}; one of {', '.join(SETTINGS)}")
            if name == "consent" and value not in CONSENT_MODES:
                raise ValueError(f"consent must be one of {', '.join(CONSENT_MODES)}")
            if name == "redirect_uris":
                if isinstance(value, str) or not all(isinstance(u, str) for u in value):
                    raise ValueError("redirect_uris must be a list of URLs")
                value = list(value)
            elif name in ("client_id", "client_secret", "app_name") and not (
                    isinstance(value, str) and value):
                raise ValueError(f"{name} must be a non-empty string")
        self.settings.update(changes)
        return dict(self.settings)

    def redirect_uri_registered(self, redirect_uri: str) -> bool:
        registered = self.settings["redirect_uris"]
        return bool(redirect_uri) and (not registered or redirect_uri in registered)

    def forget(self) -> None:
        self.codes.clear()
        self.tokens.clear()

    # -- codes and tokens ---------------------------------------------------------------

    def issue_code(self, *, redirect_uri: str, organisation_id: str, scope: str,
                   email: str) -> str:
        code = "sim-gc-code-" + secrets.token_urlsafe(24)
        self.codes[code] = Code(self.settings["client_id"], redirect_uri, organisation_id,
                                scope, email, self.clock.now())
        return code

    def exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict:
        """One ``POST /oauth/access_token``; raises OAuthError for every refusal."""
        client_id, client_secret = self._client_credentials(form, basic)
        if client_id != self.settings["client_id"] or not secrets.compare_digest(
                client_secret, self.settings["client_secret"]):
            headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if basic else {}
            raise OAuthError(401, "invalid_client", "Client authentication failed.", headers)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(400, "invalid_request", "grant_type is required.")
        if grant != "authorization_code":
            raise OAuthError(400, "unsupported_grant_type",
                             "Only authorization_code is supported.")
        for name in ("code", "redirect_uri"):
            if not form.get(name):
                raise OAuthError(400, "invalid_request", f"{name} is required.")
        now = self.clock.now()
        code = self.codes.get(form["code"])
        if (code is None or code.used or code.client_id != client_id
                or now - code.issued_at > CODE_TTL):
            raise OAuthError(400, "invalid_grant",
                             "The authorization code is invalid, expired or already used.")
        if form["redirect_uri"] != code.redirect_uri:
            raise OAuthError(400, "invalid_grant",
                             "The redirect_uri differs from the one of the authorisation.")
        code.used = True
        token = Token("sim-gc-oauth-" + secrets.token_urlsafe(32), client_id,
                      code.organisation_id, code.scope, code.email, now)
        self.tokens[token.access_token] = token
        return {"access_token": token.access_token, "token_type": "bearer",
                "scope": token.scope, "organisation_id": token.organisation_id,
                "email": token.email}

    @staticmethod
    def _client_credentials(form, basic) -> tuple[str, str]:
        """client_secret_post (the form) or client_secret_basic; both at once must agree."""
        body = (form.get("client_id"), form.get("client_secret"))
        if basic is not None:
            if body[0] is not None and body[0] != basic[0]:
                raise OAuthError(400, "invalid_request",
                                 "client_id in the body and in Basic auth differ.")
            return basic
        if not body[0]:
            raise OAuthError(401, "invalid_client", "Client authentication failed.")
        return body[0], body[1] or ""

    def live_token(self, access_token: str) -> Token | None:
        token = self.tokens.get(access_token)
        return token if token is not None and token.revoked_at is None else None

    def revoke(self, access_token: str) -> dict:
        token = self.tokens[access_token]
        token.revoked_at = token.revoked_at or self.clock.now()
        return token.describe()

    def connected(self, organisation_id: str) -> bool:
        """Whether the app holds a live token for this organisation."""
        return any(t.organisation_id == organisation_id and t.revoked_at is None
                   for t in self.tokens.values())
