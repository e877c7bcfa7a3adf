"""Acceptance: one month of activity through both simulators ends with Exact's ledger equal,
to the cent, to what GoCardless paid out; replaying everything changes nothing; the report's
totals are the sums of its rows and match the simulators; the CSV reads back exactly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.audit import Actor
from exact.sync import exact_sync
from gocardless.events_replay import events_reprocess
from gocardless.models import GoCardlessEvent
from gocardless.polling import events_poll
from reconciliation.bookings.models import Booking, BookingState, Rule
from reconciliation.bookings.posting import booking_repost, bookings_sweep
from reconciliation.bookings.report import report_build
from reconciliation.bookings.report_csv import report_csv
from tests.gocardless.conftest import post_webhook, webhook_url
from tests.reconciliation.bookings.csv_sections import csv_sections, csv_totals

pytestmark = pytest.mark.django_db

CENT = Decimal("0.01")


def minor(value) -> Decimal:
    return (Decimal(int(value)) / 100).quantize(CENT)


def snapshot(world):
    rows = list(
        Booking.objects.order_by("key").values_list(
            "key", "state", "exact_entry_id", "attempts", "amount_minor"
        )
    )
    return rows, world.ledger()


def test_one_month_of_activity(
    tenant_a,
    booking_settings,
    world,
    gc_deliver,
    gc_connection,
    ex_connection,
    client,
    gocardless_webhook_receiver,
    run_on_commit,
):
    gc = world.gc_sim
    names = ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    cust = {n: world.customer(f"{n} BV") for n in names}
    inv = {
        "Alpha": world.invoice(cust["Alpha"], "121.00"),
        "Bravo": world.invoice(cust["Bravo"], "250.00"),
        "Charlie": world.invoice(cust["Charlie"], "80.00"),
        "Delta": world.invoice(cust["Delta"], "60.00"),
        "Echo": world.invoice(cust["Echo"], "200.00"),
    }
    amounts = {"Alpha": 12100, "Bravo": 25000, "Charlie": 8000, "Delta": 6000, "Echo": 20000}
    pay = {n: world.collect(cust[n], inv[n], amounts[n]) for n in names}

    # Week 1: Bravo's first attempt fails before it is collected; the others are confirmed
    # and paid out (payout 1: fees with VAT).
    gc.run_scenario("payment_failed", pay["Bravo"]["id"])
    gc.advance(days=10)
    gc_deliver()
    for n in ("Alpha", "Charlie", "Delta", "Echo"):
        assert world.open_amount(inv[n]) == 0, n
    assert world.open_amount(inv["Bravo"]) == Decimal("250.00")
    assert not Booking.objects.filter(gocardless_id=pay["Bravo"]["id"]).exists()

    # Week 2: Bravo's retry (attempt 2), Charlie fails late, Delta is charged back, Echo gets
    # a partial refund of 50.00.
    world.collect(cust["Bravo"], inv["Bravo"], 25000, attempt=2)
    gc.run_scenario("payment_late_failure", pay["Charlie"]["id"])
    gc.run_scenario("payment_charged_back", pay["Delta"]["id"])
    world.gc_api.refund_create(
        params={
            "amount": 5000,
            "total_amount_confirmation": 5000,
            "links": {"payment": pay["Echo"]["id"]},
        },
        idempotency_key="refund-echo-1",
    )
    gc_deliver()
    assert world.open_amount(inv["Charlie"]) == Decimal("80.00")  # reopened
    assert world.open_amount(inv["Delta"]) == Decimal("60.00")  # reopened
    gc.advance(days=10)
    gc_deliver()
    gc.advance(days=7)
    gc_deliver()

    # Every debit GoCardless was owed has been settled in a payout.
    assert not any(gc.state.unsettled.values())
    payouts = [p for p in gc.resource("payouts") if p["status"] == "paid"]
    assert len(payouts) >= 2
    assert any(
        item["type"] == "gocardless_fee" and item.get("taxes")
        for p in payouts
        for item in gc.resource("payout_items", p["id"])
    )

    # Everything is posted.
    assert set(Booking.objects.values_list("state", flat=True)) == {BookingState.CONFIRMED}
    rules = sorted(Booking.objects.values_list("rule", flat=True))
    assert rules.count(Rule.RECEIPT) == 5  # Alpha, Bravo/2, Charlie, Delta, Echo
    assert rules.count(Rule.REVERSAL) == 2  # Charlie (late failure), Delta (chargeback)
    assert rules.count(Rule.REFUND) == 1
    assert rules.count(Rule.PAYOUT) == len(payouts) == rules.count(Rule.PAYOUT_BANK)

    # The ledger, to the cent: the clearing journal nets to zero, the bank received exactly
    # what GoCardless paid out, and every invoice is open by what really is unpaid.
    paid_out = sum((minor(p["amount"]) for p in payouts), Decimal("0.00"))
    assert world.journal_total("21") == Decimal("0.00")
    assert world.journal_total("20") == paid_out
    assert world.open_amount(inv["Alpha"]) == 0
    assert world.open_amount(inv["Bravo"]) == 0
    assert world.open_amount(inv["Charlie"]) == Decimal("80.00")
    assert world.open_amount(inv["Delta"]) == Decimal("60.00")
    assert world.open_amount(inv["Echo"]) == 0  # the refund does not reopen the invoice
    fees = [line for e in world.ledger() for line in e["Lines"] if line["GLAccountCode"] == "4600"]
    gc_fees = (
        sum(
            (
                Decimal(item["amount"])
                for p in payouts
                for item in gc.resource("payout_items", p["id"])
                if item["type"] in ("gocardless_fee", "surcharge_fee", "app_fee")
            ),
            Decimal(0),
        )
        / 100
    )
    assert sum((Decimal(line["AmountFC"]) for line in fees), Decimal(0)) == gc_fees
    assert all(line["VATCode"] == "VN" and line["AmountVATFC"] for line in fees)
    refund_lines = [
        line
        for e in world.ledger()
        for line in e["Lines"]
        if line["Account"] == cust["Echo"]["account"].lower() and line["OurRef"] is None
    ]
    assert [line["AmountFC"] for line in refund_lines] == ["-50.00"]

    # Replaying every webhook twice more, reprocessing every event, polling, sweeping and
    # re-posting every booking changes nothing.
    before = snapshot(world)
    for _ in range(2):
        for request in list(gocardless_webhook_receiver.requests):
            with run_on_commit():
                post_webhook(
                    client,
                    webhook_url(tenant_a),
                    request["body"],
                    request["headers"].get("Webhook-Signature"),
                )
        with run_on_commit():
            events_reprocess(
                event_pks=list(GoCardlessEvent.objects.values_list("pk", flat=True)),
                actor=Actor.system("test"),
            )
            events_poll(connection=gc_connection)
        bookings_sweep()
        for booking in Booking.objects.all():
            assert booking_repost(booking=booking, actor=Actor.system("test")) == (
                "confirmed already"
            )
    assert snapshot(world) == before

    # The report for March.
    exact_sync(connection=ex_connection, trigger="test")
    report = report_build(tenant=tenant_a, start=date(2026, 3, 1), end=date(2026, 3, 31))
    totals = report.totals
    gc_payments = [p for p in gc.resource("payments") if p["metadata"].get("mlc_attempt")]
    assert (
        totals["collected"]
        == sum(
            (minor(p["amount"]) for p in gc_payments if p["status"] in ("confirmed", "paid_out")),
            Decimal("0.00"),
        )
        == Decimal("571.00")
    )  # Alpha 121 + Bravo 250 + Echo 200
    assert totals["collected_count"] == 3
    assert (totals["failed_count"], totals["failed"]) == (2, Decimal("330.00"))  # Bravo/1, Charlie
    assert totals["retried_count"] == 1
    assert (totals["charged_back_count"], totals["charged_back"]) == (1, Decimal("60.00"))
    assert totals["refunded"] == Decimal("50.00")
    assert totals["outstanding"] == Decimal("140.00")  # Charlie 80 + Delta 60
    assert totals["outstanding"] == sum((world.open_amount(i) for i in inv.values()), Decimal(0))
    assert totals["refunded"] == sum(
        (minor(r["amount"]) for r in gc.resource("refunds") if r["status"] == "paid"),
        Decimal(0),
    )
    assert totals["payouts_net"] == paid_out
    assert totals["payouts_count"] == len(payouts)
    for row in report.payouts:
        assert row.balanced, row
        assert len(row.entries) == 2 and all(number for _, number, _ in row.entries)
    assert totals["payouts_fees"] + totals["payouts_vat"] == gc_fees
    assert totals["payouts_gross"] == sum((r.gross for r in report.payouts), Decimal(0))
    assert (
        totals["payouts_gross"]
        + totals["payouts_deductions"]
        + totals["payouts_fees"]
        + (totals["payouts_vat"])
        == totals["payouts_net"]
    )
    assert report.mismatches == []

    # The CSV reads back with exact decimals, in words, beside its currency.
    text = report_csv(report=report)
    sections = csv_sections(text)
    read_totals = csv_totals(text)
    assert read_totals["Collected"]["Amount"] == "571.00"
    assert read_totals["Collected"]["Count"] == "3"
    assert read_totals["Paid to the bank"]["Amount"] == f"{paid_out:.2f}"
    assert read_totals["Collected"]["Currency"] == "EUR"
    payout_rows = sections["Payout"]
    assert sum(Decimal(r["Net"]) for r in payout_rows) == paid_out
    assert all(len(r["Gross"].split(".")[1]) == 2 for r in payout_rows)
    payment_rows = sections["Payment"]
    collected = ("Collected", "Collected and paid out")
    assert sum(Decimal(r["Amount"]) for r in payment_rows if r["Status"] in collected) == (
        Decimal("571.00")
    )
    assert {r["Status"] for r in payment_rows} >= {"Failed", "Charged back by the customer"}
