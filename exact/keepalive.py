"""Keeping refresh tokens alive: Exact's refresh tokens die after 30 days unused, so a quiet
tenant (no sync needing a fresh access token) would lose its consent. A daily job refreshes
every connected chain not refreshed for a day.

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
from exact.models import ConnectionStatus, ExactConnection
from exact.tokens import token_refresh, tokens_copy

logger = logging.getLogger(__name__)

# Refresh tokens die after 30 days unused; the keep-alive job refreshes anything older.
KEEPALIVE_AFTER = timedelta(days=1)


def token_keepalive(*, connection: ExactConnection) -> bool:
    """Refresh a connection whose tokens were not refreshed for a day, so the 30-day
    refresh-token lifetime never runs out on a quiet tenant. Returns True if refreshed."""
    connection_require_usable(connection=connection)
    last = connection.last_refresh_at or connection.token_issued_at
    if last and timezone.now() - last < KEEPALIVE_AFTER:
        return False
    fresh = token_refresh(
        connection_id=connection.pk,
        token_endpoint=oauth_refresh,
        force=True,
        actor=Actor.schedule("exact-keepalive"),
    )
    tokens_copy(source=fresh, target=connection)
    return fresh.token_issued_at != last


def tokens_keep_alive() -> int:
    """Every connected chain, one at a time; returns how many were refreshed."""
    refreshed = 0
    for connection in ExactConnection.objects.select_related("tenant").filter(
        status=ConnectionStatus.CONNECTED
    ):
        try:
            refreshed += bool(token_keepalive(connection=connection))
        except ExactConnectionUnavailable as exc:
            logger.info("exact: keep-alive skipped for %s: %s", connection.pk, exc)
        except Exception:  # one tenant's trouble must not stop the others
            logger.exception("exact: keep-alive failed for connection %s", connection.pk)
    return refreshed
