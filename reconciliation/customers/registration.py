"""Registration: which Exact customers the tenant's policy wants invited to set up a
mandate, and the runs that invite them (periodic for tenants with ``auto_invite``, or on
demand). Each invitation is issued by issuing.py, which checks before any call.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.db.models import Exists, OuterRef

from core.audit import Actor
from exact.models import ExactReceivable, ReceivableKind
from gocardless import errors
from reconciliation.customers.config import customer_settings_for, gocardless_client_for
from reconciliation.customers.invitation_checks import collectable_currencies_for
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import link_ensure
from reconciliation.customers.matching import customer_accounts
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    CustomerLink,
    CustomerSettings,
    LinkState,
    MandateInvitation,
    RegistrationPolicy,
)
from reconciliation.customers.selectors import USABLE_MANDATE_STATUSES

logger = logging.getLogger(__name__)


def _open_receivables(tenant):
    return ExactReceivable.objects.filter(
        tenant=tenant,
        account=OuterRef("pk"),
        is_fully_paid=False,
        kind=ReceivableKind.INVOICE,
        outstanding__gt=0,
    )


def accounts_qualifying(*, tenant, settings=None):
    """Exact accounts the tenant's policy wants invited, not yet covered by a mandate or an
    open invitation, and not waiting for (or refused by) a person."""
    settings = settings or customer_settings_for(tenant=tenant)
    accounts = customer_accounts(tenant=tenant).filter(blocked=False)
    policy = settings.registration_policy
    if policy == RegistrationPolicy.OPEN_RECEIVABLES:
        receivables = _open_receivables(tenant)
        if tenant.currencies:
            receivables = receivables.filter(currency__in=tenant.currencies)
        accounts = accounts.filter(Exists(receivables))
    elif policy == RegistrationPolicy.PAYMENT_CONDITION:
        if not settings.direct_debit_condition:
            return accounts.none()
        accounts = accounts.filter(payment_condition=settings.direct_debit_condition)
    else:
        accounts = accounts.filter(
            customer_links__selected_for_invitation=True,
            customer_links__tenant=tenant,
        )
    covered = CustomerLink.objects.filter(tenant=tenant, exact_account_guid=OuterRef("exact_id"))
    return (
        accounts.exclude(
            Exists(covered.filter(state__in=[LinkState.UNLINKED, LinkState.AMBIGUOUS]))
        )
        .exclude(
            Exists(covered.filter(mandate__status__in=USABLE_MANDATE_STATUSES, stop_reason=""))
        )
        .exclude(
            Exists(
                MandateInvitation.objects.filter(
                    tenant=tenant,
                    link__exact_account_guid=OuterRef("exact_id"),
                    state__in=OPEN_INVITATION_STATES,
                )
            )
        )
    )


def registration_run(*, tenant, actor: Actor, client=None) -> dict:
    counts: Counter = Counter()
    client = client or gocardless_client_for(tenant=tenant)
    if client is None:
        return {"skipped": "gocardless not connected"}
    try:
        currencies = collectable_currencies_for(client=client)
    except errors.GoCardlessError as exc:
        return {"skipped": f"gocardless: {exc.message}"}
    for account in accounts_qualifying(tenant=tenant):
        link = link_ensure(tenant=tenant, account=account)
        invitation, _message = invitation_create(
            link=link, actor=actor, client=client, collectable_currencies=currencies
        )
        counts[invitation.state if invitation is not None else "skipped"] += 1
    return dict(counts)


def registration_run_all(*, actor: Actor, tenant_id: int | None = None) -> dict:
    results = {}
    rows = CustomerSettings.objects.filter(auto_invite=True, tenant__is_active=True).exclude(
        registration_policy=RegistrationPolicy.MANUAL
    )
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    for row in rows.select_related("tenant"):
        try:
            results[row.tenant.slug] = registration_run(tenant=row.tenant, actor=actor)
        except Exception:  # one tenant's trouble must not stop the others
            logger.exception("registration failed for tenant %s", row.tenant_id)
            results[row.tenant.slug] = {"error": 1}
    return results
