"""The payout page (reconciliation/workspace/payout_admin.py): the payout, every one of its
lines in words with customer and invoice, the sums (gross less fees is the payout; the fee
lines add up to the fees GoCardless deducted), and the bookings that put it into Exact."""

from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from reconciliation.bookings.models import BookingState, Rule
from tenants.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.gocardless.factories import (
    CustomerFactory,
    MandateFactory,
    PaymentFactory,
    PayoutFactory,
    PayoutItemFactory,
)
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.factories import CollectionAttemptFactory
from tests.reconciliation.factories import CustomerLinkFactory
from tests.workspace.page_words import findings, visible

pytestmark = pytest.mark.django_db

FEE_TYPES = {"gocardless_fee", "app_fee", "surcharge_fee"}


def _payout(tenant, *, deducted_fees=None):
    """Two payments (one charged back later), their fees with VAT, an app fee, a refund and
    a surcharge: the payout is what is left."""
    customer = CustomerFactory(tenant=tenant)
    mandate = MandateFactory(tenant=tenant, customer_id=customer.gocardless_id)
    link = CustomerLinkFactory(tenant=tenant, gocardless_customer=customer, mandate=mandate,
                               exact_name="Brouwerij 't Anker", exact_code="1004")
    first = PaymentFactory(tenant=tenant, mandate_id=mandate.gocardless_id, amount=1_250_000)
    second = PaymentFactory(tenant=tenant, mandate_id=mandate.gocardless_id, amount=74250)
    attempt = CollectionAttemptFactory(tenant=tenant, payment_gocardless_id=first.gocardless_id,
                                       invoice_number=26010)
    lines = [
        ("payment_paid_out", "1250000.0", first, [], ""),
        ("gocardless_fee", "-480.0", first, [{"amount": "-80.0", "currency": "EUR"}], ""),
        ("payment_paid_out", "74250.0", second, [], ""),
        ("gocardless_fee", "-480.0", second, [{"amount": "-80.0", "currency": "EUR"}], ""),
        ("app_fee", "-150.0", second, [], ""),
        ("payment_refunded", "-5000.0", second, [], "RF0001"),
        ("payment_charged_back", "-6000.0", second, [], ""),
        ("surcharge_fee", "-363.0", second, [{"amount": "-63.0", "currency": "EUR"}], ""),
    ]
    total = sum(Decimal(amount) for _t, amount, _p, _x, _r in lines)
    fees = -sum(Decimal(amount) for kind, amount, _p, _x, _r in lines if kind in FEE_TYPES)
    payout = PayoutFactory(tenant=tenant, status="paid", amount=int(total),
                           deducted_fees=int(fees) if deducted_fees is None else deducted_fees,
                           reference="SIMCR-00006G")
    for position, (kind, amount, payment, taxes, refund) in enumerate(lines, start=1):
        PayoutItemFactory(tenant=tenant, payout=payout, position=position, item_type=kind,
                          amount=amount, payment_id=payment.gocardless_id,
                          mandate_id=mandate.gocardless_id, taxes=taxes, refund_id=refund)
    booking = BookingFactory(tenant=tenant, rule=Rule.PAYOUT, gocardless_id=payout.gocardless_id,
                             state=BookingState.CONFIRMED, amount_minor=payout.amount,
                             exact_entry_number=4711)
    bank = BookingFactory(tenant=tenant, rule=Rule.PAYOUT_BANK,
                          gocardless_id=payout.gocardless_id, state=BookingState.GAVE_UP,
                          amount_minor=payout.amount)
    # A receipt of a payment in the payout is not the payout's booking.
    BookingFactory(tenant=tenant, rule=Rule.RECEIPT, gocardless_id=first.gocardless_id,
                   state=BookingState.CONFIRMED)
    return {"payout": payout, "first": first, "second": second, "link": link,
            "attempt": attempt, "booking": booking, "bank": bank}


class _Cells(HTMLParser):
    """The text of the elements with an id (the sums)."""

    def __init__(self):
        super().__init__()
        self.by_id: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self._open.append(dict(attrs).get("id") or "")

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for key in self._open:
            if key:
                self.by_id[key] = self.by_id.get(key, "") + data


def _amount(text: str) -> Decimal:
    """``-EUR 12,883.10`` → Decimal("-12883.10")."""
    match = re.fullmatch(r"\s*(-?)EUR ([\d,]+\.\d{2})\s*", text)
    assert match, text
    return Decimal(match[1] + match[2].replace(",", ""))


def _page(client, payout) -> str:
    response = client.get(reverse("admin:gocardless_payout_change", args=[payout.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_payout_and_its_lines_in_words(client, tenant_a, admin_of_a):
    world = _payout(tenant_a)
    client.force_login(admin_of_a)
    html = _page(client, world["payout"])
    text, _cells = visible(html)
    assert "Amount paid out EUR 13,117.77" in text
    assert "Paid to the bank" in text and "SIMCR-00006G" in text
    for words in ("Payment collected", "GoCardless fee", "App fee", "Refund to the customer",
                  "Chargeback", "Surcharge (failure or chargeback fee)"):
        assert words in text, words
    assert "EUR 12,500.00" in text and "-EUR 4.80" in text and "-EUR 0.80" in text
    assert "-EUR 3.63" in text and "-EUR 0.63" in text
    assert "Brouwerij 't Anker (1004)" in text and "Invoice 26010" in text
    codes = {"payment_paid_out", "gocardless_fee", "app_fee", "payment_refunded",
             "payment_charged_back", "surcharge_fee", "paid", "confirmed", "gave_up",
             "payout", "payout_bank"}
    assert findings(html, codes=codes, minor={1250000, 74250, 1311777, 1473}) == []


def test_the_sums_agree(client, tenant_a, admin_of_a):
    world = _payout(tenant_a)
    client.force_login(admin_of_a)
    html = _page(client, world["payout"])
    parser = _Cells()
    parser.feed(html)
    gross, fees, net = (_amount(parser.by_id[k]) for k in ("payout-gross", "payout-fees",
                                                             "payout-net"))
    assert gross == Decimal("13132.50")
    assert fees == Decimal("-14.73")
    assert net == Decimal("13117.77") == gross + fees
    # The fee lines (each fee kind on its own line) add up to the deducted fees.
    fee_lines = re.findall(r'<tr class="mlc-payout-fee"><th>.*?</th><td class="mlc-num">'
                           r"(.*?)</td>", html)
    assert len(fee_lines) == 3
    assert sum(_amount(line) for line in fee_lines) == -Decimal(world["payout"].deducted_fees) / 100
    assert "Does not agree" not in html and html.count("Agrees.") == 2


def test_fees_that_do_not_add_up_are_flagged(client, tenant_a, admin_of_a):
    world = _payout(tenant_a, deducted_fees=1000)
    client.force_login(admin_of_a)
    text, _cells = visible(_page(client, world["payout"]))
    assert ("Does not agree. The fee lines add up to EUR 14.73; GoCardless says it deducted "
            "EUR 10.00.") in text


def test_the_lines_link_to_payments_customers_invoices_and_bookings(client, tenant_a,
                                                                    admin_of_a):
    world = _payout(tenant_a)
    client.force_login(admin_of_a)
    html = _page(client, world["payout"])
    assert reverse("admin:gocardless_payment_by_id",
                   args=[tenant_a.pk, world["first"].gocardless_id]) in html
    assert reverse("admin:gocardless_refund_by_id", args=[tenant_a.pk, "RF0001"]) in html
    assert reverse("admin:customers_customerlink_change", args=[world["link"].pk]) in html
    assert reverse("admin:collection_collectionattempt_change",
                   args=[world["attempt"].pk]) in html
    text, _cells = visible(html)
    section = text[text.index("Booked in Exact"):]
    assert reverse("admin:bookings_booking_change", args=[world["booking"].pk]) in html
    assert "Payout: fees, VAT and transfer Confirmed in Exact" in section and "4711" in section
    assert "Failed (needs attention)" in section
    assert section.count("MLC-") == 2  # the payment's receipt is not the payout's booking


def test_another_companys_member_cannot_open_the_page(client, tenant_a, tenant_b):
    world = _payout(tenant_a)
    bravo = UserFactory(username="bob-bravo")
    MembershipFactory(user=bravo, tenant=tenant_b, role=Role.ADMIN)
    client.force_login(bravo)
    response = client.get(reverse("admin:gocardless_payout_change",
                                  args=[world["payout"].pk]))
    assert response.status_code in (403, 404)
    assert b"SIMCR-00006G" not in response.content
