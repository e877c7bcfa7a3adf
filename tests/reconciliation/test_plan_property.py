"""Property: whatever the mix of GoCardless subscriptions, instalment schedules, one-off
invoices the collection engine collects and invoices part-paid by other means, for a few
customers over a few months, no invoice is ever charged more than its amount and no
customer is charged twice for one invoice (docs/subscriptions.md).

Each example builds a small world of mirrors (no simulators), then plays the months: the
plans create their payments (some fail), matching runs as after an Exact sync, matched
receipts reach Exact (its open amounts drop), and the collection engine evaluates every
invoice; what it would collect is charged and, like a receipt, closes that much in Exact.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.audit import Actor
from core.money import from_minor_units
from exact.models import ExactReceivable
from gocardless.models import InstalmentSchedule, Subscription
from reconciliation.bookings.models import Booking, BookingState, PlanMatchState, PlanPaymentMatch
from reconciliation.bookings.plan_bookings import plan_payments_match
from reconciliation.bookings.services import receipt_book
from reconciliation.collection.models import AttemptState, CollectionAttempt, Decision
from reconciliation.collection.selection import selection_evaluate
from reconciliation.collection.submission import attempt_key, idempotency_key_for
from tests.gocardless.factories import (
    InstalmentScheduleFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.reconciliation.bookings.factories import BookingSettingsFactory
from tests.reconciliation.collection.selection_fixtures import (
    customer,
    gocardless_customer,
    invoice,
    policy,
)

pytestmark = pytest.mark.django_db

START = dt.date(2026, 3, 1)
MONTHS = 4
AMOUNTS = [1000, 2500, 4000]  # few amounts: plans and one-off invoices collide often


def month_day(month: int, day: int = 10) -> dt.date:
    year, index = divmod(START.month - 1 + month, 12)
    return dt.date(START.year + year, index + 1, day)


_plan = st.one_of(
    st.none(),
    st.tuples(
        st.just("subscription"),
        st.sampled_from(AMOUNTS),
        st.integers(0, MONTHS - 1),  # first month
        st.integers(1, MONTHS),  # months it runs before it is cancelled / finishes
        st.sampled_from(["active", "paused", "pending_customer_approval"]),
    ),
    st.tuples(
        st.just("schedule"),
        st.sampled_from(AMOUNTS),  # one instalment
        st.integers(0, MONTHS - 1),
        st.integers(2, 3),  # instalments
        st.just("active"),
    ),
)
_one_off = st.tuples(
    st.sampled_from([*AMOUNTS, 1500, 7000]),
    st.integers(0, MONTHS - 1),  # due month
    st.sampled_from([0, 0, 500]),  # part-paid by bank transfer (minor units)
)
_customer = st.tuples(_plan, st.lists(_one_off, max_size=3))


@settings(
    max_examples=60,
    deadline=None,
    # The same examples on every run (CI must not turn red by luck); the examples below were
    # found by random runs and stay.
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    customers=st.lists(_customer, min_size=1, max_size=3),
    failing=st.sets(st.integers(0, 20), max_size=4),  # which plan payments fail
)
@example(
    # An instalment failed and was not retried: the plan took 20.00 of the 30.00 invoice, the
    # engine collects the 10.00 still owed once the plan is over (not a double charge).
    customers=[(("schedule", 1000, 0, 3, "active"), [])], failing={2},
)
def test_no_invoice_is_ever_charged_more_than_its_amount(tenant_a, customers, failing):
    with transaction.atomic():
        assert _play(tenant_a, customers, failing) == []
        transaction.set_rollback(True)


def _play(tenant, customers, failing) -> list[str]:
    """Play the months; the broken promises, in words (none expected)."""
    policy(tenant, collection_mode="auto", lead_days=45, currencies=["EUR"],
           minimum_amount=Decimal("1.00"), over_maximum_policy="split")
    BookingSettingsFactory(tenant=tenant)
    actor = Actor.system("property")
    charged = defaultdict(Decimal)  # receivable guid → everything charged for it
    by_engine = defaultdict(Decimal)
    owed = defaultdict(Decimal)  # account guid → what it was invoiced
    paid_by_plans = defaultdict(Decimal)  # account guid → what its plans took
    plans = []  # (kind, mirror, mandate, account, amount, first, months, status)
    for plan_spec, one_offs in customers:
        account, link, mandate = customer(tenant)
        gocardless_customer(tenant, link, mandate)
        for amount, month, part in one_offs:
            r = invoice(tenant, account, from_minor_units(amount - part, "EUR"),
                        amount=from_minor_units(amount, "EUR"), due=month_day(month, 20))
            owed[account.exact_id] += r.amount
            charged[r.exact_id] += from_minor_units(part, "EUR")
        if plan_spec is None:
            continue
        kind, amount, first, months, status = plan_spec
        if kind == "subscription":
            # The merchant invoices each month the subscription collects.
            mirror = SubscriptionFactory(tenant=tenant, mandate_id=mandate.gocardless_id,
                                         amount=amount, status=status)
            for m in range(first, min(first + months, MONTHS)):
                r = invoice(tenant, account, from_minor_units(amount, "EUR"), due=month_day(m))
                owed[account.exact_id] += r.amount
        else:
            # One invoice, paid in instalments.
            mirror = InstalmentScheduleFactory(tenant=tenant, mandate_id=mandate.gocardless_id,
                                               total_amount=amount * months, status=status)
            r = invoice(tenant, account, from_minor_units(amount * months, "EUR"),
                        due=month_day(first))
            owed[account.exact_id] += r.amount
        plans.append((kind, mirror, mandate, account, amount, first, months, status))

    made = 0
    for month in range(MONTHS):
        today = month_day(month, 1)
        # The plans: their upcoming payments, this month's payment, their end.
        for kind, mirror, mandate, account, amount, first, months, status in plans:
            left = [m for m in range(max(first, month + 1), first + months)]
            upcoming = [{"charge_date": month_day(m).isoformat(), "amount": amount}
                        for m in left if status != "paused"]
            running = first <= month < first + months
            collects = running and status == "active"
            if collects:
                made += 1
                payment = PaymentFactory(
                    tenant=tenant, mandate_id=mandate.gocardless_id, amount=amount,
                    charge_date=month_day(month), currency="EUR",
                    status="failed" if made in failing else "confirmed",
                    **{("subscription_id" if kind == "subscription"
                        else "instalment_schedule_id"): mirror.gocardless_id},
                )
                if payment.status != "failed":
                    paid_by_plans[account.exact_id] += from_minor_units(amount, "EUR")
            over = month >= first + months - 1 and status == "active"
            ended = "finished" if kind == "subscription" else "completed"
            model = Subscription if kind == "subscription" else InstalmentSchedule
            model.objects.filter(pk=mirror.pk).update(
                upcoming_payments=upcoming if not over else [],
                status=ended if over else mirror.status,
            )
        # Matching, as after an Exact sync; receipts of matched collected payments reach
        # Exact (posted and read back).
        plan_payments_match(tenant=tenant, actor=actor)
        for match in PlanPaymentMatch.objects.filter(
            tenant=tenant, state=PlanMatchState.MATCHED, receipt__isnull=True
        ).select_related("payment"):
            payment = match.payment
            if payment.status == "failed":
                continue
            booking = receipt_book(tenant=tenant, payment=payment, event=None, on="confirmed")
            assert booking is not None
            _exact_receives(match.receivable_exact_id, from_minor_units(payment.amount, "EUR"))
            charged[match.receivable_exact_id] += from_minor_units(payment.amount, "EUR")
            Booking.objects.filter(pk=booking.pk).update(
                state=BookingState.CONFIRMED, confirmed_at=timezone.now() - dt.timedelta(
                    minutes=1)
            )
        # The collection engine.
        for plan in selection_evaluate(tenant=tenant, today=today):
            if plan.decision != Decision.COLLECT:
                continue
            _attempt(tenant, plan)
            _exact_receives(plan.receivable_exact_id, plan.amount)
            charged[plan.receivable_exact_id] += plan.amount
            by_engine[plan.account_exact_id] += plan.amount

    broken = []
    # No invoice charged more than its amount (part payments, plan payments matched to it,
    # our collections together).
    amounts = dict(ExactReceivable.objects.filter(tenant=tenant).values_list("exact_id", "amount"))
    for receivable, total in charged.items():
        if total > amounts[receivable]:
            broken.append(f"invoice charged {total} of {amounts[receivable]}")
    # No customer charged twice for one invoice: what the engine and the plans took never
    # exceeds what the customer was invoiced.
    for account_guid, invoiced in owed.items():
        took = by_engine[account_guid] + paid_by_plans[account_guid]
        if took > invoiced:
            broken.append(f"customer charged {took} for {invoiced} invoiced")
    # And the engine never collected an invoice its matched plan payments pay in full. (It
    # may collect the rest of one whose instalment failed: the customer still owes that.)
    by_plans = defaultdict(Decimal)
    for receivable, minor in (
        PlanPaymentMatch.objects.filter(tenant=tenant, state=PlanMatchState.MATCHED)
        .exclude(payment__status="failed")
        .values_list("receivable_exact_id", "payment__amount")
    ):
        by_plans[receivable] += from_minor_units(minor, "EUR")
    engine = set(
        CollectionAttempt.objects.filter(tenant=tenant).values_list(
            "receivable_exact_id", flat=True
        )
    )
    for receivable in engine:
        if by_plans[receivable] and by_plans[receivable] >= amounts[receivable]:
            broken.append("an invoice paid in full by a plan was collected too")
    return broken


def _exact_receives(receivable_guid, amount: Decimal) -> None:
    """A receipt posted in Exact and read back by the next sync: the open amount drops."""
    r = ExactReceivable.objects.get(exact_id=receivable_guid)
    r.outstanding -= amount
    r.is_fully_paid = r.outstanding <= 0
    r.synced_at = timezone.now()
    r.save()


def _attempt(tenant, plan) -> None:
    key = attempt_key(receivable_exact_id=plan.receivable_exact_id,
                      attempt_number=plan.attempt_number, part=0)
    CollectionAttempt.objects.create(
        tenant=tenant,
        receivable_exact_id=plan.receivable_exact_id,
        invoice_number=plan.invoice_number,
        account_exact_id=plan.account_exact_id,
        attempt_number=plan.attempt_number,
        key=key,
        idempotency_key=idempotency_key_for(tenant=tenant, key=key),
        amount=plan.amount,
        currency=plan.currency,
        charge_date=plan.charge_date,
        mandate_gocardless_id=plan.mandate_gocardless_id,
        state=AttemptState.PAID_OUT,
    )


def test_the_property_can_fail(tenant_a, monkeypatch):
    """Without the plan rule, the engine charges the invoices a subscription collects."""
    from reconciliation.collection import selection_rules

    without = tuple(r for r in selection_rules._RULES if r.__name__ != "_plan_collects")
    monkeypatch.setattr(selection_rules, "_RULES", without)
    spec = [(("subscription", 2500, 0, 3, "active"), [])]
    with transaction.atomic():
        broken = _play(tenant_a, spec, set())
        transaction.set_rollback(True)
    assert "customer charged 100.00 for 75.00 invoiced" in broken
