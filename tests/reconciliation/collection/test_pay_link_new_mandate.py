"""A payment link where instant bank pay is not offered (a Dutch payer): the hosted page sets up
a new mandate and a Direct Debit payment on it. The customer's link moves to the new mandate,
so collection resumes with it for the customer's later invoices, and the payment books
against the invoice (docs/failures.md, docs/customers-and-mandates.md)."""

# The fixtures imported from other test modules are redefined as test arguments:
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.calendars import tenant_today
from exact.models import ExactAccount
from exact.sync import exact_sync
from gocardless.client import GoCardlessClient
from gocardless.models import Customer, Mandate
from reconciliation.bookings.models import Booking, BookingState, Rule
from reconciliation.bookings.posting import bookings_sweep
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    FailureSettings,
    PayLink,
    PayLinkState,
    RunTrigger,
)
from reconciliation.collection.runs import run_live
from reconciliation.customers.models import CustomerLink, LinkState
from tests.plugins.exact_sim import DIVISION
from tests.reconciliation.bookings.conftest import (  # noqa: F401 (fixtures)
    booking_settings,
    ex_sim_fast,
    gc_api,
    world,
)

pytestmark = pytest.mark.django_db


def test_paying_through_a_new_mandate_moves_the_customer_to_it(
    tenant_a, booking_settings, world, gc_deliver, gc_connection, ex_connection
):
    gc, ex = world.gc_sim, world.ex_sim
    gc.clock.set(timezone.now())
    gc.set_rate_limit(1_000_000)
    tenant_a.collection_mode = "auto"
    tenant_a.currencies = ["EUR"]
    tenant_a.lead_days = 30
    tenant_a.save()
    FailureSettings.objects.create(tenant=tenant_a, pay_links_enabled=True)

    account = ex.seed_account(DIVISION, name="Visser B.V.", email="ap@visser.example",
                              country="NL")
    invoice = ex.seed_invoice(DIVISION, account=account["ID"], amount="250.00", currency="EUR",
                              due_date=tenant_today(tenant_a))
    exact_sync(connection=ex_connection, trigger="test")
    seeded = gc.seed(customers=[{"company_name": "Visser B.V.", "email": "ap@visser.example"}])
    customer_id = seeded["customers"][0]
    old_id = gc.seed(mandates=[{"customer": customer_id, "scheme": "sepa_core",
                                "status": "active"}])["mandates"][0]
    old = Mandate.objects.create(tenant=tenant_a, gocardless_id=old_id, status="active",
                                 scheme="sepa_core", customer_id=customer_id)
    link = CustomerLink.objects.create(
        tenant=tenant_a,
        exact_account=ExactAccount.objects.get(tenant=tenant_a, exact_id=account["ID"]),
        exact_account_guid=account["ID"],
        gocardless_customer=Customer.objects.create(tenant=tenant_a,
                                                    gocardless_id=customer_id),
        state=LinkState.MATCHED,
        mandate=old,
    )
    run_live(tenant=tenant_a, trigger=RunTrigger.USER,
             client=GoCardlessClient.for_connection(gc_connection))
    attempt = CollectionAttempt.objects.get()

    gc.fail_payment(attempt.payment_gocardless_id, "mandate_cancelled")
    gc.run_scenario("mandate_cancelled", old_id)
    assert set(gc_deliver()) <= {200, 204}
    link.refresh_from_db()
    assert link.stop_reason  # no usable mandate: collection stopped for this customer
    pay_link = PayLink.objects.get()
    assert pay_link.state == PayLinkState.SENT and not pay_link.instant  # EUR, payer in NL

    # The customer completes the page with a new bank account: a mandate and a payment.
    made = gc.complete_billing_request_flow(
        pay_link.flow_gocardless_id, iban="NL91ABNA0417164300",
        account_holder_name="Visser B.V.", email="ap@visser.example",
    )
    assert made["id"].startswith("MD") and made["id"] != old_id
    gc.advance(days=10)  # the mandate activates; the payment is submitted and confirmed
    assert set(gc_deliver()) <= {200, 204}

    link.refresh_from_db()
    assert link.mandate.gocardless_id == made["id"]
    assert not link.stop_reason  # collection resumed with the new mandate
    pay_link.refresh_from_db()
    attempt.refresh_from_db()
    assert pay_link.state == PayLinkState.PAID, pay_link.state
    assert attempt.state == AttemptState.PAID_BY_LINK
    payment = gc.resource("payments", pay_link.payment_gocardless_id)
    assert payment["links"]["mandate"] == made["id"]

    bookings_sweep(now=timezone.now() + timedelta(minutes=5))
    receipt = Booking.objects.get(rule=Rule.RECEIPT, gocardless_id=pay_link.payment_gocardless_id)
    assert receipt.state == BookingState.CONFIRMED
    assert world.open_amount(invoice) == Decimal("0.00")
