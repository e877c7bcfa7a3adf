"""Invitation e-mails, reminders, expiry and re-issue, cancellation.

E-mails go through Django's e-mail backend with the tenant's sender and texts: the
tenant's own subject/body for the customer's language when set, else ours from
``templates/customers/invitation/<lang>/``; English when we have nothing in that
language. Links expire after 7 days (GoCardless' flow lifetime); an expired open
invitation is marked expired and, up to the tenant's re-issue limit, replaced by a new one
with a new hosted page on the same billing request. Reminders follow the tenant's policy
(count, spacing in days). Every step is audited.

Nothing is sent for an inactive tenant (tenants/activity.py): its invitations keep their
state, and after reactivation a reminder that fell due meanwhile is sent once (the next one
follows the spacing from then), an expired link is expired and re-issued once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings as django_settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template import Context, Template
from django.template.loader import render_to_string
from django.utils import timezone

from core.audit import Actor, audit_record
from reconciliation.customers.config import customer_settings_for, gocardless_client_for
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    InvitationState,
    LinkState,
    MandateInvitation,
)
from reconciliation.customers.normalise import template_language
from reconciliation.customers.selectors import USABLE_MANDATE_STATUSES
from tenants.activity import inactive_tenants_log, of_active_tenants, tenant_skip

logger = logging.getLogger(__name__)


def invitation_message(*, invitation: MandateInvitation, reminder: bool = False) -> EmailMessage:
    settings = customer_settings_for(tenant=invitation.tenant)
    language = template_language(invitation.language)
    context = {
        "customer_name": invitation.link.exact_name,
        "company": invitation.tenant.name,
        "url": invitation.authorisation_url,
        "expires_at": timezone.localtime(invitation.expires_at).date()
        if invitation.expires_at
        else "",
        "reminder": reminder,
        "currency": invitation.currency,
    }
    own_subject = (settings.invitation_subjects or {}).get(language)
    own_body = (settings.invitation_bodies or {}).get(language)
    if own_subject:
        subject = Template(own_subject).render(Context(context))
    else:
        subject = render_to_string(f"customers/invitation/{language}/subject.txt", context)
    if own_body:
        body = Template(own_body).render(Context(context))
    else:
        body = render_to_string(f"customers/invitation/{language}/body.txt", context)
    subject = " ".join(subject.split())
    if reminder and own_subject:
        subject = f"{_REMINDER_PREFIX.get(language, 'Reminder')}: {subject}"
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.invitation_sender or django_settings.DEFAULT_FROM_EMAIL,
        to=[invitation.email],
    )


_REMINDER_PREFIX = {"en": "Reminder", "nl": "Herinnering", "de": "Erinnerung", "fr": "Rappel"}


def invitation_send(*, invitation: MandateInvitation, actor: Actor, reminder: bool = False) -> bool:
    """E-mail the hosted-page link; the invitation records it. False when sending failed."""
    if not invitation.authorisation_url or invitation.state not in OPEN_INVITATION_STATES:
        return False
    if tenant_skip(invitation.tenant, job="invitation e-mail", what=f"invitation {invitation.pk}"):
        return False  # left as it is: the tick sends it once the tenant is active again
    try:
        invitation_message(invitation=invitation, reminder=reminder).send(fail_silently=False)
    except Exception as exc:  # SMTP trouble: the link still works and can be copied
        invitation.error = f"e-mail not sent: {type(exc).__name__}: {exc}"[:2000]
        invitation.save(update_fields=["error", "updated_at"])
        audit_record(
            actor=actor,
            action="mandateinvitation.send_failed",
            tenant=invitation.tenant,
            obj=invitation,
            message=invitation.error,
        )
        return False
    before = {"state": invitation.state, "reminders_sent": invitation.reminders_sent}
    invitation.state = InvitationState.SENT
    invitation.last_sent_at = timezone.now()
    invitation.error = ""
    if reminder:
        invitation.reminders_sent += 1
    invitation.save(
        update_fields=["state", "last_sent_at", "error", "reminders_sent", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="mandateinvitation.reminded" if reminder else "mandateinvitation.sent",
        tenant=invitation.tenant,
        obj=invitation,
        before=before,
        after={"state": invitation.state, "reminders_sent": invitation.reminders_sent},
        message=f"e-mailed to {invitation.email} in {template_language(invitation.language)}",
    )
    return True


def invitation_cancel(*, invitation: MandateInvitation, actor: Actor, client=None) -> None:
    from gocardless import errors
    from gocardless.onboarding import billing_request_cancel

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
    from reconciliation.customers.registration import invitation_create

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
