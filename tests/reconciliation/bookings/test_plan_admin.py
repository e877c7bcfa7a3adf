"""The page of subscription and instalment payments: each company sees its own; a payment no
single invoice fitted is decided by an operator (an invoice from the customer's open ones, or
"not an invoice payment"), audited with the person; a decision that cannot be taken is a
message in words, never a 500; viewers only read."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from core.audit import Actor
from core.models import AuditEntry
from reconciliation.bookings.models import PlanMatchState, PlanPaymentMatch
from reconciliation.bookings.plan_matching import plan_payment_match
from tests.gocardless.factories import PaymentFactory
from tests.reconciliation.bookings.factories import PlanPaymentMatchFactory
from tests.reconciliation.collection.selection_fixtures import (
    customer,
    gocardless_customer,
    invoice,
)

pytestmark = pytest.mark.django_db

LIST = "admin:bookings_planpaymentmatch_changelist"
DAY = dt.date(2026, 3, 10)


def change_url(match) -> str:
    return reverse("admin:bookings_planpaymentmatch_change", args=[match.pk])


@pytest.fixture
def waiting(tenant_a):
    """A subscription payment of EUR 25.00 and two open invoices of that amount: it waits."""
    account, link, mandate = customer(tenant_a, name="Alpha Trading")
    gocardless_customer(tenant_a, link, mandate)
    first = invoice(tenant_a, account, "25.00", due=DAY - dt.timedelta(days=2), number=26001)
    second = invoice(tenant_a, account, "25.00", due=DAY + dt.timedelta(days=2), number=26002)
    payment = PaymentFactory(
        tenant=tenant_a,
        mandate_id=mandate.gocardless_id,
        amount=2500,
        charge_date=DAY,
        status="pending_submission",
        subscription_id="SB0000000042",
    )
    match = plan_payment_match(payment=payment, actor=Actor.system("test"))
    assert match.state == PlanMatchState.WAITING
    return match, first, second


def test_the_list_shows_the_companys_own_plan_payments_in_words(
    client, operator_of_a, tenant_b, waiting
):
    match, _, _ = waiting
    theirs = PlanPaymentMatchFactory(tenant=tenant_b)
    client.force_login(operator_of_a)

    page = client.get(reverse(LIST)).content.decode()

    assert match.payment.gocardless_id in page
    assert theirs.payment.gocardless_id not in page
    assert "Subscription SB0000000042" in page
    assert "EUR 25.00" in page
    assert "Waiting for a person: no single open invoice fits" in page
    assert "2 open invoices of EUR 25.00 fit (26001, 26002)" in page
    assert client.get(change_url(theirs)).status_code in (302, 404)


def test_an_operator_picks_the_invoice(client, operator_of_a, waiting):
    match, _, second = waiting
    client.force_login(operator_of_a)
    page = client.get(change_url(match)).content.decode()
    assert "Invoice 26002: EUR 25.00 left to pay, due" in page
    assert "No invoice: it is not an invoice payment" in page
    assert "Alpha Trading" in page

    response = client.post(change_url(match), {"decision": str(second.exact_id)})

    assert response.status_code == 302 and response["Location"] == reverse(LIST)
    match.refresh_from_db()
    assert match.state == PlanMatchState.MATCHED and match.invoice_number == 26002
    assert match.decided_by == operator_of_a
    entry = AuditEntry.objects.get(action="plan_payment.matched")
    assert entry.actor_user == operator_of_a
    # Decided: nothing to answer any more, the page only shows it.
    page = client.get(change_url(match)).content.decode()
    assert 'name="decision"' not in page
    assert f"By {operator_of_a.get_username()}" in page
    assert client.post(change_url(match), {"decision": "not_invoice"}).status_code == 403


def test_an_operator_says_it_is_not_an_invoice_payment(client, operator_of_a, waiting):
    match, _, _ = waiting
    client.force_login(operator_of_a)

    client.post(change_url(match), {"decision": "not_invoice"})

    match.refresh_from_db()
    assert match.state == PlanMatchState.NOT_INVOICE
    assert AuditEntry.objects.get(action="plan_payment.not_invoice").actor_user == operator_of_a


def test_an_invoice_closed_meanwhile_is_a_message_not_an_error(client, operator_of_a, waiting):
    match, first, _ = waiting
    first.is_fully_paid, first.outstanding = True, 0
    first.save()
    client.force_login(operator_of_a)

    response = client.post(change_url(match), {"decision": str(first.exact_id)}, follow=True)

    assert response.status_code == 200
    assert "That invoice is no longer open" in response.content.decode()
    match.refresh_from_db()
    assert match.state == PlanMatchState.WAITING
    assert not AuditEntry.objects.filter(action__startswith="plan_payment.matched").exists()


def test_a_viewer_reads_but_cannot_decide(client, viewer_of_a, waiting):
    match, first, _ = waiting
    client.force_login(viewer_of_a)

    page = client.get(change_url(match)).content.decode()
    assert 'name="decision"' not in page
    assert client.post(change_url(match), {"decision": str(first.exact_id)}).status_code == 403
    match.refresh_from_db()
    assert match.state == PlanMatchState.WAITING
    assert PlanPaymentMatch.objects.count() == 1
