"""Keeping refresh tokens alive: Exact's refresh tokens die after 30 days unused, so a quiet
tenant (no sync needing a fresh access token) would lose its consent. A daily job refreshes
every grant (chain) a connected company uses that was not refreshed for a day.

This sits above both exact/tokens.py (the refresh under the row lock) and exact/client.py (the
token endpoint call), which is why it is not part of tokens.py: the client imports tokens.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from core.audit import Actor
from exact.client import oauth_refresh
from exact.connections import connection_require_usable
from exact.errors import ExactConnectionUnavailable
from exact.models import ConnectionStatus, ExactConnection, ExactGrant, GrantStatus
from exact.tokens import token_refresh, tokens_copy

logger = logging.getLogger(__name__)

# Refresh tokens die after 30 days unused; the keep-alive job refreshes anything older.
KEEPALIVE_AFTER = timedelta(days=1)


def token_keepalive(*, connection: ExactConnection) -> bool:
    """Refresh the grant of a connection whose tokens were not refreshed for a day, so the
    30-day refresh-token lifetime never runs out on a quiet tenant. Returns True if
    refreshed."""
    connection_require_usable(connection=connection)
    grant = connection.grant if connection.grant_id else None
    if grant is None:
        return False
    return grant_keepalive(grant=grant)


def grant_keepalive(*, grant: ExactGrant) -> bool:
    """Refresh one grant (shared by all its connections) not refreshed for a day."""
    last = grant.last_refresh_at or grant.token_issued_at
    if last and timezone.now() - last < KEEPALIVE_AFTER:
        return False
    fresh = token_refresh(
        grant_id=grant.pk,
        token_endpoint=oauth_refresh,
        force=True,
        actor=Actor.schedule("exact-keepalive"),
    )
    tokens_copy(source=fresh, target=grant)
    return fresh.token_issued_at != last


def tokens_keep_alive() -> int:
    """Every active grant that a connected company uses, once each (one chain, however many
    companies share it); returns how many were refreshed. A grant only inactive companies use
    is left alone (they send nothing to Exact). One grant's trouble (a broken chain, a host no
    longer allowed) is logged and does not stop the others."""
    refreshed = 0
    grants = ExactGrant.objects.filter(
        status=GrantStatus.ACTIVE, connections__status=ConnectionStatus.CONNECTED
    ).distinct()
    for grant in grants.order_by("pk"):
        in_use = grant.connections.filter(
            status=ConnectionStatus.CONNECTED, tenant__is_active=True
        ).exists()
        if not in_use:
            logger.info("exact: keep-alive skipped for grant %s: only inactive tenants", grant.pk)
            continue
        try:
            refreshed += bool(grant_keepalive(grant=grant))
        except ExactConnectionUnavailable as exc:
            logger.info("exact: keep-alive skipped for grant %s: %s", grant.pk, exc)
        except Exception:  # one user's trouble must not stop the others
            logger.exception("exact: keep-alive failed for grant %s", grant.pk)
    return refreshed
