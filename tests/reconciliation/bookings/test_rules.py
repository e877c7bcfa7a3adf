"""The booking rules through both simulators: receipt timing, payments that are not ours,
bounced payouts, refunds that fail, and split instalments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from gocardless.models import Payout
from reconciliation.bookings.models import Booking, BookingState, ReceiptOn, Rule
from reconciliation.bookings.report import report_build
from reconciliation.bookings.rules import exact_amount, payment_owner

pytestmark = pytest.mark.django_db


def keys() -> list[str]:
    return sorted(Booking.objects.values_list("key", flat=True))


def test_payment_owner_parses_the_collection_engine_metadata():
    guid = "3f0e2a1c-0000-4000-8000-000000000001"
    meta = {"mlc_attempt": f"{guid}/2.1", "exact_invoice": "20240017", "exact_account": "acc"}
    assert payment_owner(meta) == {
        "attempt": f"{guid}/2.1",
        "receivable": guid,
        "attempt_number": 2,
        "invoice": 20240017,
        "account": "acc",
    }
    assert payment_owner({}) is None
    assert payment_owner({**meta, "mlc_attempt": "nonsense"}) is None
    assert payment_owner({**meta, "exact_invoice": "INV-1"}) is None


def test_exact_amount_is_exact():
    assert exact_amount(Decimal("1234567.89")) == 1234567.89
    assert repr(exact_amount(Decimal("-0.10"))) == "-0.1"


def test_receipt_on_paid_out_waits_for_the_payout(booking_settings, world, gc_deliver):
    booking_settings.receipt_on = ReceiptOn.PAID_OUT
    booking_settings.save()
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    payment = world.collect(alpha, invoice, 10000)
    world.gc_sim.run_scenario("payment_confirmed", payment["id"])
    gc_deliver()
    assert keys() == []
    assert world.open_amount(invoice) == Decimal("100.00")
    world.gc_sim.advance(days=10)
    gc_deliver()
    assert f"receipt:{payment['id']}:1" in keys()
    assert world.open_amount(invoice) == 0
    assert world.journal_total("21") == 0


def test_split_instalments_close_the_invoice_in_parts(booking_settings, world, gc_deliver):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    world.collect(alpha, invoice, 6000, part=".1")
    world.gc_sim.advance(days=10)
    gc_deliver()
    assert world.open_amount(invoice) == Decimal("40.00")
    world.collect(alpha, invoice, 4000, part=".2")
    world.gc_sim.advance(days=10)
    gc_deliver()
    assert world.open_amount(invoice) == 0
    assert world.journal_total("21") == 0


def test_payment_not_ours_is_not_receipted_and_goes_to_suspense(
    booking_settings, world, gc_deliver, tenant_a
):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    ours = world.collect(alpha, invoice, 10000)
    foreign = world.foreign_payment(alpha, 3000)
    world.gc_sim.advance(days=10)
    gc_deliver()
    assert not Booking.objects.filter(gocardless_id=foreign["id"]).exists()
    assert Booking.objects.filter(gocardless_id=ours["id"], rule=Rule.RECEIPT).exists()
    suspense = [
        line for e in world.ledger() for line in e["Lines"] if line["GLAccountCode"] == "2390"
    ]
    assert [line["AmountFC"] for line in suspense] == ["30.00"]
    assert world.journal_total("21") == 0
    report = report_build(tenant=tenant_a, start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert [(m.kind, m.subject) for m in report.mismatches] == [("not_ours", foreign["id"])]
    assert report.totals["unmatched_count"] == 1
    assert report.totals["collected"] == Decimal("100.00")


def test_foreign_payment_without_suspense_account_holds_the_payout(
    booking_settings, world, gc_deliver
):
    booking_settings.unmatched_gl_code = ""
    booking_settings.save()
    alpha = world.customer("Alpha BV")
    world.foreign_payment(alpha, 3000)
    world.gc_sim.advance(days=10)
    gc_deliver()
    payout = Booking.objects.get(rule=Rule.PAYOUT)
    assert payout.state == BookingState.FAILED
    assert "did not create" in payout.last_error
    assert [e["JournalCode"] for e in world.ledger()] == []


def test_bounced_payout_puts_the_money_back_in_clearing(
    booking_settings, world, gc_deliver, tenant_a, run_on_commit
):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    world.collect(alpha, invoice, 10000)
    world.gc_sim.advance(days=10)
    gc_deliver()
    payout = Booking.objects.get(rule=Rule.PAYOUT)
    bank_before = world.journal_total("20")
    assert bank_before > 0 and world.journal_total("21") == 0
    # GoCardless says so with a *creditors* event (bounced_payout) naming the payout; it is
    # filed under the payout, whose re-fetched status "bounced" fires payout_bounced.
    world.gc_sim.run_scenario("payout_bounced", payout.gocardless_id)
    gc_deliver()
    assert Payout.objects.get(gocardless_id=payout.gocardless_id).status == "bounced"
    bounced = Booking.objects.filter(rule=Rule.PAYOUT_BOUNCED).order_by("sequence")
    assert [b.state for b in bounced] == [BookingState.CONFIRMED] * 2
    assert world.journal_total("21") == bank_before  # GoCardless holds it again
    assert world.journal_total("20") == 0  # it never reached the bank


def test_refund_failing_after_it_was_paid_returns_the_money(booking_settings, world, gc_deliver):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    payment = world.collect(alpha, invoice, 10000)
    world.gc_sim.advance(days=10)
    gc_deliver()
    refund = world.gc_api.refund_create(
        params={
            "amount": 2500,
            "total_amount_confirmation": 2500,
            "links": {"payment": payment["id"]},
        },
        idempotency_key="refund-1",
    )
    world.gc_sim.run_scenario("refund_paid", refund["id"])
    gc_deliver()
    world.gc_sim.run_scenario("refund_funds_returned", refund["id"])
    gc_deliver()
    assert {b.rule: b.state for b in Booking.objects.filter(gocardless_id=refund["id"])} == {
        Rule.REFUND: BookingState.CONFIRMED,
        Rule.REFUND_RETURNED: BookingState.CONFIRMED,
    }
    customer_lines = [
        line["AmountFC"]
        for e in world.ledger()
        for line in e["Lines"]
        if line["Account"] and line["OurRef"] is None
    ]
    assert customer_lines == ["-25.00", "25.00"]
    assert world.open_amount(invoice) == 0
    assert world.journal_total("21") == 0


def test_disabled_settings_create_no_bookings(booking_settings, world, gc_deliver):
    booking_settings.enabled = False
    booking_settings.save()
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    world.collect(alpha, invoice, 10000)
    world.gc_sim.advance(days=10)
    gc_deliver()
    assert keys() == [] and world.ledger() == []


def test_payment_collected_again_after_a_late_failure_gets_a_second_receipt(
    booking_settings, world, gc_deliver
):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "100.00")
    payment = world.collect(alpha, invoice, 10000)
    world.gc_sim.advance(days=10)
    gc_deliver()
    world.gc_sim.run_scenario("payment_late_failure", payment["id"])
    gc_deliver()
    assert world.open_amount(invoice) == Decimal("100.00")
    world.gc_api.payment_retry(payment["id"])  # GoCardless collects the same payment again
    world.gc_sim.advance(days=10)
    gc_deliver()
    assert keys() == sorted(
        [f"receipt:{payment['id']}:1", f"reversal:{payment['id']}:1", f"receipt:{payment['id']}:2"]
        + [k for k in keys() if k.startswith("payout")]
    )
    assert world.open_amount(invoice) == 0
    # The late failure's 100.00 is still owed to GoCardless (the next payout would have gone
    # negative): the clearing journal shows exactly that debt.
    owed = sum(item["amount"] for item in world.gc_sim.state.unsettled["EUR"])
    assert owed == -10000
    assert world.journal_total("21") == Decimal(owed) / 100
