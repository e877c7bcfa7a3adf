"""Read-only views of an Exact connection for the admin (never a token)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from exact.errors import ExactHostNotAllowed
from exact.grants import grant_summary
from exact.models import ExactConnection
from exact.ratelimit import budget_snapshot


def connection_token_health(*, connection: ExactConnection) -> dict:
    """The health of the tokens the connection uses (its grant's)."""
    now = timezone.now()
    grant = connection.grant if connection.grant_id else None
    expires = grant.access_expires_at if grant else None
    reason = connection.status_reason
    if grant is not None and grant.status_reason and grant.status_reason != reason:
        reason = "; ".join(r for r in (reason, grant.status_reason) if r)
    return {
        "status": connection.get_status_display(),
        "reason": reason,
        "issued": grant.token_issued_at if grant else None,
        "expires": expires,
        "expired": bool(expires and expires <= now),
        "last_refresh": grant.last_refresh_at if grant else None,
        "has_refresh_token": bool(grant and grant.refresh_token),
    }


def connection_consent(*, connection: ExactConnection) -> dict | None:
    """Whose consent the connection uses and how many other companies share it (never which:
    a company administrator must not learn another company's name here)."""
    grant = connection.grant if connection.grant_id else None
    if grant is None:
        return None
    return {
        "user": grant_summary(grant),
        "status": grant.get_status_display(),
        "shared_with": grant.connections.exclude(pk=connection.pk).count(),
    }


def connection_budget(*, connection: ExactConnection) -> dict | None:
    try:
        host = connection.api_base_url
    except ExactHostNotAllowed:
        return None
    row = budget_snapshot(
        client_id=settings.EXACT_CLIENT_ID, host=host, division=connection.division
    )
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
