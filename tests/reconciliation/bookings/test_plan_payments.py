"""Subscription and instalment payments through both simulators: matched to the one open
invoice that fits, booked as an ordinary receipt (the same entry as ours), moved out of
suspense exactly once when matched after their payout, decided by a person when no single
invoice fits; failures and refunds follow the rules of our own payments
(docs/subscriptions.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.models import AuditEntry
from exact.sync import exact_sync
from gocardless.models import Payment
from reconciliation.bookings import plan_bookings
from reconciliation.bookings.models import (
    Booking,
    BookingState,
    PlanMatchedBy,
    PlanMatchState,
    PlanPaymentMatch,
    Rule,
)
from reconciliation.bookings.plan_matching import DecisionRefused
from reconciliation.bookings.report import report_build
from tests.reconciliation.bookings.plan_world import (
    charge_dates,
    gl_total,
    invoice_due,
    linked,
    plan_payments,
    subscription,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha(tenant_a, booking_settings, world, ex_connection, gc_connection):
    return linked(world, tenant_a, ex_connection, "Alpha BV")


def receipts(payment_id: str) -> list[Booking]:
    return list(Booking.objects.filter(rule=Rule.RECEIPT, gocardless_id=payment_id))


def sync(ex_connection, run_on_commit):
    with run_on_commit():
        exact_sync(connection=ex_connection, trigger="test")


def test_a_subscription_payment_closes_the_one_invoice_that_fits(
    tenant_a, alpha, world, ex_connection, gc_deliver
):
    plan = subscription(world, alpha, 2500, count=1)
    (due,) = charge_dates(world, plan)
    invoice = invoice_due(world, alpha, "25.00", due)
    invoice_due(world, alpha, "25.00", due + dt.timedelta(days=31))  # next month's: no fit
    invoice_due(world, alpha, "30.00", due)  # another amount: no fit
    exact_sync(connection=ex_connection, trigger="test")

    world.gc_sim.advance(days=12)
    gc_deliver()

    (payment,) = plan_payments(world)
    assert payment["status"] in ("confirmed", "paid_out")
    match = PlanPaymentMatch.objects.get(payment__gocardless_id=payment["id"])
    assert (match.state, match.matched_by) == (PlanMatchState.MATCHED, PlanMatchedBy.AUTOMATIC)
    assert match.invoice_number == invoice["InvoiceNumber"]
    (receipt,) = receipts(payment["id"])
    assert receipt.state == BookingState.CONFIRMED
    assert receipt.facts["plan"] == plan["id"] and "from_suspense" not in receipt.facts
    assert world.open_amount(invoice) == 0
    # The same entry as one of ours: one debtors line naming the customer and the invoice.
    (line,) = receipt.request_body["BankEntryLines"]
    assert line["OurRef"] == invoice["InvoiceNumber"] and line["AmountFC"] == 25.0
    assert line["Account"] == alpha["account"]
    audit = AuditEntry.objects.get(action="plan_payment.matched")
    assert f"pays invoice {invoice['InvoiceNumber']}" in audit.message


def test_a_payment_before_its_invoice_waits_in_suspense_then_moves_out_exactly_once(
    tenant_a, alpha, world, ex_connection, gc_deliver, run_on_commit, q_sync
):
    plan = subscription(world, alpha, 4000, count=1)
    (due,) = charge_dates(world, plan)

    # Collected and paid out before Exact has an invoice for it: suspense.
    world.gc_sim.advance(days=20)
    gc_deliver()
    (payment,) = plan_payments(world)
    assert payment["status"] == "paid_out"
    match = PlanPaymentMatch.objects.get(payment__gocardless_id=payment["id"])
    assert match.state == PlanMatchState.WAITING
    assert "with EUR 40.00 left to pay on it" in match.note
    assert receipts(payment["id"]) == []
    payout = Booking.objects.get(rule=Rule.PAYOUT)
    assert payout.state == BookingState.CONFIRMED
    assert payment["id"] in payout.facts["foreign"]
    assert gl_total(world, "2390") == Decimal("40.00")  # the suspense account holds it

    # The invoice arrives from Exact: the sync matches it and the receipt moves the money
    # out of suspense onto the invoice.
    invoice = invoice_due(world, alpha, "40.00", due + dt.timedelta(days=3))
    sync(ex_connection, run_on_commit)

    match.refresh_from_db()
    assert match.state == PlanMatchState.MATCHED
    (receipt,) = receipts(payment["id"])
    assert receipt.facts["from_suspense"] == payout.gocardless_id
    assert receipt.state == BookingState.CONFIRMED
    assert sorted(line["AmountFC"] for line in receipt.request_body["BankEntryLines"]) == [
        -40.0,
        40.0,
    ]
    assert world.open_amount(invoice) == 0
    assert gl_total(world, "2390") == 0
    assert world.journal_total("21") == 0
    assert "(out of suspense)" in receipt.sentence()

    # Everything again: nothing more.
    sync(ex_connection, run_on_commit)
    plan_bookings.plan_payments_sweep()
    assert len(receipts(payment["id"])) == 1
    assert Booking.objects.filter(rule=Rule.PAYOUT).count() == 1


def test_several_invoices_fit_a_person_picks_one(
    tenant_a, alpha, world, ex_connection, gc_deliver, admin_user, run_on_commit
):
    plan = subscription(world, alpha, 2500, count=1)
    (due,) = charge_dates(world, plan)
    first = invoice_due(world, alpha, "25.00", due - dt.timedelta(days=5))
    second = invoice_due(world, alpha, "25.00", due + dt.timedelta(days=5))
    exact_sync(connection=ex_connection, trigger="test")

    world.gc_sim.advance(days=12)
    gc_deliver()

    (payment,) = plan_payments(world)
    match = PlanPaymentMatch.objects.get(payment__gocardless_id=payment["id"])
    assert match.state == PlanMatchState.WAITING
    assert "2 open invoices of EUR 25.00 fit" in match.note
    assert {c["invoice"] for c in match.candidates} == {
        first["InvoiceNumber"],
        second["InvoiceNumber"],
    }
    assert receipts(payment["id"]) == []

    receivable = next(c["receivable"] for c in match.candidates if c["invoice"] == (
        second["InvoiceNumber"]))
    with run_on_commit():
        plan_bookings.plan_payment_decide(
            match=match, receivable_exact_id=receivable, user=admin_user
        )

    match.refresh_from_db()
    assert (match.state, match.matched_by) == (PlanMatchState.MATCHED, PlanMatchedBy.PERSON)
    assert match.decided_by == admin_user
    assert world.open_amount(second) == 0 and world.open_amount(first) == Decimal("25.00")
    entry = AuditEntry.objects.get(action="plan_payment.matched")
    assert (entry.actor_type, entry.actor_user) == ("user", admin_user)
    with pytest.raises(DecisionRefused, match="already decided"):
        plan_bookings.plan_payment_decide(match=match, receivable_exact_id=None, user=admin_user)
    assert len(receipts(payment["id"])) == 1


def test_a_matched_plan_payment_that_fails_late_is_reversed_like_ours(
    tenant_a, alpha, world, ex_connection, gc_deliver
):
    plan = subscription(world, alpha, 6000, count=1)
    (due,) = charge_dates(world, plan)
    invoice = invoice_due(world, alpha, "60.00", due)
    exact_sync(connection=ex_connection, trigger="test")
    world.gc_sim.advance(days=12)
    gc_deliver()
    (payment,) = plan_payments(world)
    assert world.open_amount(invoice) == 0

    world.gc_sim.run_scenario("payment_late_failure", payment["id"])
    gc_deliver()
    world.gc_sim.advance(days=10)
    gc_deliver()

    (reversal,) = Booking.objects.filter(rule=Rule.REVERSAL, gocardless_id=payment["id"])
    assert reversal.state == BookingState.CONFIRMED
    assert world.open_amount(invoice) == Decimal("60.00")  # open again
    # What we owe GoCardless until a later payout deducts the failure; never suspense.
    assert world.journal_total("21") == Decimal("-60.00")
    assert gl_total(world, "2390") == 0


def test_a_refund_of_a_matched_plan_payment_is_booked_on_the_customer(
    tenant_a, alpha, world, ex_connection, gc_deliver
):
    plan = subscription(world, alpha, 5000, count=1)
    (due,) = charge_dates(world, plan)
    invoice = invoice_due(world, alpha, "50.00", due)
    exact_sync(connection=ex_connection, trigger="test")
    world.gc_sim.advance(days=12)
    gc_deliver()
    (payment,) = plan_payments(world)

    world.gc_api.refund_create(
        params={
            "amount": 1000,
            "total_amount_confirmation": 1000,
            "links": {"payment": payment["id"]},
        },
        idempotency_key="refund-plan-1",
    )
    gc_deliver()
    world.gc_sim.advance(days=10)
    gc_deliver()

    (refund,) = Booking.objects.filter(rule=Rule.REFUND)
    assert refund.facts["invoice"] == invoice["InvoiceNumber"]
    assert refund.facts["account"] == alpha["account"]
    assert refund.state == BookingState.CONFIRMED
    assert world.open_amount(invoice) == 0  # a refund does not reopen the invoice
    # The refund left the GoCardless balance; the next payout deducts it.
    assert world.journal_total("21") == Decimal("-10.00")


def test_a_person_says_not_an_invoice_payment_it_stays_in_suspense(
    tenant_a, alpha, world, ex_connection, gc_deliver, admin_user
):
    subscription(world, alpha, 1500, count=1)
    world.gc_sim.advance(days=20)
    gc_deliver()
    (payment,) = plan_payments(world)
    match = PlanPaymentMatch.objects.get(payment__gocardless_id=payment["id"])

    plan_bookings.plan_payment_decide(match=match, receivable_exact_id=None, user=admin_user)

    match.refresh_from_db()
    assert match.state == PlanMatchState.NOT_INVOICE and match.decided_by == admin_user
    assert AuditEntry.objects.filter(action="plan_payment.not_invoice").count() == 1
    assert receipts(payment["id"]) == []
    assert gl_total(world, "2390") == Decimal("15.00")
    # An invoice of that amount arriving later does not change a person's decision.
    invoice_due(world, alpha, "15.00", dt.date.fromisoformat(payment["charge_date"]))
    exact_sync(connection=ex_connection, trigger="test")
    plan_bookings.plan_payments_match(tenant=tenant_a, actor=_actor())
    match.refresh_from_db()
    assert match.state == PlanMatchState.NOT_INVOICE


def test_the_report_counts_matched_plan_payments_as_paying_their_invoice(
    tenant_a, alpha, world, ex_connection, gc_deliver
):
    plan = subscription(world, alpha, 2500, count=1)
    (due,) = charge_dates(world, plan)
    invoice_due(world, alpha, "25.00", due)
    exact_sync(connection=ex_connection, trigger="test")
    world.gc_sim.advance(days=20)
    gc_deliver()
    exact_sync(connection=ex_connection, trigger="test")

    report = report_build(tenant=tenant_a, start=due - dt.timedelta(days=40), end=due)

    (row,) = report.payments
    assert row.ours and row.plan == plan["id"] and row.receipt == BookingState.CONFIRMED
    assert report.totals["unmatched_count"] == 0
    assert report.mismatches == []
    assert all(p.balanced for p in report.payouts)


def _actor():
    from core.audit import Actor

    return Actor.system("test")


# --- matching rules, without the simulators ---------------------------------------------------


@pytest.fixture
def plain(tenant_a):
    """A linked customer with a mandate, as mirrors only."""
    from tests.reconciliation.collection.selection_fixtures import customer, gocardless_customer

    account, link, mandate = customer(tenant_a)
    gocardless_customer(tenant_a, link, mandate)
    return account, mandate


def _payment(tenant, mandate, minor=2500, *, day=dt.date(2026, 3, 10), status="submitted"):
    from tests.gocardless.factories import PaymentFactory

    return PaymentFactory(
        tenant=tenant,
        mandate_id=mandate.gocardless_id,
        amount=minor,
        charge_date=day,
        status=status,
        subscription_id="SB0000000009",
    )


@pytest.mark.parametrize(
    ("offset", "fits"), [(-14, False), (-13, True), (0, True), (13, True), (14, False)]
)
def test_the_due_date_window_is_13_days_either_way(tenant_a, plain, offset, fits):
    from reconciliation.bookings.plan_matching import plan_payment_match
    from tests.reconciliation.collection.selection_fixtures import invoice

    account, mandate = plain
    payment = _payment(tenant_a, mandate)
    invoice(tenant_a, account, "25.00", due=payment.charge_date + dt.timedelta(days=offset))

    match = plan_payment_match(payment=payment, actor=_actor())

    assert (match.state == PlanMatchState.MATCHED) is fits


def test_an_invoice_already_being_paid_is_no_candidate(tenant_a, plain):
    from reconciliation.bookings.plan_matching import plan_payment_match
    from tests.reconciliation.collection.selection_fixtures import invoice

    account, mandate = plain
    day = dt.date(2026, 3, 10)
    first = invoice(tenant_a, account, "25.00", due=day)
    second = invoice(tenant_a, account, "25.00", due=day + dt.timedelta(days=2))

    # One of ours is collecting the first: the plan payment can only be for the second.
    from reconciliation.collection.models import AttemptState, CollectionAttempt

    CollectionAttempt.objects.create(
        tenant=tenant_a,
        attempt_number=1,
        receivable_exact_id=first.exact_id,
        account_exact_id=account.exact_id,
        key=f"{first.exact_id}/1",
        idempotency_key="k1",
        amount=Decimal("25.00"),
        currency="EUR",
        charge_date=day,
        state=AttemptState.SUBMITTED,
    )
    one = plan_payment_match(payment=_payment(tenant_a, mandate, day=day), actor=_actor())
    assert one.state == PlanMatchState.MATCHED and one.receivable_exact_id == second.exact_id
    # Both are taken now: the next payment of the plan waits for a person.
    two = plan_payment_match(payment=_payment(tenant_a, mandate, day=day), actor=_actor())
    assert two.state == PlanMatchState.WAITING and two.candidates == []


def test_a_customer_not_linked_waits_with_the_reason(tenant_a):
    from reconciliation.bookings.plan_matching import plan_payment_match
    from tests.gocardless.factories import MandateFactory

    mandate = MandateFactory(tenant=tenant_a, customer_id="CU0000000404")
    match = plan_payment_match(payment=_payment(tenant_a, mandate), actor=_actor())
    assert match.state == PlanMatchState.WAITING
    assert match.note == "Its GoCardless customer is not linked to an Exact account."


def test_ours_and_failed_payments_are_not_matched(tenant_a, plain):
    from reconciliation.bookings.plan_matching import plan_payment_match
    from tests.gocardless.factories import PaymentFactory

    _, mandate = plain
    ours = PaymentFactory(tenant=tenant_a, mandate_id=mandate.gocardless_id)
    assert plan_payment_match(payment=ours, actor=_actor()) is None
    failed = _payment(tenant_a, mandate, status="failed")
    assert plan_payment_match(payment=failed, actor=_actor()) is None
    assert not PlanPaymentMatch.objects.exists()


def test_matching_again_changes_nothing_and_audits_nothing_new(tenant_a, plain):
    from reconciliation.bookings.plan_matching import plan_payment_match

    _, mandate = plain
    payment = _payment(tenant_a, mandate)
    for _ in range(3):
        plan_payment_match(payment=payment, actor=_actor())
    assert PlanPaymentMatch.objects.count() == 1
    assert AuditEntry.objects.filter(action="plan_payment.waiting").count() == 1


def test_a_person_cannot_pick_an_invoice_of_another_customer_or_too_small(
    tenant_a, plain, admin_user
):
    from reconciliation.bookings.plan_matching import plan_payment_match
    from tests.reconciliation.collection.selection_fixtures import customer, invoice

    account, mandate = plain
    stranger, _, _ = customer(tenant_a)
    theirs = invoice(tenant_a, stranger, "25.00")
    small = invoice(tenant_a, account, "20.00")
    match = plan_payment_match(payment=_payment(tenant_a, mandate), actor=_actor())

    with pytest.raises(DecisionRefused, match="not an invoice of this customer"):
        plan_bookings.plan_payment_decide(
            match=match, receivable_exact_id=theirs.exact_id, user=admin_user
        )
    with pytest.raises(DecisionRefused, match="less than the payment"):
        plan_bookings.plan_payment_decide(
            match=match, receivable_exact_id=small.exact_id, user=admin_user
        )
    match.refresh_from_db()
    assert match.state == PlanMatchState.WAITING
    assert not AuditEntry.objects.filter(action="plan_payment.matched").exists()


def test_a_payout_waits_for_the_receipt_of_a_matched_plan_payment(tenant_a, plain):
    from django.utils import timezone

    from reconciliation.bookings.payout_facts import payout_facts_refresh
    from tests.gocardless.factories import PayoutFactory, PayoutItemFactory
    from tests.reconciliation.bookings.factories import BookingFactory
    from tests.reconciliation.collection.selection_fixtures import invoice

    account, mandate = plain
    payment = _payment(tenant_a, mandate, status="paid_out")
    invoice(tenant_a, account, "25.00", due=payment.charge_date)
    from reconciliation.bookings.plan_matching import plan_payment_match

    assert plan_payment_match(payment=payment, actor=_actor()).state == PlanMatchState.MATCHED
    payout = PayoutFactory(tenant=tenant_a)
    PayoutItemFactory(tenant=tenant_a, payout=payout, payment_id=payment.gocardless_id,
                      amount="2500.0")
    booking = BookingFactory(tenant=tenant_a, rule=Rule.PAYOUT, gocardless_id=payout.gocardless_id,
                             key=f"payout:{payout.gocardless_id}")
    now = timezone.now()
    Booking.objects.filter(pk=booking.pk).update(created_at=now)
    booking.refresh_from_db()

    assert payout_facts_refresh(booking=booking, now=now) == (
        f"waiting for the receipts of {payment.gocardless_id}"
    )
    # After the grace period it goes to suspense, as an unmatched one would.
    assert payout_facts_refresh(booking=booking, now=now + dt.timedelta(hours=2)) is None
    assert payment.gocardless_id in booking.facts["foreign"]
    assert Payment.objects.filter(pk=payment.pk).exists()
