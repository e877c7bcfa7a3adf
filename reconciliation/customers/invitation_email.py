"""Invitation e-mails: the hosted-page link (or a reminder) to the customer.

E-mails go through Django's e-mail backend with the tenant's sender and texts: the tenant's
own subject/body for the customer's language when set, else ours from
``templates/customers/invitation/<lang>/``; English when we have nothing in that language.
Nothing is sent for an inactive tenant (tenants/activity.py).
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.mail import EmailMessage
from django.template import Context, Template
from django.template.loader import render_to_string
from django.utils import timezone

from core.audit import Actor, audit_record
from reconciliation.customers.config import customer_settings_for
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    InvitationState,
    MandateInvitation,
)
from reconciliation.customers.normalise import template_language
from tenants.activity import tenant_skip


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
