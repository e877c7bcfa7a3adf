"""An invitation after it was issued: reminders, expiry and re-issue, cancellation.

Links expire after 7 days (GoCardless' flow lifetime); an expired open invitation is marked
expired and, up to the tenant's re-issue limit, replaced by a new one with a new hosted page
on the same billing request (issuing.py). Reminders follow the tenant's policy (count,
spacing in days) and are e-mailed by invitation_email.py. Every step is audited.

Nothing is sent for an inactive tenant (tenants/activity.py): its invitations keep their
state, and after reactivation a reminder that fell due meanwhile is sent once (the next one
follows the spacing from then), an expired link is expired and re-issued once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from gocardless import errors
from gocardless.onboarding import billing_request_cancel
from reconciliation.customers.config import customer_settings_for, gocardless_client_for
from reconciliation.customers.invitation_email import invitation_send
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    InvitationState,
    LinkState,
    MandateInvitation,
)
from reconciliation.customers.selectors import USABLE_MANDATE_STATUSES
from tenants.activity import inactive_tenants_log, of_active_tenants

logger = logging.getLogger(__name__)


def invitation_cancel(*, invitation: MandateInvitation, actor: Actor, client=None) -> None:
    """A person cancels an open invitation; its billing request is cancelled at GoCardless
    too (a refusal there is noted in the audit entry, the invitation is cancelled anyway)."""
    if invitation.state not in OPEN_INVITATION_STATES:
        raise ValueError(f"invitation {invitation.pk} is {invitation.state}, not open")
    client = client or gocardless_client_for(tenant=invitation.tenant)
    note = ""
    if client is not None and invitation.billing_request_id:
        try:
            billing_request_cancel(client=client, billing_request_id=invitation.billing_request_id)
        except errors.GoCardlessError as exc:
            note = f" (GoCardless: {exc.message})"
    previous = invitation.state
    invitation.state = InvitationState.CANCELLED
    invitation.save(update_fields=["state", "updated_at"])
    audit_record(
        actor=actor,
        action="mandateinvitation.cancelled",
        tenant=invitation.tenant,
        obj=invitation,
        before={"state": previous},
        after={"state": invitation.state},
        message="cancelled" + note,
    )


def _reissues(invitation: MandateInvitation) -> int:
    count, current = 0, invitation
    while current.reissued_from_id is not None and count < 100:
        count += 1
        current = MandateInvitation.objects.get(pk=current.reissued_from_id)
    return count


def _still_needed(invitation: MandateInvitation) -> bool:
    link = invitation.link
    if link.state in (LinkState.UNLINKED, LinkState.AMBIGUOUS) or link.exact_account_id is None:
        return False
    return not (
        link.mandate_id and link.mandate.status in USABLE_MANDATE_STATUSES and not link.stop_reason
    )


def invitation_expire(*, invitation: MandateInvitation, actor: Actor, client=None):
    """Mark an expired link expired; re-issue a new hosted page when the policy allows."""
    with transaction.atomic():
        previous = invitation.state
        invitation.state = InvitationState.EXPIRED
        invitation.save(update_fields=["state", "updated_at"])
        audit_record(
            actor=actor,
            action="mandateinvitation.expired",
            tenant=invitation.tenant,
            obj=invitation,
            before={"state": previous},
            after={"state": invitation.state},
            message=f"hosted page expired at {invitation.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    settings = customer_settings_for(tenant=invitation.tenant)
    if _reissues(invitation) >= settings.reissue_limit or not _still_needed(invitation):
        return None
    new, _message = invitation_create(
        link=invitation.link, actor=actor, client=client, reissued_from=invitation
    )
    return new


def invitations_tick(*, actor: Actor, now=None, tenant=None) -> dict:
    """Periodic: expire (and re-issue) lapsed links, then send the reminders that are due.

    Inactive tenants are left out: nothing is e-mailed or re-issued for them, and their
    invitations are not touched, so the first tick after reactivation does what is due once.
    """
    now = now or timezone.now()
    counts = {"expired": 0, "reissued": 0, "reminded": 0}
    base = MandateInvitation.objects.select_related("tenant", "link", "link__mandate")
    if tenant is not None:
        base = base.filter(tenant=tenant)
    inactive_tenants_log(base.filter(state__in=OPEN_INVITATION_STATES), job="invitations tick")
    base = of_active_tenants(base)
    fresh: set[int] = set()  # re-issued in this run: just e-mailed, no reminder yet
    for invitation in base.filter(state__in=OPEN_INVITATION_STATES, expires_at__lte=now):
        try:
            new = invitation_expire(invitation=invitation, actor=actor)
        except Exception:
            logger.exception("expiring invitation %s failed", invitation.pk)
            continue
        counts["expired"] += 1
        if new is not None:
            fresh.add(new.pk)
            counts["reissued"] += new.state != InvitationState.FAILED
    # Links whose e-mail could not be sent (SMTP trouble): try again.
    unsent = base.filter(state=InvitationState.PENDING, expires_at__gt=now).exclude(
        authorisation_url=""
    )
    for invitation in unsent.exclude(pk__in=fresh):
        counts["sent"] = counts.get("sent", 0) + invitation_send(invitation=invitation, actor=actor)
    for invitation in base.filter(state=InvitationState.SENT, expires_at__gt=now).exclude(
        pk__in=fresh
    ):
        settings = customer_settings_for(tenant=invitation.tenant)
        if invitation.reminders_sent >= settings.reminder_count:
            continue
        due = invitation.last_sent_at + timedelta(days=settings.reminder_spacing_days)
        if due > now or not _still_needed(invitation):
            continue
        counts["reminded"] += invitation_send(invitation=invitation, actor=actor, reminder=True)
    return counts
