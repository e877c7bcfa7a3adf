"""Read-only views of an Exact connection for the admin (never a token)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from exact.models import ExactConnection
from exact.ratelimit import budget_snapshot


def connection_token_health(*, connection: ExactConnection) -> dict:
    now = timezone.now()
    expires = connection.access_expires_at
    return {
        "status": connection.get_status_display(),
        "reason": connection.status_reason,
        "issued": connection.token_issued_at,
        "expires": expires,
        "expired": bool(expires and expires <= now),
        "last_refresh": connection.last_refresh_at,
        "has_refresh_token": bool(connection.refresh_token),
    }


def connection_budget(*, connection: ExactConnection) -> dict | None:
    row = budget_snapshot(client_id=settings.EXACT_CLIENT_ID, division=connection.division)
    if row is None:
        return None
    return {
        "daily_remaining": row.daily_remaining,
        "daily_limit": row.daily_limit,
        "daily_reset": row.daily_reset_at,
        "minutely_remaining": row.minutely_remaining,
        "minutely_limit": row.minutely_limit,
        "minutely_reset": row.minutely_reset_at,
        "paused_until": connection.paused_until
        if connection.paused_until and connection.paused_until > timezone.now()
        else None,
    }
