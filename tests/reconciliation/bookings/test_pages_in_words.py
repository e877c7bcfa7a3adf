"""Issue 15: the bookings list, a booking's page, the report and its CSV say things in words
(tests/workspace/page_words.py says what counts): amounts with their currency, rules and
states in words, what a booking is as a sentence, times in the company's zone; the CSV keeps
plain numbers for spreadsheets beside a Currency column, everything else in words."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from core.audit import Actor, audit_record
from core.display import PAYMENT_STATUS_WORDS
from reconciliation.bookings.models import Booking, BookingState, Rule
from tests.reconciliation.bookings.csv_sections import csv_sections
from tests.reconciliation.bookings.factories import BookingFactory
from tests.workspace.page_words import findings, text_findings

pytestmark = pytest.mark.django_db

CODES = (
    {r.value for r in Rule}
    | {s.value for s in BookingState}
    | set(PAYMENT_STATUS_WORDS)
    | {"gocardless_fee", "arrival_date", "payment_items", "payment_confirmed", "paid", "invoice"}
)

PAYOUT_FACTS = {
    "payout": "PO00000000006G",
    "reference": "SIMCR-00006G",
    "amount": 1288310,
    "currency": "EUR",
    "arrival_date": "2026-12-03",
    "fees": {"gocardless_fee": {"amount": -3840, "vat": -640}},
    "foreign": {},
    "payment_items": 1292150,
    "unknown": {},
}
PAYOUT_BODY = {
    "JournalCode": "21",
    "Currency": "EUR",
    "BankEntryLines": [
        {
            "Date": "2026-12-03",
            "Notes": "MLC-1",
            "GLAccount": "7b0c0a8e-0000-4000-8000-000000004600",
            "AmountFC": -38.4,
            "AmountVATFC": -6.4,
            "VATCode": "VN",
            "Description": "GoCardless fees payout PO00000000006G SIMCR-00006G",
        },
        {
            "Date": "2026-12-03",
            "Notes": "MLC-1",
            "GLAccount": "7b0c0a8e-0000-4000-8000-000000001190",
            "AmountFC": -12883.1,
            "Description": "GoCardless payout PO00000000006G SIMCR-00006G",
        },
    ],
}


@pytest.fixture
def bookings(tenant_a):
    now = timezone.now()
    payout = BookingFactory(
        tenant=tenant_a,
        rule=Rule.PAYOUT,
        gocardless_id="PO00000000006G",
        key="payout:PO00000000006G",
        amount_minor=1288310,
        facts=PAYOUT_FACTS,
        request_body=PAYOUT_BODY,
        state=BookingState.CONFIRMED,
        exact_entry_id="6d1f0000-0000-4000-8000-000000000023",
        exact_entry_number=23,
        confirmed_at=now,
        attempts=1,
    )
    bank = BookingFactory(
        tenant=tenant_a,
        rule=Rule.PAYOUT_BANK,
        gocardless_id="PO00000000006G",
        key="payout_bank:PO00000000006G",
        amount_minor=1288310,
        facts=PAYOUT_FACTS,
        state=BookingState.FAILED,
        next_retry_at=now + dt.timedelta(minutes=5),
        attempts=2,
        last_error="Exact refused it",
    )
    receipt = BookingFactory(tenant=tenant_a, amount_minor=48640, state=BookingState.GAVE_UP)
    receipt.facts = {**receipt.facts, "cause": "payment_confirmed", "event": "EV0001"}
    receipt.save()
    return {"payout": payout, "bank": bank, "receipt": receipt}


def _minor(*bookings) -> set[int]:
    return {abs(b.amount_minor) for b in bookings} | {1292150, 3840}


def test_bookings_list_and_filters_in_words(client, viewer_of_a, bookings):
    client.force_login(viewer_of_a)
    url = reverse("admin:bookings_booking_changelist")
    html = client.get(url).content.decode()
    assert "Payout PO00000000006G to the bank" in html
    assert "Payout PO00000000006G: fees, VAT and transfer" in html
    assert "EUR 12,883.10" in html and "EUR 486.40" in html
    assert "Failed (tried again later)" in html and "Confirmed in Exact" in html
    assert "Entry 23" in html
    # the filters' choices in words
    assert "Payout arrives in the bank" in html and "Failed (needs attention)" in html
    assert findings(html, codes=CODES, minor=_minor(*bookings.values())) == []

    for link in dict.fromkeys(re.findall(r'href="(\?(?:rule|state)__exact=[^"]+)"', html)):
        page = client.get(url + link.replace("&amp;", "&")).content.decode()
        assert findings(page, codes=CODES, minor=_minor(*bookings.values())) == [], link
    only_bank = client.get(url, {"rule__exact": "payout_bank"}).content.decode()
    assert "Payout PO00000000006G to the bank" in only_bank
    assert "Payout PO00000000006G: fees" not in only_bank
    gave_up = client.get(url, {"state__exact": "gave_up"}).content.decode()
    assert "EUR 486.40" in gave_up and "EUR 12,883.10" not in gave_up


def test_booking_page_in_words_with_the_body_as_sent(client, viewer_of_a, bookings, tenant_a):
    client.force_login(viewer_of_a)
    payout = bookings["payout"]
    html = client.get(reverse("admin:bookings_booking_change", args=[payout.pk])).content.decode()
    # what it is, linked to the payout by URL
    assert "Payout " in html and "fees, VAT and transfer" in html
    assert f'{reverse("admin:gocardless_payout_changelist")}?q=PO00000000006G' in html
    # the facts in words: fees with VAT and currency, the arrival date readable
    assert "GoCardless fees" in html and "-EUR 38.40, of which VAT -EUR 6.40" in html
    assert "Thu 3 Dec 2026" in html
    # the lines: amounts with currency, the VAT with its code
    assert "-EUR 12,883.10" in html and "-EUR 6.40 (VAT code VN)" in html
    # the verbatim body, folded away and labelled
    assert "<summary>As sent to Exact</summary>" in html and 'class="mlc-raw"' in html
    assert "&quot;AmountVATFC&quot;: -6.4" in html
    # times in the company's zone
    local = timezone.localtime(payout.confirmed_at, tenant_a.zone)
    assert f"{local:%H:%M} {local.tzname()}" in html
    assert findings(html, codes=CODES, minor=_minor(*bookings.values())) == []

    receipt = bookings["receipt"]
    html = client.get(reverse("admin:bookings_booking_change", args=[receipt.pk])).content.decode()
    assert "Payment PM" in html and "EUR 486.40" in html and "Failed (needs attention)" in html
    assert findings(html, codes=CODES, minor=_minor(*bookings.values())) == []


def test_bookings_searched_by_whole_ids_filtered_by_period_and_their_audit_trail(
    client, viewer_of_a, bookings, tenant_a,
):
    """The list reads its table for the page and its count only (docs/admin-performance.md):
    ids are searched whole, the booking date is a filter of fixed periods (no date
    hierarchy), and a booking's audit trail is the entries about it (an index lookup)."""
    client.force_login(viewer_of_a)
    url = reverse("admin:bookings_booking_changelist")

    def shown(**params):
        return {b.pk for b in client.get(url, params).context["cl"].result_list}

    payout, bank = bookings["payout"], bookings["bank"]
    assert shown(q="PO00000000006G") == {payout.pk, bank.pk}
    assert shown(q="PO00000000006") == set()
    assert shown(q="payout_bank:PO00000000006G") == {bank.pk}
    html = client.get(url).content.decode()
    assert 'class="toplinks"' not in html and "This month" in html
    today = timezone.localdate()
    Booking.objects.filter(pk=payout.pk).update(booking_date=today - dt.timedelta(days=200))
    Booking.objects.filter(pk=bank.pk).update(booking_date=today)
    assert bank.pk in shown(booking_date_period="this_month")
    assert payout.pk not in shown(booking_date_period="last_90_days")

    audit_record(actor=Actor.system("bookings"), action="booking.confirmed", tenant=tenant_a,
                 obj=payout, message=f"{payout.key} is Exact entry 23")
    audit_record(actor=Actor.system("bookings"), action="booking.failed", tenant=tenant_a,
                 obj=bank, message=f"{bank.key}: refused")
    page = client.get(reverse("admin:bookings_booking_change", args=[payout.pk])).content
    link = re.search(r'href="([^"]+)">What happened to it', page.decode()).group(1)
    trail = client.get(link.replace("&amp;", "&")).context["cl"].result_list
    assert [e.action for e in trail] == ["booking.confirmed"]


def test_report_and_csv_in_words(
    client, tenant_a, viewer_of_a, booking_settings, world, gc_deliver
):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "1288.31")
    payment = world.collect(alpha, invoice, 128831)
    world.gc_sim.advance(days=10)
    gc_deliver()
    client.force_login(viewer_of_a)
    url = reverse("admin:bookings_booking_report")
    query = {"tenant": tenant_a.pk, "start": "2026-03-01", "end": "2026-03-31", "currency": "EUR"}
    html = client.get(url, query).content.decode()
    number = invoice["InvoiceNumber"]
    minor = {128831} | set(Booking.objects.values_list("amount_minor", flat=True))
    assert "Collected</th><td>1 payment, EUR 1,288.31" in html
    assert "Collected and paid out" in html  # the payment's status in words
    assert "EUR 1,288.31" in html
    # the attempt: by its invoice, linked to the collection engine's attempts by key
    attempt_key = payment["metadata"]["mlc_attempt"]
    assert f"Invoice {number}, attempt 1" in html
    assert f"?q={attempt_key}" in html
    assert "Confirmed in Exact" in html and "Paid to the bank" in html
    assert 'style="' not in html  # the strict CSP allows no style attributes
    assert findings(html, codes=CODES, minor=minor) == []

    body = client.get(url, {**query, "format": "csv"}).content.decode()
    first = next(csv.reader(io.StringIO(body)))
    assert "Currency" in first and first[0] == "Section"
    sections = csv_sections(body)
    (row,) = sections["Payment"]
    assert row["Status"] == "Collected and paid out" and row["Charge date"]
    assert (row["Amount"], row["Currency"]) == ("1288.31", "EUR")
    assert row["Collection attempt"] == f"Invoice {number}, attempt 1"
    assert row["Receipt booking"] == "Confirmed in Exact"
    (payout,) = sections["Payout"]
    assert payout["Status"] == "Paid to the bank" and payout["Currency"] == "EUR"
    entries = payout["Exact entries"]
    assert "Entry " in entries and "fees, VAT and transfer" in entries
    assert {r["Total"] for r in sections["Totals"]} >= {"Collected", "Paid to the bank"}
    cells = [c for line in csv.reader(io.StringIO(body)) for c in line]
    found = [
        f
        for f in text_findings(body, codes=CODES, minor=minor, cells=cells)
        if not f.startswith("amount without currency")
    ]
    assert found == []
