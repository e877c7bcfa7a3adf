"""Subscription and instalment payments: match them (plan_matching.py), then book what a
match makes bookable (services.receipt_book), exactly once (docs/subscriptions.md).

When matching runs:
- a plan payment's money signal (confirmed, paid out): before its receipt is considered;
- an Exact receivables sync that finished (the invoice may arrive after the payment);
- the ``plan-payments-match`` sweep (payments GoCardless created that no signal named yet);
- a person's decision on the admin page.
"""

from __future__ import annotations

import logging

from django.db import transaction

from core.audit import Actor
from gocardless.actors import actor_for_event
from gocardless.models import Payment
from tenants.models import Tenant

from . import plan_matching, services
from .models import BookingSettings, PlanMatchState, PlanPaymentMatch, ReceiptOn

logger = logging.getLogger(__name__)

_COLLECTED = {
    ReceiptOn.CONFIRMED: ("confirmed", "paid_out"),
    ReceiptOn.PAID_OUT: ("paid_out",),
}


def plan_receipt_book(*, tenant, payment: Payment, event=None):
    """The receipt of a matched plan payment whose money was collected already (it was
    matched after its confirmed / paid-out signal); None when there is nothing to book."""
    settings = BookingSettings.objects.filter(tenant=tenant, enabled=True).first()
    if settings is None or payment.status not in _COLLECTED[settings.receipt_on]:
        return None  # its signal books it when the money is collected
    with transaction.atomic():
        return services.receipt_book(
            tenant=tenant, payment=payment, event=event, on=settings.receipt_on
        )


def plan_payment_seen(*, tenant, payment: Payment, event) -> PlanPaymentMatch | None:
    """A plan payment's signal: match it if it is not yet (idempotent). Its receipt is the
    signal's own receiver's job, which runs next (config/wiring.py)."""
    if not plan_matching.plan_of(payment):
        return None
    return plan_matching.plan_payment_match(
        payment=payment, actor=actor_for_event(event, without_event="bookings")
    )


def plan_payments_match(*, tenant, actor: Actor) -> dict[str, int]:
    """Every plan payment of the tenant not matched yet (never seen, or waiting): match it,
    and book the receipt of each newly matched one whose money was collected already."""
    counts = {"matched": 0, "waiting": 0}
    todo = (
        plan_matching.plan_payments(tenant=tenant)
        .exclude(plan_match__state__in=(PlanMatchState.MATCHED, PlanMatchState.NOT_INVOICE))
        .exclude(status__in=plan_matching.DEAD_STATUSES, plan_match__isnull=True)
        .order_by("charge_date", "gocardless_id")
    )
    for payment in todo:
        match = plan_matching.plan_payment_match(payment=payment, actor=actor)
        if match is None:
            continue
        if match.state == PlanMatchState.MATCHED:
            counts["matched"] += 1
            plan_receipt_book(tenant=tenant, payment=payment)
        else:
            counts["waiting"] += 1
    return counts


def plan_payment_decide(*, match: PlanPaymentMatch, receivable_exact_id, user) -> PlanPaymentMatch:
    """A person's decision (plan_matching.plan_payment_decide), and the receipt it makes
    bookable. Raises ``plan_matching.DecisionRefused`` with the reason in words."""
    match = plan_matching.plan_payment_decide(
        match=match,
        receivable_exact_id=receivable_exact_id,
        user=user,
        actor=Actor.for_user(user),
    )
    if match.state == PlanMatchState.MATCHED:
        plan_receipt_book(tenant=match.tenant, payment=match.payment)
    return match


def plan_payments_sweep(*, tenants=None) -> dict[str, int]:
    """The sweep: every active tenant with plan payments not matched yet."""
    total = {"matched": 0, "waiting": 0}
    queryset = tenants if tenants is not None else Tenant.objects.filter(is_active=True)
    for tenant in queryset:
        try:
            counts = plan_payments_match(tenant=tenant, actor=Actor.schedule("plan-payments-match"))
        except Exception:
            logger.exception("plan payments of tenant %s: matching failed", tenant.pk)
            continue
        for key, n in counts.items():
            total[key] += n
    return total
