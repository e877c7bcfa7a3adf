"""The daily needs-attention e-mail: one per tenant, listing what stopped and needs a person.

Attempts reach *needs attention* through the reactions, the submission and the invoice
checks; this module only tells the tenant's administrators about them (tenants/alerts.py
sends and remembers what was sent). Which attempts those are is
``selectors.attempts_needing_attention``, the same definition as the admin's filter.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from core.display import FAILURE_CAUSE_WORDS, counted, money_display, words
from reconciliation.collection.pay_links import pay_links_expire, pay_links_resume
from reconciliation.collection.selectors import NEEDS_ATTENTION_QUERY, attempts_needing_attention
from tenants.alerts import admin_url, alert_new_objects
from tenants.models import Tenant

DIGEST_HOUR = 8  # local hour from which a tenant's daily e-mail may go out


def attention_digests_send(*, now: dt.datetime | None = None) -> int:
    """Once a day per active tenant (from ``DIGEST_HOUR`` local time), one e-mail to its
    administrators listing the attempts in *needs attention* that no earlier e-mail listed
    (charged back, disputed, refused by GoCardless, retries used up, mandate stopped with a
    payment in flight, invoice changed after submission...). Attempts can land there by the
    hundred (a mandate wave, a bank's bulk chargebacks), so never one e-mail per attempt.
    "Already e-mailed" and "already sent today" are read from the audit trail
    (tenants/alerts.py). Returns how many attempts were listed.

    Payment links whose page expired unpaid are closed first (``pay_links_expire``), so
    their attempts, back in *needs attention*, are in the same e-mail: this hourly sweep is
    the one that already looks at what needs a person. Links left half-made are queued
    again (``pay_links_resume``)."""
    now = now or timezone.now()
    pay_links_resume(now=now)
    pay_links_expire(now=now)
    tenants = Tenant.objects.filter(
        is_active=True, pk__in=attempts_needing_attention().values("tenant_id")
    )
    listed = 0
    for tenant in tenants:
        local = now.astimezone(tenant.zone)
        if local.hour < DIGEST_HOUR:
            continue
        listed += alert_new_objects(
            tenant=tenant,
            candidates=attempts_needing_attention(tenant=tenant).order_by("-updated_at", "-pk"),
            subject=lambda n: f"{counted(n, 'collection needs', 'collections need')} attention",
            what=(
                "These direct-debit collections stopped and will not be collected again "
                "automatically. Each needs a decision by a person:"
            ),
            line=lambda a: (
                f"Invoice {a.invoice_number or '?'}, {a.account_label or 'unknown customer'}, "
                f"{money_display(a.amount, a.currency)}: "
                f"{a.flag or words(a.failure_cause, FAILURE_CAUSE_WORDS) or 'see the attempt'}"
            ),
            todo=(
                "open the collections below and, for each, choose Retry now (collect again), "
                "Cancel… or Mark resolved… (settled in another way). Talk to the customer "
                "before retrying a charged-back or disputed payment."
            ),
            link=admin_url(
                "admin:collection_collectionattempt_changelist",
                query=NEEDS_ATTENTION_QUERY,
            ),
            quiet_since=local.replace(hour=0, minute=0, second=0, microsecond=0),
            kind="collection.needs_attention",
        )
    return listed
