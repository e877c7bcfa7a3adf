"""A payout whose lines GoCardless no longer gives (410 Gone: older than six months) is
booked from its own amount and deducted fees and the payments that name it, or not at all
when those do not make its amount (docs/bookings.md, "Payouts without lines")."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from gocardless.models import Payment, Payout, PayoutItemsState
from reconciliation.bookings.models import BookingState, Rule
from reconciliation.bookings.posting import booking_post, bookings_sweep
from reconciliation.bookings.services import payout_book
from tests.reconciliation.bookings.factories import BookingFactory

pytestmark = pytest.mark.django_db


def _payout_without_lines(tenant, customer, invoice, *, amount=9850, foreign=False):
    ours = Payment.objects.create(
        tenant=tenant, gocardless_id="PM0009", status="paid_out", amount=10000,
        currency="EUR", payout_id="PO0009",
        metadata={
            "mlc_attempt": f"{invoice['TermID']}/1",
            "exact_invoice": str(invoice["InvoiceNumber"]),
            "exact_account": customer["account"],
        },
    )
    if foreign:  # a payment set up in GoCardless' dashboard, in the same payout
        Payment.objects.create(tenant=tenant, gocardless_id="PM0010", status="paid_out",
                               amount=2500, currency="EUR", payout_id="PO0009")
    payout = Payout.objects.create(
        tenant=tenant, gocardless_id="PO0009", status="paid", amount=amount,
        deducted_fees=150, currency="EUR", reference="REF-9",
        gocardless_created_at=timezone.now() - timedelta(days=200),
        items_state=PayoutItemsState.UNAVAILABLE,
    )
    return ours, payout


def _receipt(tenant, customer, invoice):
    return BookingFactory(
        tenant=tenant, gocardless_id="PM0009", key="receipt:PM0009:1", amount_minor=10000,
        facts={"payment": "PM0009", "invoice": invoice["InvoiceNumber"], "amount": 10000,
               "account": customer["account"], "attempt": "x/1"},
    )


def test_booked_from_its_own_fees_and_the_payments_that_name_it(tenant_a, booking_settings,
                                                                 world):
    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "100.00")
    _ours, payout = _payout_without_lines(tenant_a, customer, invoice, amount=12350,
                                          foreign=True)
    booking = next(b for b in payout_book(tenant=tenant_a, payout=payout, event=None)
                   if b.rule == Rule.PAYOUT)
    _receipt(tenant_a, customer, invoice)
    now = timezone.now()
    # Our payment's receipt is waited for, as with lines; the other payment is not ours.
    assert bookings_sweep(now=now + timedelta(minutes=2)) == {"posted": 3}
    booking.refresh_from_db()
    assert booking.facts["foreign"] == {"PM0010": 2500}
    assert booking.facts["fees"]["gocardless_fee"]["amount"] == -150
    payout_entry = next(e for e in world.ledger() if "PO0009" in e["Lines"][-1]["Description"])
    fee = next(line for line in payout_entry["Lines"] if "fee" in line["Description"])
    assert "lines no longer available from GoCardless; VAT not split" in fee["Description"]
    assert not fee.get("AmountVATFC"), fee
    # Clearing nets to the suspense line of the foreign payment; the bank gets the payout.
    assert world.journal_total("20") == Decimal("123.50")
    suspense = [line["AmountFC"] for e in world.ledger() for line in e["Lines"]
                if line["GLAccountCode"] == "2390"]
    assert suspense == ["25.00"]


def test_refused_when_its_payments_and_fees_do_not_make_its_amount(tenant_a, booking_settings,
                                                                   world):
    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "100.00")
    # 100.00 paid out less 1.50 fees is 98.50; the payout says 90.00: a refund was inside.
    _ours, payout = _payout_without_lines(tenant_a, customer, invoice, amount=9000)
    booking = next(b for b in payout_book(tenant=tenant_a, payout=payout, event=None)
                   if b.rule == Rule.PAYOUT)
    _receipt(tenant_a, customer, invoice)
    later = timezone.now() + timedelta(hours=2)
    assert booking_post(booking_pk=booking.pk, now=later) == "failed: cannot build"
    booking.refresh_from_db()
    assert booking.state != BookingState.CONFIRMED
    assert "no longer gives the lines of payout PO0009" in booking.last_error
    assert "book it by hand in Exact" in booking.last_error
    assert "(100.00 EUR) less its fees (1.50 EUR)" in booking.last_error
    assert not any("PO0009" in line["Description"] for e in world.ledger()
                   for line in e["Lines"])
