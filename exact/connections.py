"""State changes of an ExactConnection: usable checks, needs-reauth, pause, consent (into the
user's grant), division (one company per division), disconnected, and a broken grant stopping
every connection that uses it. No calls to Exact here (exact/connect.py does those around these
changes). Locks: grants first, then connections (exact/grants.py).

Every change writes an audit entry; a connection that needs a person (re-consent) also
e-mails the tenant's administrators.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from exact.errors import (
    ExactConnectionUnavailable,
    ExactDivisionTaken,
    ExactNeedsReauth,
    ExactPaused,
)
from exact.grants import (
    grant_for_user,
    grant_forget_if_unused,
    grant_summary,
    grant_tokens_replace,
    grants_lock,
)
from exact.locks import lock_row
from exact.models import ConnectionStatus, ExactConnection, ExactGrant, GrantStatus, Region
from tenants.alerts import admin_url, alert_send
from tenants.models import Tenant

logger = logging.getLogger(__name__)


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


def connection_ensure(
    *,
    tenant: Tenant,
    actor: Actor,
    region: str | None = None,
    custom_base_url: str = "",
) -> ExactConnection:
    """The company's Exact connection, created (and audited) when it has none: for an
    operator's command before it makes a consent URL, and for the division picker attaching
    another company. ``region`` (the region table; "custom" with ``custom_base_url`` only where
    the installation allows it, else ValidationError) is where the next consent happens. A
    connection that holds a division keeps its region (ExactConnectionUnavailable):
    disconnect it first, the division belongs to the region it was consented in."""
    with transaction.atomic():
        row, created = ExactConnection.objects.select_for_update().get_or_create(
            tenant=tenant, defaults={"region": region or Region.NL}
        )
        before = {"region": row.region, "custom_base_url": row.custom_base_url}
        if region is None:  # keep where it is
            wanted, wanted_url = row.region, row.custom_base_url
        else:
            wanted, wanted_url = region, custom_base_url if region == Region.CUSTOM else ""
        if (wanted, wanted_url) != (row.region, row.custom_base_url):
            if row.status != ConnectionStatus.DISCONNECTED:
                raise ExactConnectionUnavailable(
                    f"Exact Online for {tenant} holds division {row.division}; disconnect it "
                    "before moving it to another region."
                )
            row.region, row.custom_base_url = wanted, wanted_url
        row.full_clean(exclude=["tenant"])
        row.save()
        if created or before != {"region": row.region, "custom_base_url": row.custom_base_url}:
            audit_record(
                actor=actor,
                action="exact_connection.created" if created else "exact_connection.changed",
                tenant=tenant,
                obj=row,
                before=None if created else before,
                after={"region": row.region, "custom_base_url": row.custom_base_url},
                message="Exact Online connection prepared for a consent",
            )
    return row


def connection_store_consent(
    *,
    connection: ExactConnection,
    tokens: dict,
    issued_at: datetime,
    actor: Actor,
    exact_user_id: str = "",
    exact_user_name: str = "",
    divisions: list[dict] | None = None,
) -> ExactConnection:
    """Keep a new consent: its chain goes (encrypted) into the grant of the consenting Exact
    user, shared with every connection of that user, and this connection waits for its
    division to be chosen (a consent without a chosen division must not let a job guess one).

    ``divisions`` (the consent's own list, ``[{"code", "name"}]``) also settles the user's
    other connections: one that needed re-authorisation works again when the new consent
    covers its division; one whose division the new consent leaves out needs
    re-authorisation, with that reason, instead of failing on its next call. Without a user
    id (older callers) the consent gets a grant of its own.
    """
    grant = grant_for_user(
        client_id=settings.EXACT_CLIENT_ID,
        region=connection.region,
        custom_base_url=connection.custom_base_url if connection.region == Region.CUSTOM else "",
        exact_user_id=exact_user_id,
    )
    with transaction.atomic():
        previous_grant_id = (
            ExactConnection.objects.filter(pk=connection.pk)
            .values_list("grant_id", flat=True)
            .first()
        )
        locked = grants_lock([grant.pk, previous_grant_id])
        grant = locked[grant.pk]
        row = lock_row(ExactConnection, connection.pk)
        before = {
            "status": row.status,
            "grant": row.grant_id,
            "refresh_token": "set" if row.grant_id else "not set",
        }
        grant_tokens_replace(
            grant=grant,
            tokens=tokens,
            issued_at=issued_at,
            exact_user_name=exact_user_name,
            divisions=divisions,
        )
        row.grant = grant
        row.status = ConnectionStatus.DISCONNECTED
        row.status_reason = "Consent received; waiting for the division to be chosen."
        row.save()
        audit_record(
            actor=actor,
            action="exact_connection.consent_received",
            tenant=row.tenant,
            obj=row,
            before=before,
            after={"status": row.status, "grant": grant.pk, "refresh_token": "set"},
            message=f"OAuth consent at {grant.base_url} by Exact user {grant_summary(grant)}",
        )
        if divisions is not None:
            _others_follow_consent(grant=grant, consenting=row, actor=actor)
        old = locked.get(previous_grant_id) if previous_grant_id != grant.pk else None
        if old is not None:
            grant_forget_if_unused(grant=old)
    return row


def _others_follow_consent(*, grant: ExactGrant, consenting: ExactConnection, actor: Actor):
    """The user's other connections after a new consent (grant locked by the caller)."""
    covered = grant.division_codes
    others = (
        ExactConnection.objects.filter(grant=grant)
        .exclude(pk=consenting.pk)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in others:
        row = lock_row(ExactConnection, pk)
        if row.division in covered and row.status == ConnectionStatus.NEEDS_REAUTH:
            before = {"status": row.status, "status_reason": row.status_reason}
            row.status = ConnectionStatus.CONNECTED
            row.status_reason = ""
            row.save(update_fields=["status", "status_reason", "updated_at"])
            audit_record(
                actor=actor,
                action="exact_connection.restored",
                tenant=row.tenant,
                obj=row,
                before=before,
                after={"status": row.status},
                message=(
                    f"Exact user {grant_summary(grant)} consented again; the new consent "
                    f"covers division {row.division}"
                ),
            )
        elif row.division not in covered and row.status == ConnectionStatus.CONNECTED:
            connection_mark_needs_reauth(
                connection=row,
                reason=(
                    f"The latest consent of Exact user {grant_summary(grant)} does not include "
                    f"division {row.division}. Reconnect Exact Online and tick it."
                ),
                actor=actor,
            )


def grant_mark_broken(*, grant: ExactGrant, reason: str, actor: Actor | None = None) -> None:
    """The grant's chain is gone (refused, obsolete, lost): every connection using it stops
    and its company is told. Call inside the transaction that holds the grant's lock."""
    grant.status = GrantStatus.BROKEN
    grant.status_reason = reason[:2000]
    grant.save(update_fields=["status", "status_reason", "updated_at"])
    others = (
        ExactConnection.objects.filter(grant=grant, status=ConnectionStatus.CONNECTED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in others:
        connection_mark_needs_reauth(
            connection=lock_row(ExactConnection, pk), reason=reason, actor=actor
        )


def division_holder(
    *, region: str, division: int, exclude_pk: int | None = None
) -> ExactConnection | None:
    """The connection of another company that holds ``division`` in ``region``, if any."""
    holders = ExactConnection.objects.filter(region=region, division=division).exclude(
        status=ConnectionStatus.DISCONNECTED
    )
    if exclude_pk is not None:
        holders = holders.exclude(pk=exclude_pk)
    return holders.first()


def divisions_taken(*, region: str, codes: list[int], exclude_pk: int | None = None) -> set[int]:
    """Which of ``codes`` another company's connection holds in ``region``."""
    taken = ExactConnection.objects.filter(region=region, division__in=codes).exclude(
        status=ConnectionStatus.DISCONNECTED
    )
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    return set(taken.values_list("division", flat=True))


def _division_taken_error(division: int) -> ExactDivisionTaken:
    return ExactDivisionTaken(
        f"Division {division} is already connected to another company. A division can "
        "belong to one company only."
    )


def connection_choose_division(
    *,
    connection: ExactConnection,
    division: int,
    division_name: str,
    actor: Actor,
    grant: ExactGrant | None = None,
) -> ExactConnection:
    """Bind the connection to ``division`` of its grant's consent (or of ``grant``, another
    consent of the same user), and mark it connected. ExactDivisionTaken when another company
    holds the division: checked first, and the database constraint decides a race."""
    from exact.models import ExactAccount, ExactReceivable, ExactSyncCursor

    if division_holder(region=connection.region, division=division, exclude_pk=connection.pk):
        raise _division_taken_error(division)
    try:
        with transaction.atomic():
            grant_id = grant.pk if grant is not None else connection.grant_id
            previous_grant_id = (
                ExactConnection.objects.filter(pk=connection.pk)
                .values_list("grant_id", flat=True)
                .first()
            )
            locked = grants_lock([grant_id, previous_grant_id])
            row = lock_row(ExactConnection, connection.pk)
            chosen = locked.get(grant_id or row.grant_id)
            if chosen is None or not chosen.refresh_token or chosen.status != GrantStatus.ACTIVE:
                raise ExactConnectionUnavailable("No consent to bind: connect again.")
            if chosen.consented_divisions and division not in chosen.division_codes:
                raise ExactConnectionUnavailable(
                    f"Division {division} is not one of the divisions this consent covers."
                )
            before = {"status": row.status, "division": row.division, "grant": row.grant_id}
            if row.division and row.division != division:
                # Another administration: the mirrors and cursors describe the old one.
                ExactAccount.objects.filter(tenant=row.tenant).delete()
                ExactReceivable.objects.filter(tenant=row.tenant).delete()
                ExactSyncCursor.objects.filter(tenant=row.tenant).delete()
            row.grant = chosen
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
                after={"status": row.status, "division": division, "grant": chosen.pk},
                message=(
                    f"Connected to division {division} ({division_name}) with the consent of "
                    f"Exact user {grant_summary(chosen)}"
                ),
            )
            old = locked.get(previous_grant_id) if previous_grant_id != chosen.pk else None
            if old is not None:
                grant_forget_if_unused(grant=old)
    except IntegrityError:  # exact_one_tenant_per_division: another company was quicker
        raise _division_taken_error(division) from None
    return row


def connection_mark_disconnected(
    *, connection: ExactConnection, actor: Actor, warnings: list[str]
) -> None:
    """Leave the grant and forget the subscriptions, audited with what went wrong removing
    them (exact/connect.py ``connection_disconnect`` removes them at Exact first). The tokens
    are deleted with the grant when no other company uses it; another company of the same
    Exact user keeps working."""
    with transaction.atomic():
        grant_id = (
            ExactConnection.objects.filter(pk=connection.pk)
            .values_list("grant_id", flat=True)
            .first()
        )
        locked = grants_lock([grant_id])
        row = lock_row(ExactConnection, connection.pk)
        before = {
            "status": row.status,
            "division": row.division,
            "webhook_subscription_ids": row.webhook_subscription_ids,
            "refresh_token": "set" if row.grant_id else "not set",
        }
        row.grant = None
        row.status = ConnectionStatus.DISCONNECTED
        row.status_reason = "Disconnected by " + actor.label
        row.webhook_subscription_ids = []
        row.save()
        forgotten = grant_id in locked and grant_forget_if_unused(grant=locked[grant_id])
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
                "grant_deleted": bool(forgotten),
            },
            message="; ".join(warnings) or "Disconnected",
        )
    connection.refresh_from_db()
