"""A GoCardless connection's status: the one place it changes (audited), and the alert to
the tenant's administrators when GoCardless refuses our token.

Apart from ``connect.py`` (which does HTTP through the client) so that the client can mark a
connection ``needs_reauth`` on a 401/403 without importing the connect flow that imports it.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from gocardless.models import ConnectionStatus, GoCardlessConnection
from tenants.alerts import admin_url, alert_send


def connection_set_status(
    *, connection: GoCardlessConnection, status: str, reason: str = "", actor: Actor
) -> bool:
    """Move the connection to ``status`` (audited); False when it already was there."""
    with transaction.atomic():
        current = GoCardlessConnection.objects.select_for_update().get(pk=connection.pk)
        if current.status == status:
            # Not a transition: keep the newest reason, no audit entry.
            if current.status_reason != reason[:1000]:
                current.status_reason = reason[:1000]
                current.save(update_fields=["status_reason", "updated_at"])
            connection.status, connection.status_reason = current.status, current.status_reason
            return False
        before = {"status": current.status}
        current.status, current.status_reason = status, reason[:1000]
        fields = ["status", "status_reason", "updated_at"]
        if status == ConnectionStatus.CONNECTED:
            current.connected_at = timezone.now()
            fields.append("connected_at")
        current.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="gocardlessconnection.status_changed",
            tenant=current.tenant,
            obj=current,
            before=before,
            after={"status": status},
            message=reason[:500],
        )
        if status == ConnectionStatus.NEEDS_REAUTH:
            # Once per transition: a connection already there returned above.
            transaction.on_commit(lambda: _alert_needs_reauth(current, reason=reason))
    connection.status, connection.status_reason = current.status, current.status_reason
    connection.connected_at = current.connected_at
    return True


def _alert_needs_reauth(connection: GoCardlessConnection, *, reason: str) -> None:
    tenant = connection.tenant
    alert_send(
        tenant=tenant,
        subject="GoCardless must be reconnected",
        what=(
            f"GoCardless refused ml-connector's access to the GoCardless account of {tenant}."
            f"\n\nReason: {reason[:500]}\n\n"
            "Until it is reconnected, no payments are collected for this company and "
            "GoCardless events (payment, mandate and payout updates) are not processed: "
            "they are retried for a while, after that they must be reprocessed in the admin."
        ),
        todo=(
            "an administrator opens the GoCardless connection in the admin, presses "
            '"Connect GoCardless (OAuth)" (or enters a new access token) and then '
            '"Test connection".'
        ),
        link=admin_url("admin:gocardless_gocardlessconnection_change", connection.pk),
        objects=[connection],
        kind="gocardlessconnection.needs_reauth",
    )


def connection_mark_needs_reauth(*, connection: GoCardlessConnection, reason: str) -> bool:
    """GoCardless said 401/403: stop using the token until someone re-connects."""
    return connection_set_status(
        connection=connection,
        status=ConnectionStatus.NEEDS_REAUTH,
        reason=f"GoCardless refused the access token: {reason}",
        actor=Actor.system("gocardless"),
    )


def connection_refuse_custom_url(*, connection: GoCardlessConnection, reason: str) -> bool:
    """A call was about to send the token to a custom base URL the installation no longer
    allows: nothing was sent; the connection waits for a person (reason in words)."""
    return connection_set_status(
        connection=connection,
        status=ConnectionStatus.NEEDS_REAUTH,
        reason=reason,
        actor=Actor.system("gocardless"),
    )
