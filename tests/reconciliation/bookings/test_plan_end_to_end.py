"""Acceptance, through both simulators: a customer who pays by an active GoCardless
subscription, with open Exact invoices for the same amounts, is never charged by a
collection run (month after month, while another customer's invoice is collected); the
subscription's payments close the invoices in Exact; the clearing journal nets to zero, the
suspense account is untouched and the month-end report balances (docs/subscriptions.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from exact.sync import exact_sync
from gocardless.client import GoCardlessClient
from gocardless.models import Subscription
from reconciliation.bookings.models import (
    Booking,
    BookingState,
    PlanMatchedBy,
    PlanMatchState,
    PlanPaymentMatch,
    Rule,
)
from reconciliation.bookings.report import report_build
from reconciliation.collection.models import (
    CollectionAttempt,
    CollectionItem,
    Decision,
    RunState,
    RunTrigger,
    SkipReason,
)
from reconciliation.collection.runs import run_live
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
def policy(tenant_a):
    tenant_a.collection_mode = "auto"
    tenant_a.currencies = ["EUR"]
    tenant_a.lead_days = 400  # every open invoice is due: only the plan rule may stop one
    tenant_a.minimum_amount = Decimal("1.00")
    tenant_a.max_payments_per_run = 100
    tenant_a.save()
    return tenant_a


def test_a_subscription_customer_is_never_charged_and_the_month_balances(
    policy, booking_settings, world, ex_connection, gc_connection, gc_deliver, run_on_commit
):
    tenant = policy
    gc = GoCardlessClient.for_connection(gc_connection)
    alpha = linked(world, tenant, ex_connection, "Alpha BV")  # pays by subscription
    bravo = linked(world, tenant, ex_connection, "Bravo BV")  # pays by our collection

    plan = subscription(world, alpha, 2500, count=3)
    gc_deliver()
    dates = charge_dates(world, plan)
    assert len(dates) == 3
    invoices = [invoice_due(world, alpha, "25.00", day) for day in dates]
    control = invoice_due(world, bravo, "80.00", dates[0])
    assert Subscription.objects.get(gocardless_id=plan["id"]).status == "active"

    def sync_and_collect():
        with run_on_commit():
            exact_sync(connection=ex_connection, trigger="test")
        run = run_live(tenant=tenant, trigger=RunTrigger.USER, client=gc)
        assert run.state == RunState.COMPLETED, run.error
        return run

    run = sync_and_collect()
    lines = {i.invoice_number: i for i in CollectionItem.objects.filter(run=run)}
    for invoice in invoices:
        line = lines[invoice["InvoiceNumber"]]
        assert (line.decision, line.reason) == (Decision.SKIP, SkipReason.PLAN_COLLECTS)
    assert lines[control["InvoiceNumber"]].decision == Decision.COLLECT  # the engine works

    # Three months pass: GoCardless collects the subscription on its dates; we process its
    # events, sync Exact and run the collection engine every fortnight.
    for _ in range(8):
        world.gc_sim.advance(days=14)
        gc_deliver()
        sync_and_collect()

    # Never charged by us: every payment to Alpha's mandate was the subscription's.
    ours = [p for p in world.gc_sim.resource("payments") if p["metadata"].get("mlc_attempt")]
    assert {p["links"]["mandate"] for p in ours} == {bravo["mandate"]}
    assert not CollectionAttempt.objects.filter(
        account_exact_id=alpha["account"]
    ).exists()
    assert CollectionAttempt.objects.filter(account_exact_id=bravo["account"]).count() == 1

    # The subscription's payments closed the invoices in Exact, each matched automatically
    # and receipted exactly once.
    payments = plan_payments(world)
    assert len(payments) == 3
    assert {p["status"] for p in payments} == {"paid_out"}
    for invoice in invoices:
        assert world.open_amount(invoice) == 0, invoice["InvoiceNumber"]
    matches = PlanPaymentMatch.objects.filter(tenant=tenant)
    assert {(m.state, m.matched_by) for m in matches} == {
        (PlanMatchState.MATCHED, PlanMatchedBy.AUTOMATIC)
    }
    assert sorted(m.invoice_number for m in matches) == sorted(
        i["InvoiceNumber"] for i in invoices
    )
    receipts = Booking.objects.filter(rule=Rule.RECEIPT)
    assert sorted(b.gocardless_id for b in receipts) == sorted(p["id"] for p in payments)
    assert set(Booking.objects.values_list("state", flat=True)) == {BookingState.CONFIRMED}

    # The month end balances: the clearing journal nets to zero, the bank got what
    # GoCardless paid out, nothing sits in suspense.
    payouts = [p for p in world.gc_sim.resource("payouts") if p["status"] == "paid"]
    paid_out = sum((Decimal(p["amount"]) / 100 for p in payouts), Decimal("0.00"))
    assert payouts and world.journal_total("21") == 0
    assert world.journal_total("20") == paid_out
    assert gl_total(world, "2390") == 0

    with run_on_commit():
        exact_sync(connection=ex_connection, trigger="test")
    report = report_build(tenant=tenant, start=date(2026, 3, 1), end=date(2026, 7, 31))
    totals = report.totals
    assert totals["unmatched_count"] == 0
    assert report.mismatches == []
    assert (totals["collected_count"], totals["collected"]) == (3, Decimal("75.00"))
    assert totals["payouts_net"] == paid_out
    assert all(row.balanced for row in report.payouts)
    assert [r.plan for r in report.payments] == [plan["id"]] * 3


def test_an_instalment_plan_paying_one_invoice_is_never_charged_again_and_closes_it(
    policy,
    booking_settings,
    world,
    ex_connection,
    gc_connection,
    gc_deliver,
    run_on_commit,
    admin_user,
):
    """Three instalments of EUR 100.00 pay one invoice of EUR 300.00: no part fits the invoice
    by itself, so each waits for a person (in suspense once paid out); the engine never
    charges the invoice meanwhile; a person's three decisions close it in Exact, out of
    suspense, and the ledger balances."""
    from reconciliation.bookings import plan_bookings

    tenant = policy
    gc = GoCardlessClient.for_connection(gc_connection)
    alpha = linked(world, tenant, ex_connection, "Alpha BV")
    days = [date(2026, 3, 10), date(2026, 4, 10), date(2026, 5, 11)]
    schedule = world.gc_sim.create_instalment_schedule(
        {
            "name": "Invoice in three parts",
            "currency": "EUR",
            "total_amount": 30000,
            "instalments": [{"charge_date": d.isoformat(), "amount": 10000} for d in days],
            "links": {"mandate": alpha["mandate"]},
        }
    )
    world.gc_sim.advance(seconds=1)  # the schedule's payments are made at the next step
    gc_deliver()
    invoice = invoice_due(world, alpha, "300.00", days[0])

    def sync_and_collect():
        with run_on_commit():
            exact_sync(connection=ex_connection, trigger="test")
        run = run_live(tenant=tenant, trigger=RunTrigger.USER, client=gc)
        assert run.state == RunState.COMPLETED, run.error
        (line,) = CollectionItem.objects.filter(run=run, invoice_number=invoice["InvoiceNumber"])
        return line

    line = sync_and_collect()
    assert (line.decision, line.reason) == (Decision.SKIP, SkipReason.PLAN_COLLECTS)
    for _ in range(7):
        world.gc_sim.advance(days=14)
        gc_deliver()
        line = sync_and_collect()
        assert line.decision == Decision.SKIP, line.detail
    assert not CollectionAttempt.objects.exists()
    payments = plan_payments(world)
    assert [p["links"]["instalment_schedule"] for p in payments] == [schedule["id"]] * 3
    assert {p["status"] for p in payments} == {"paid_out"}
    assert world.open_amount(invoice) == Decimal("300.00")
    assert gl_total(world, "2390") == Decimal("300.00")  # in suspense until decided

    # A person matches each part to the invoice.
    receivable = next(
        m.candidates[0]["receivable"] for m in PlanPaymentMatch.objects.filter(tenant=tenant)
    )
    with run_on_commit():
        for match in PlanPaymentMatch.objects.filter(tenant=tenant).order_by("pk"):
            assert match.state == PlanMatchState.WAITING
            plan_bookings.plan_payment_decide(
                match=match, receivable_exact_id=receivable, user=admin_user
            )

    assert world.open_amount(invoice) == 0
    assert gl_total(world, "2390") == 0
    assert world.journal_total("21") == 0
    receipts = Booking.objects.filter(rule=Rule.RECEIPT)
    assert receipts.count() == 3 and all(b.facts.get("from_suspense") for b in receipts)
    assert set(Booking.objects.values_list("state", flat=True)) == {BookingState.CONFIRMED}
