"""State changes of an ExactConnection: usable checks, needs-reauth, pause, consent, division,
disconnected. No calls to Exact here (exact/connect.py does those around these changes).

Every change writes an audit entry; a connection that needs a person (re-consent) also
e-mails the tenant's administrators.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from exact.errors import ExactConnectionUnavailable, ExactNeedsReauth, ExactPaused
from exact.locks import lock_row
from exact.models import ConnectionStatus, ExactConnection
from tenants.alerts import admin_url, alert_send

logger = logging.getLogger(__name__)

TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "token_issued_at",
    "access_expires_at",
    "last_refresh_at",
)


def connection_require_usable(*, connection: ExactConnection) -> None:
    """Every job and service calls this first: a broken or paused connection, or one of an
    inactive tenant (tenants/activity.py), sends nothing. Nothing changes on the connection,
    so the jobs resume where they were once the tenant is activated again."""
    if not connection.tenant.is_active:
        raise ExactConnectionUnavailable(
            f"Exact Online for {connection.tenant} is not used: the tenant is inactive"
        )
    if connection.status == ConnectionStatus.NEEDS_REAUTH:
        raise ExactNeedsReauth(
            f"Exact Online for {connection.tenant} needs to be reconnected: "
            f"{connection.status_reason or 'no reason recorded'}"
        )
    if connection.status != ConnectionStatus.CONNECTED or not connection.division:
        raise ExactConnectionUnavailable(f"Exact Online for {connection.tenant} is not connected")
    if connection.paused_until and connection.paused_until > timezone.now():
        raise ExactPaused(
            f"Exact Online for {connection.tenant} is paused until "
            f"{connection.paused_until:%Y-%m-%d %H:%M} UTC (daily API budget spent)",
            until=connection.paused_until,
        )


def connection_mark_needs_reauth(
    *, connection: ExactConnection, reason: str, actor: Actor | None = None
) -> ExactConnection:
    """Stop the connection's jobs until someone reconnects. Call inside a transaction."""
    before = {"status": connection.status, "status_reason": connection.status_reason}
    connection.status = ConnectionStatus.NEEDS_REAUTH
    connection.status_reason = reason[:2000]
    connection.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(
        actor=actor or Actor.system("exact"),
        action="exact_connection.needs_reauth",
        tenant=connection.tenant,
        obj=connection,
        before=before,
        after={"status": connection.status, "status_reason": connection.status_reason},
        message=reason[:2000],
    )
    logger.error("exact: connection %s needs re-authorisation: %s", connection.pk, reason)
    if before["status"] != ConnectionStatus.NEEDS_REAUTH:  # once per transition, not per call
        transaction.on_commit(lambda: _alert_needs_reauth(connection=connection, reason=reason))
    return connection


def _alert_needs_reauth(*, connection: ExactConnection, reason: str) -> None:
    tenant = connection.tenant
    alert_send(
        tenant=tenant,
        subject="Exact Online must be reconnected",
        what=(
            f"ml-connector can no longer reach Exact Online for {tenant}.\n\n"
            f"Reason: {reason}\n\n"
            "Collections and bookings for this company are stopped until the connection is "
            "restored."
        ),
        todo=(
            "an administrator opens the Exact Online connection in the admin and presses "
            '"Reconnect Exact Online".'
        ),
        link=admin_url("admin:exact_exactconnection_change", connection.pk),
        objects=[connection],
        kind="exact_connection.needs_reauth",
    )


def connection_pause(
    *, connection: ExactConnection, until: datetime | None, actor: Actor | None = None
) -> None:
    """The daily budget is spent: pause the tenant's Exact jobs until Exact's reset."""
    until = until or (timezone.now() + timedelta(hours=1))
    with transaction.atomic():
        row = lock_row(ExactConnection, connection.pk)
        if row.paused_until and row.paused_until >= until:
            connection.paused_until = row.paused_until
            return
        row.paused_until = until
        row.save(update_fields=["paused_until", "updated_at"])
        audit_record(
            actor=actor or Actor.system("exact"),
            action="exact_connection.paused",
            tenant=row.tenant,
            obj=row,
            after={"paused_until": until},
            message="Exact's daily API budget for the division is spent",
        )
    connection.paused_until = until


def connection_store_consent(
    *, connection: ExactConnection, tokens: dict, issued_at: datetime, actor: Actor
) -> ExactConnection:
    """Keep the tokens of a new consent (encrypted) until the user picks the division.

    The connection is not usable in between: a consent without a chosen division must not
    let a job guess one.
    """
    with transaction.atomic():
        row = lock_row(ExactConnection, connection.pk)
        before = {"status": row.status, "refresh_token": "set" if row.refresh_token else "not set"}
        row.access_token = tokens["access_token"]
        row.refresh_token = tokens["refresh_token"]
        row.token_issued_at = issued_at
        row.access_expires_at = issued_at + timedelta(seconds=tokens["expires_in"])
        row.last_refresh_at = None
        row.status = ConnectionStatus.DISCONNECTED
        row.status_reason = "Consent received; waiting for the division to be chosen."
        row.save()
        audit_record(
            actor=actor,
            action="exact_connection.consent_received",
            tenant=row.tenant,
            obj=row,
            before=before,
            after={"status": row.status, "refresh_token": "set"},
            message=f"OAuth consent at {row.base_url}",
        )
    return row


def connection_choose_division(
    *, connection: ExactConnection, division: int, division_name: str, actor: Actor
) -> ExactConnection:
    """Bind the consent to the division the user chose, and mark the connection connected."""
    from exact.models import ExactAccount, ExactReceivable, ExactSyncCursor

    with transaction.atomic():
        row = lock_row(ExactConnection, connection.pk)
        if not row.refresh_token:
            raise ExactConnectionUnavailable("No consent to bind: connect again.")
        before = {"status": row.status, "division": row.division}
        if row.division and row.division != division:
            # Another administration: the mirrors and cursors describe the old one.
            ExactAccount.objects.filter(tenant=row.tenant).delete()
            ExactReceivable.objects.filter(tenant=row.tenant).delete()
            ExactSyncCursor.objects.filter(tenant=row.tenant).delete()
        row.division = division
        row.division_name = division_name[:200]
        row.status = ConnectionStatus.CONNECTED
        row.status_reason = ""
        row.paused_until = None
        row.connected_at = timezone.now()
        row.save()
        audit_record(
            actor=actor,
            action="exact_connection.connected",
            tenant=row.tenant,
            obj=row,
            before=before,
            after={"status": row.status, "division": division},
            message=f"Connected to division {division} ({division_name})",
        )
    return row


def connection_mark_disconnected(
    *, connection: ExactConnection, actor: Actor, warnings: list[str]
) -> None:
    """Wipe the tokens and forget the subscriptions, audited with what went wrong removing
    them (exact/connect.py ``connection_disconnect`` removes them at Exact first)."""
    with transaction.atomic():
        row = lock_row(ExactConnection, connection.pk)
        before = {
            "status": row.status,
            "division": row.division,
            "webhook_subscription_ids": row.webhook_subscription_ids,
            "refresh_token": "set" if row.refresh_token else "not set",
        }
        row.access_token = None
        row.refresh_token = None
        row.token_issued_at = None
        row.access_expires_at = None
        row.status = ConnectionStatus.DISCONNECTED
        row.status_reason = "Disconnected by " + actor.label
        row.webhook_subscription_ids = []
        row.save()
        audit_record(
            actor=actor,
            action="exact_connection.disconnected",
            tenant=row.tenant,
            obj=row,
            before=before,
            after={
                "status": row.status,
                "webhook_subscription_ids": [],
                "refresh_token": "not set",
            },
            message="; ".join(warnings) or "Disconnected",
        )
    connection.refresh_from_db()
