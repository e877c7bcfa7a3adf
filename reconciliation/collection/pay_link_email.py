"""The payment-link e-mail to the customer: the hosted page's URL, the invoice and its amount.

Sent through Django's e-mail backend like the mandate invitations (customers/
invitation_email.py): from the company's invitation sender, in the customer's language when we
have a text in it (English otherwise). Templates: ``collection/pay_link/<lang>/``.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from core.display import local_date_display, money_display
from exact.models import ExactAccount
from reconciliation.customers.config import customer_settings_for

LANGUAGES = ("en", "nl")


def pay_link_message(*, link) -> EmailMessage:
    account = ExactAccount.objects.filter(
        tenant=link.tenant, exact_id=link.account_exact_id
    ).first()
    language = ((account.language if account else "") or "en")[:2].lower()
    language = language if language in LANGUAGES else "en"
    expires = (
        local_date_display(timezone.localtime(link.expires_at, link.tenant.zone).date())
        if link.expires_at
        else ""
    )
    context = {
        "customer_name": (account.name if account else "") or "customer",
        "company": link.tenant.name,
        "invoice": link.invoice_number or "",
        "amount": money_display(link.amount, link.currency),
        "url": link.authorisation_url,
        "expires_at": expires,
    }
    subject = render_to_string(f"collection/pay_link/{language}/subject.txt", context)
    body = render_to_string(f"collection/pay_link/{language}/body.txt", context)
    settings = customer_settings_for(tenant=link.tenant)
    return EmailMessage(
        subject=" ".join(subject.split()),
        body=body,
        from_email=settings.invitation_sender or django_settings.DEFAULT_FROM_EMAIL,
        to=[link.email],
    )


def pay_link_send(*, link) -> None:
    """E-mail the link; raises when the mail server refuses (the caller records it)."""
    pay_link_message(link=link).send(fail_silently=False)
