"""Booking settings validated against Exact (admin: form errors, never a 500); bookings by
state with Re-post (operators, audited with the user; viewers read only); the report page
with drill-down links and CSV export."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.models import AuditEntry
from reconciliation.bookings.config import booking_settings_validate
from reconciliation.bookings.models import Booking, BookingSettings, BookingState, RepostBatch
from tests.reconciliation.bookings.csv_sections import csv_totals
from tests.reconciliation.bookings.factories import BookingFactory

pytestmark = pytest.mark.django_db


def settings_for(tenant, **fields) -> BookingSettings:
    values = dict(
        clearing_journal_code="21",
        receivables_gl_code="1300",
        fees_gl_code="4600",
        transfer_gl_code="1190",
    )
    values.update(fields)
    return BookingSettings(tenant=tenant, **values)


def test_validation_resolves_codes_to_guids(tenant_a, ex_sim_fast, ex_connection):
    settings = settings_for(tenant_a, bank_journal_code=" 20 ")
    booking_settings_validate(settings=settings)
    assert settings.bank_journal_code == "20"
    assert set(settings.resolved["gl"]) == {"1300", "4600", "1190"}
    assert settings.validated_at is not None


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"clearing_journal_code": "70"}, "clearing_journal_code", "bank journal (type 12)"),
        ({"clearing_journal_code": "99"}, "clearing_journal_code", "no journal 99"),
        ({"bank_journal_code": "21"}, "bank_journal_code", "must differ"),
        ({"receivables_gl_code": "8000"}, "receivables_gl_code", "not a receivables"),
        ({"fees_gl_code": "9999"}, "fees_gl_code", "no G/L account 9999"),
        ({"transfer_gl_code": "1300"}, "transfer_gl_code", "cannot be a debtors"),
    ],
)
def test_validation_names_the_wrong_field(
    tenant_a, ex_sim_fast, ex_connection, fields, field, message
):
    with pytest.raises(ValidationError) as caught:
        booking_settings_validate(settings=settings_for(tenant_a, **fields))
    assert message in " ".join(caught.value.message_dict[field])


def test_validation_without_exact_connection(tenant_a):
    with pytest.raises(ValidationError, match="Connect Exact Online"):
        booking_settings_validate(settings=settings_for(tenant_a))


def _form(tenant, **fields):
    data = {
        "tenant": tenant.pk,
        "enabled": "on",
        "receipt_on": "confirmed",
        "clearing_journal_code": "21",
        "bank_journal_code": "",
        "receivables_gl_code": "1300",
        "fees_gl_code": "4600",
        "app_fees_gl_code": "",
        "surcharges_gl_code": "",
        "fees_vat_code": "",
        "transfer_gl_code": "1190",
        "unmatched_gl_code": "",
    }
    data.update(fields)
    return data


def test_admin_saves_valid_settings_and_shows_errors(
    client, tenant_a, admin_of_a, ex_sim_fast, ex_connection
):
    client.force_login(admin_of_a)
    url = reverse("admin:bookings_bookingsettings_add")
    response = client.post(url, _form(tenant_a, clearing_journal_code="70"))
    assert response.status_code == 200
    assert "bank journal (type 12)" in response.content.decode()
    assert not BookingSettings.objects.exists()

    # Exact unreachable: a message on the form, not a 500.
    ex_sim_fast.inject("status", status=400, count=1, path="financial/Journals")
    response = client.post(url, _form(tenant_a))
    assert response.status_code == 200
    assert "Could not read journals" in response.content.decode()
    ex_sim_fast.inject("clear")

    response = client.post(url, _form(tenant_a))
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = BookingSettings.objects.get(tenant=tenant_a)
    assert saved.resolved["gl"]["1300"]
    audited = AuditEntry.objects.filter(tenant=tenant_a, object_type="bookings.bookingsettings")
    assert audited.exists()


def test_operator_cannot_change_settings(client, tenant_a, operator_of_a):
    client.force_login(operator_of_a)
    response = client.post(reverse("admin:bookings_bookingsettings_add"), _form(tenant_a))
    assert response.status_code == 403


def test_bookings_by_state_and_repost(
    client,
    tenant_a,
    tenant_b,
    operator_of_a,
    viewer_of_a,
    booking_settings,
    world,
    q_sync,
    run_on_commit,
):
    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "10.00")
    failed = BookingFactory(
        tenant=tenant_a,
        state=BookingState.GAVE_UP,
        attempts=8,
        last_error="boom",
        gocardless_id="PM1",
        facts={
            "payment": "PM1",
            "invoice": invoice["InvoiceNumber"],
            "amount": 1000,
            "account": customer["account"],
            "attempt": "x/1",
        },
        amount_minor=1000,
    )
    other = BookingFactory(tenant=tenant_b, state=BookingState.GAVE_UP)
    url = reverse("admin:bookings_booking_changelist")

    client.force_login(viewer_of_a)
    page = client.get(url, {"state__exact": "gave_up"})
    assert page.status_code == 200
    body = page.content.decode()
    assert f"Payment PM1 collected for invoice {invoice['InvoiceNumber']}" in body
    assert other.gocardless_id not in body
    assert "Failed (needs attention)" in body and "EUR 10.00" in body
    assert "Reconciliation report" in body
    with run_on_commit():
        client.post(url, {"action": "repost", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert failed.state == BookingState.GAVE_UP  # viewers cannot re-post
    assert world.ledger() == []
    assert not RepostBatch.objects.exists()

    client.force_login(operator_of_a)
    with run_on_commit():
        response = client.post(
            url, {"action": "repost", "_selected_action": [failed.pk, other.pk]}, follow=True
        )
    assert response.status_code == 200
    failed.refresh_from_db()
    other.refresh_from_db()
    assert failed.state == BookingState.CONFIRMED and other.state == BookingState.GAVE_UP
    assert len(world.ledger()) == 1
    (batch,) = RepostBatch.objects.all()
    assert batch.tenant == tenant_a and batch.booking_ids == [failed.pk]
    entry = AuditEntry.objects.get(action="booking.repost_requested")
    assert entry.actor_user == operator_of_a and entry.object_id == str(failed.pk)
    change = client.get(reverse("admin:bookings_booking_change", args=[failed.pk]))
    assert "BankEntries(guid" in change.content.decode()


def test_report_page_and_csv(
    client, tenant_a, tenant_b, viewer_of_a, booking_settings, world, gc_deliver
):
    alpha = world.customer("Alpha BV")
    invoice = world.invoice(alpha, "121.00")
    payment = world.collect(alpha, invoice, 12100)
    world.gc_sim.advance(days=10)
    gc_deliver()
    client.force_login(viewer_of_a)
    url = reverse("admin:bookings_booking_report")
    assert client.get(url).status_code == 200
    query = {"tenant": tenant_a.pk, "start": "2026-03-01", "end": "2026-03-31", "currency": "EUR"}
    page = client.get(url, query)
    assert page.status_code == 200
    body = page.content.decode()
    assert payment["id"] in body
    assert reverse("admin:gocardless_payment_changelist") in body
    assert reverse("admin:core_auditentry_changelist") in body
    assert reverse("admin:collection_collectionattempt_changelist") in body
    payout = Booking.objects.get(rule="payout")
    assert reverse("admin:bookings_booking_change", args=[payout.pk]) in body
    assert payout.sentence() in body

    response = client.get(url, {**query, "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    totals = csv_totals(response.content.decode())
    assert Decimal(totals["Collected"]["Amount"]) == Decimal("121.00")
    # 121.00 - 1.41 fee - 0.28 VAT
    assert (totals["Paid to the bank"]["Amount"], totals["Paid to the bank"]["Currency"]) == (
        "119.31",
        "EUR",
    )

    # Another tenant's report: not offered, refused.
    assert client.get(url, {**query, "tenant": tenant_b.pk}).status_code == 200
    refused = client.get(url, {**query, "tenant": tenant_b.pk}).content.decode()
    assert "Select a valid choice" in refused
