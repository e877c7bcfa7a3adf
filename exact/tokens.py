"""Token care: one refresh at a time per grant (an Exact user's chain, shared by every
connection of that user), across every process.

Exact's rules (API-NOTES §1): access tokens live 600 s; a new one may be requested only
≥ 570 s after the previous one; every refresh rotates the refresh token and re-using an old
one breaks the chain for good. So:

- A refresh runs inside ``transaction.atomic()`` holding a row lock on the grant
  (``SELECT … FOR UPDATE``; on SQLite the write lock). Whoever waits for the lock re-reads
  the row after getting it and, finding a fresh token, uses it instead of refreshing.
- We refresh only when the token is ≥ 572 s old: Exact's 570 s floor plus 2 s for clock skew.
  Exact measures from when it issued the token; we record the time we *received* it, which is
  later, so our count errs on the safe side. A refreshed token is therefore valid for ≥ 28 s
  after we start using it — enough for the request that needed it.
- The new pair and its issue time are saved in the same transaction as the lock.
- ``Old refresh token used``, ``invalid_grant``, an expired refresh token or revoked consent
  → the grant is broken and every connection using it ``needs_reauth`` (jobs stop), with an
  audit entry and an e-mail to each company's admins.
- A *lost* answer (timeout / reset on the token call) is treated the same way, with its own
  reason: Exact may well have rotated the chain and we never saw the new token. Retrying with
  the old refresh token could only get ``Old refresh token used`` (and, on some Exact apps,
  invalidate the token we never received), so we never retry; a person reconnects instead.
  The token call has a generous timeout (EXACT_TOKEN_TIMEOUT) to make this rare.
- ``TooEarlyToRefreshTokens`` means Exact still considers our access token valid (our clock
  runs ahead): we keep using it and try again 10 s later (not on every call: the token
  endpoint allows only 200 calls a day).
- 5xx/429 from the token endpoint: Exact refused explicitly, so the chain did not move; the
  error propagates, the connection stays connected and the next attempt refreshes.

The HTTP call to the token endpoint is ``exact.client.oauth_refresh`` (client.py is the only
module speaking HTTP to Exact). The client hands it in as ``token_endpoint``: the client needs
this module for its access tokens, so this module must not import the client back. The daily
keep-alive lives in exact/keepalive.py for the same reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from core.audit import Actor
from exact.connections import connection_require_usable, grant_mark_broken
from exact.errors import ExactNeedsReauth, ExactTokenError, ExactTokenLost
from exact.locks import lock_row
from exact.models import ExactConnection, ExactGrant, GrantStatus

logger = logging.getLogger(__name__)

EXACT_REFRESH_FLOOR = timedelta(seconds=570)
CLOCK_SKEW_MARGIN = timedelta(seconds=2)
REFRESH_AFTER = EXACT_REFRESH_FLOOR + CLOCK_SKEW_MARGIN
TOO_EARLY_RETRY = timedelta(seconds=10)
# A new pair whose commit failed with the database: how long to keep trying to store it.
RESCUE_SECONDS = 60
RESCUE_PAUSE = 1.0

LOST_REASON = (
    "The answer to a token refresh was lost ({detail}). Exact has probably rotated the "
    "refresh token already, so the stored one is no longer valid; it was not retried. "
    "Reconnect Exact Online to continue."
)


def token_is_fresh(grant: ExactGrant | None, *, now=None) -> bool:
    now = now or timezone.now()
    return bool(
        grant is not None
        and grant.access_token
        and grant.token_issued_at
        and now < grant.token_issued_at + REFRESH_AFTER
    )


def tokens_copy(*, source: ExactGrant, target: ExactGrant) -> None:
    """Give the caller's grant object what another process (or the lock) just read."""
    for name in (
        "access_token",
        "refresh_token",
        "token_issued_at",
        "access_expires_at",
        "last_refresh_at",
        "status",
        "status_reason",
    ):
        setattr(target, name, getattr(source, name))


# The refresh-token grant: ``(*, base_url, refresh_token) -> {"access_token", ...}``.
TokenEndpoint = Callable[..., dict]


def connection_access_token(
    *, connection: ExactConnection, token_endpoint: TokenEndpoint, after_401: bool = False
) -> str:
    """A valid access token for ``connection`` (its grant's), refreshing under the grant's
    lock when due."""
    connection_require_usable(connection=connection)
    grant = connection.grant if connection.grant_id else None
    if grant is None:
        raise ExactNeedsReauth(f"Exact Online for {connection.tenant} holds no consent")
    if not after_401 and token_is_fresh(grant):
        return grant.access_token
    fresh = token_refresh(
        grant_id=grant.pk, token_endpoint=token_endpoint, seen_token=grant.access_token
    )
    tokens_copy(source=fresh, target=grant)
    return grant.access_token


def token_refresh(
    *,
    grant_id: int,
    token_endpoint: TokenEndpoint,
    seen_token: str | None = None,
    force: bool = False,
    actor: Actor | None = None,
) -> ExactGrant:
    """Refresh the grant's tokens if (still) due; returns the re-read grant.

    ``seen_token``: the access token the caller holds; if the row has another one, someone
    refreshed meanwhile (or a new consent replaced the chain). ``force``: refresh even before
    the token is due (keep-alive); the 570 s floor still applies.
    """
    received: dict = {}
    try:
        with transaction.atomic():
            grant = lock_row(ExactGrant, grant_id)
            if grant.status == GrantStatus.BROKEN:
                # Stops a connection that joined after the chain broke, too (committed below).
                failure = grant.status_reason or "The Exact Online consent is no longer valid"
            elif not grant.refresh_token:
                raise ExactNeedsReauth("Exact Online is not connected")
            else:
                outcome = _refresh_locked(grant, token_endpoint=token_endpoint,
                                          seen_token=seen_token, force=force, received=received)
                if isinstance(outcome, ExactGrant):
                    return outcome
                failure = outcome
            # Committed (not rolled back): the broken state must survive the exception below.
            grant_mark_broken(grant=grant, reason=failure, actor=actor)
    except (OperationalError, InterfaceError):
        # Nothing rotated: the next call refreshes. Inside a caller's transaction the pair
        # cannot be written on its own (that transaction is lost with the database anyway).
        if not received or connection.in_atomic_block:
            raise
        return _tokens_rescue(grant_id=grant_id, **received)
    raise ExactNeedsReauth(failure)


def _refresh_locked(
    grant: ExactGrant, *, token_endpoint: TokenEndpoint, seen_token: str | None, force: bool,
    received: dict,
) -> ExactGrant | str:
    """The refresh itself, under the grant's lock: the grant (refreshed, or fresh enough),
    or why the chain is gone."""
    now = timezone.now()
    someone_else = seen_token is not None and grant.access_token != seen_token
    if someone_else and token_is_fresh(grant, now=now):
        return grant
    if not force and token_is_fresh(grant, now=now):
        return grant
    if grant.token_issued_at and now < grant.token_issued_at + REFRESH_AFTER:
        return grant  # forced, but Exact would refuse: too early
    # Raises ExactHostNotAllowed (nothing sent) for a custom host that is not allowed.
    base_url = grant.base_url
    try:
        tokens = token_endpoint(base_url=base_url, refresh_token=grant.refresh_token)
    except ExactTokenLost as exc:
        return LOST_REASON.format(detail=exc.args[0])
    except ExactTokenError as exc:
        if exc.too_early:
            _retry_later(grant, exc)
            return grant
        if not exc.chain_broken:
            raise
        return f"Exact refused the refresh token: {exc}"
    # Exact has rotated the chain: from here on the new pair must reach the database.
    received.update(tokens=tokens, issued_before=grant.token_issued_at)
    _tokens_store(grant, tokens)
    return grant


def _retry_later(grant: ExactGrant, exc: ExactTokenError) -> None:
    """Exact's clock says our token is younger than 570 s. Each refused call still counts
    against the 200 token calls a day, so move our notion of the issue time to retry in
    TOO_EARLY_RETRY instead of on every API call until then. Inside the lock."""
    logger.warning("exact: refresh refused as too early for grant %s: %s", grant.pk, exc)
    grant.token_issued_at = timezone.now() - REFRESH_AFTER + TOO_EARLY_RETRY
    grant.save(update_fields=["token_issued_at", "updated_at"])


def _tokens_rescue(*, grant_id: int, tokens: dict, issued_before) -> ExactGrant:
    """Exact rotated the chain and gave us the new pair, but the database went away before
    the pair was committed (a PostgreSQL restart or failover during the token call). The row
    still holds the refresh token Exact just retired, so without the pair the chain would be
    lost and a person would have to reconnect. This process still holds it: store it as soon
    as the database is back (for up to RESCUE_SECONDS), unless another process has stored a
    pair meanwhile (the row's issue time moved: compare-and-set). Found by the chaos month
    (docs/chaos.md); a process killed in that moment still loses the pair (LOST_REASON)."""
    deadline = time.monotonic() + RESCUE_SECONDS
    while True:
        connection.close()  # the one that died with the server
        try:
            issued = timezone.now()
            stored = ExactGrant.objects.filter(
                pk=grant_id, token_issued_at=issued_before
            ).update(
                access_token=tokens["access_token"],
                refresh_token=tokens["refresh_token"],
                token_issued_at=issued,
                access_expires_at=issued + timedelta(seconds=tokens["expires_in"]),
                last_refresh_at=issued,
                updated_at=issued,
            )
            if stored:
                logger.warning("exact: grant %s's new tokens stored after the database came "
                               "back", grant_id)
            return ExactGrant.objects.get(pk=grant_id)
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                logger.error("exact: grant %s's new tokens could not be stored: the database "
                             "stayed away", grant_id)
                raise
            time.sleep(RESCUE_PAUSE)


def _tokens_store(grant: ExactGrant, tokens: dict) -> None:
    """The new pair, in the transaction that holds the lock (Exact already rotated)."""
    issued = timezone.now()
    grant.access_token = tokens["access_token"]
    grant.refresh_token = tokens["refresh_token"]
    grant.token_issued_at = issued
    grant.access_expires_at = issued + timedelta(seconds=tokens["expires_in"])
    grant.last_refresh_at = issued
    grant.save(
        update_fields=[
            "access_token",
            "refresh_token",
            "token_issued_at",
            "access_expires_at",
            "last_refresh_at",
            "updated_at",
        ]
    )
    logger.info("exact: refreshed the tokens of grant %s", grant.pk)
