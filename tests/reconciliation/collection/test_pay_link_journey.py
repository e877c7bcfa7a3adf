"""Acceptance: pay by link from a failed payment to the receipt booked in Exact, through both
simulators (docs/failures.md).

A German customer's payment fails because the mandate was cancelled; the company sends
payment links; the customer gets the e-mail, pays on GoCardless' hosted page by instant
bank transfer; the payment is confirmed; the receipt is booked in Exact against the invoice,
which closes; the link and the attempt say so, and collection runs leave the invoice alone
while the link is open.
"""

# The fixtures imported from other test modules are redefined as test arguments:
# ruff: noqa: F811

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from core.calendars import tenant_today
from core.models import AuditEntry
from exact.models import ExactAccount, ExactReceivable
from exact.sync import exact_sync
from gocardless.client import GoCardlessClient
from gocardless.models import Mandate
from reconciliation.bookings.models import Booking, BookingState, Rule
from reconciliation.bookings.posting import bookings_sweep
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    FailureSettings,
    PayLink,
    PayLinkState,
    RunTrigger,
    SkipReason,
)
from reconciliation.collection.pay_link_rules import pay_link_skip, pay_links_open
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


def test_failed_payment_to_pay_link_to_booked_receipt(
    tenant_a, booking_settings, world, gc_deliver, gc_connection, ex_connection
):
    gc, ex = world.gc_sim, world.ex_sim
    gc.clock.set(timezone.now())  # the simulator's today is the tenant's today
    gc.set_rate_limit(1_000_000)
    tenant_a.collection_mode = "auto"
    tenant_a.currencies = ["EUR"]
    tenant_a.lead_days = 30
    tenant_a.save()
    FailureSettings.objects.create(tenant=tenant_a, pay_links_enabled=True)

    # Exact: a German customer with an e-mail address and an open invoice of EUR 121.00.
    account = ex.seed_account(DIVISION, name="Delta GmbH", email="ap@delta.example", country="DE")
    invoice = ex.seed_invoice(
        DIVISION,
        account=account["ID"],
        amount="121.00",
        currency="EUR",
        due_date=tenant_today(tenant_a),
    )
    exact_sync(connection=ex_connection, trigger="test")
    exact_account = ExactAccount.objects.get(tenant=tenant_a, exact_id=account["ID"])
    # GoCardless: an active SEPA mandate, linked to the Exact customer.
    mandate_id = gc.seed(
        mandates=[{"scheme": "sepa_core", "status": "active", "company_name": "Delta GmbH"}]
    )["mandates"][0]
    mandate = Mandate.objects.create(
        tenant=tenant_a, gocardless_id=mandate_id, status="active", scheme="sepa_core"
    )
    CustomerLink.objects.create(
        tenant=tenant_a,
        exact_account=exact_account,
        exact_account_guid=exact_account.exact_id,
        state=LinkState.MATCHED,
        mandate=mandate,
    )

    run = run_live(
        tenant=tenant_a,
        trigger=RunTrigger.USER,
        client=GoCardlessClient.for_connection(gc_connection),
    )
    assert run.submitted == 1
    attempt = CollectionAttempt.objects.get()

    # The customer's bank fails the payment: the mandate was cancelled.
    gc.fail_payment(attempt.payment_gocardless_id, "mandate_cancelled")
    gc.run_scenario("mandate_cancelled", mandate_id)
    assert set(gc_deliver()) <= {200, 204}
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.PAY_LINK_SENT, attempt.flag
    link = PayLink.objects.get()
    assert link.state == PayLinkState.SENT and link.instant  # EUR, payer in Germany
    (message,) = mail.outbox
    assert message.to == ["ap@delta.example"]
    url = re.search(r"https?://\S+/flows/\S+", message.body).group(0)
    assert url == link.authorisation_url

    # While the link is open, collection runs leave the invoice alone.
    open_links = pay_links_open(tenant=tenant_a)
    assert pay_link_skip(attempt.receivable_exact_id, open_links)[0] == SkipReason.PAY_LINK_SENT

    # The customer pays on the hosted page (instant bank pay).
    with urllib.request.urlopen(url) as page:
        assert "Pay EUR 121.00" in page.read().decode()
    form = urllib.parse.urlencode({"email": "ap@delta.example", "company_name": "Delta GmbH"})
    with urllib.request.urlopen(url, data=form.encode()) as page:
        assert "your payment is made" in page.read().decode()
    assert set(gc_deliver()) <= {200, 204}

    link.refresh_from_db()
    attempt.refresh_from_db()
    assert link.state == PayLinkState.PAID and link.payment_gocardless_id
    assert attempt.state == AttemptState.PAID_BY_LINK
    payment = gc.resource("payments", link.payment_gocardless_id)
    assert payment["metadata"] == link.payment_metadata
    assert payment["status"] == "confirmed"

    # The receipt is booked in Exact against the invoice, which closes.
    bookings_sweep()
    receipt = Booking.objects.get(rule=Rule.RECEIPT, gocardless_id=link.payment_gocardless_id)
    assert receipt.state == BookingState.CONFIRMED
    assert receipt.facts["invoice"] == invoice["InvoiceNumber"]
    assert receipt.amount_minor == 12100
    assert world.open_amount(invoice) == Decimal("0.00")
    exact_sync(connection=ex_connection, full=True, trigger="test")
    assert not ExactReceivable.objects.filter(tenant=tenant_a, exact_id=invoice["TermID"]).exists()

    # Every step audited: the link's states in order, the attempt's too.
    states = [
        e.after["state"]
        for e in AuditEntry.objects.filter(
            action="paylink.status_changed", object_id=str(link.pk)
        ).order_by("pk")
    ]
    assert states == ["sent", "paid"]
    attempt_states = [
        e.after["state"]
        for e in AuditEntry.objects.filter(
            object_id=str(attempt.pk), action="collectionattempt.status_changed"
        ).order_by("pk")
    ]
    assert attempt_states == ["pay_link_sent", "paid_by_link"]
