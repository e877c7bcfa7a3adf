"""ExactGrant rows: one refresh-token chain per (app, Exact host, Exact user). No calls to
Exact here and no connection changes (exact/connections.py does those around these).

Exact keeps one chain per user and app: a second consent of the same user (another company,
a reconnect) obsoletes the older chain once the new one is used (API-NOTES addendum 2026-12).
Storing the chain once per user, shared by all that user's connections, is what keeps the
first company working when the user connects a second one.

Lock order, everywhere: grant rows first (by primary key), then connection rows. The token
refresh holds the grant and then marks connections; anything that changes a connection's
grant takes the grants first too, so the two can never wait for each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from exact.locks import lock_row
from exact.models import ExactGrant, GrantStatus


def grants_lock(grant_ids: Iterable[int | None]) -> dict[int, ExactGrant]:
    """Lock the given grants in primary-key order (inside ``transaction.atomic()``)."""
    return {pk: lock_row(ExactGrant, pk) for pk in sorted({g for g in grant_ids if g})}


def grant_for_user(
    *, client_id: str, region: str, custom_base_url: str, exact_user_id: str
) -> ExactGrant:
    """The grant of this Exact user (created when new, not locked). Without a user id every
    consent gets a grant of its own: nothing says two of them are the same user."""
    key = {
        "client_id": client_id,
        "region": region,
        "custom_base_url": custom_base_url,
        "exact_user_id": exact_user_id or "",
    }
    if exact_user_id:
        found = ExactGrant.objects.filter(**key).first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return ExactGrant.objects.create(**key)
        except IntegrityError:  # the same user's consent finished in another request
            return ExactGrant.objects.get(**key)
    return ExactGrant.objects.create(**key)


def grant_tokens_replace(
    *,
    grant: ExactGrant,
    tokens: dict,
    issued_at: datetime,
    exact_user_name: str = "",
    divisions: list[dict] | None = None,
) -> None:
    """A new consent's chain replaces the grant's (the old chain is obsolete at Exact once the
    new one is used). ``grant`` must be locked by the caller."""
    grant.access_token = tokens["access_token"]
    grant.refresh_token = tokens["refresh_token"]
    grant.token_issued_at = issued_at
    grant.access_expires_at = issued_at + timedelta(seconds=int(tokens["expires_in"]))
    grant.last_refresh_at = None
    grant.status = GrantStatus.ACTIVE
    grant.status_reason = ""
    grant.consented_at = timezone.now()
    if exact_user_name:
        grant.exact_user_name = exact_user_name[:200]
    if divisions is not None:
        grant.consented_divisions = [
            {"code": int(d["code"]), "name": str(d.get("name") or d["code"])[:200]}
            for d in divisions
        ]
    grant.save()


def grant_forget_if_unused(*, grant: ExactGrant) -> bool:
    """Delete a grant (and so its tokens) once no connection uses it. ``grant`` must be
    locked by the caller, after the connection that left it was saved."""
    if grant.connections.exists():
        return False
    grant.delete()
    return True


def grant_summary(grant: ExactGrant | None) -> str:
    """Who consented, for audit messages and pages (never a token)."""
    if grant is None:
        return "no consent"
    return grant.exact_user_name or grant.exact_user_id or f"grant {grant.pk}"
