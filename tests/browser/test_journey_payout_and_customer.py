"""Open a payout and a customer (issue 15), in Chromium: from the dashboard's lists a finance
person opens the payouts, then one payout: its amount, its lines (which customer's payment,
for which invoice), the fees and the sums that must agree; from a line, the customer: the
Exact account, the GoCardless customer and mandate, the open invoices and the payments with
the invoices they were for. Screenshots:
artifacts/screenshots/test_a_finance_person_opens_a_payout_and_a_customer/.

Every date is derived from one ``now``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from core.calendars import tenant_today
from reconciliation.collection.models import AttemptState
from reconciliation.customers.models import LinkState
from tenants.models import Role
from tests.conftest import _member
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.gocardless.factories import (
    CustomerFactory,
    MandateFactory,
    PaymentFactory,
    PayoutFactory,
    PayoutItemFactory,
)
from tests.reconciliation.collection.factories import CollectionAttemptFactory
from tests.reconciliation.factories import CustomerLinkFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
CUSTOMER = "Bakkerij De Molen"


@pytest.fixture
def paid_out(tenant_a):
    user = _member(tenant_a, Role.VIEWER, "petra-payouts")
    user.set_password(PASSWORD)
    user.save()
    now = timezone.now()
    today = tenant_today(tenant_a, now=now)
    account = ExactAccountFactory(tenant=tenant_a, name=CUSTOMER, code="1001",
                                  email="ap@molen.example")
    customer = CustomerFactory(tenant=tenant_a, name=CUSTOMER, email="ap@molen.example")
    mandate = MandateFactory(tenant=tenant_a, customer_id=customer.gocardless_id,
                             scheme="sepa_core", status="active", reference="MOLEN-1")
    link = CustomerLinkFactory(tenant=tenant_a, exact_account=account,
                               gocardless_customer=customer, mandate=mandate,
                               state=LinkState.MATCHED)
    ExactReceivableFactory(tenant=tenant_a, account=account, invoice_number=26_000_301,
                           amount=Decimal("250.00"), outstanding=Decimal("250.00"),
                           due_date=today + dt.timedelta(days=10))
    payout = PayoutFactory(tenant=tenant_a, gocardless_id="POMOLEN00001", status="paid",
                           amount=22_405, deducted_fees=120, reference="MOLEN-PAYOUT-1",
                           gocardless_created_at=now - dt.timedelta(hours=2),
                           arrival_date=today)
    for n, (invoice, amount) in enumerate(((26_000_201, 14_500), (26_000_202, 8_025))):
        payment = PaymentFactory(tenant=tenant_a, gocardless_id=f"PMMOLEN0000{n + 1}",
                                 mandate_id=mandate.gocardless_id, amount=amount,
                                 status="paid_out", payout_id=payout.gocardless_id,
                                 charge_date=today - dt.timedelta(days=5 - n))
        CollectionAttemptFactory(
            tenant=tenant_a, account_exact_id=account.exact_id, account_label=CUSTOMER,
            invoice_number=invoice, amount=Decimal(amount) / 100,
            charge_date=payment.charge_date, mandate_gocardless_id=mandate.gocardless_id,
            payment_gocardless_id=payment.gocardless_id, state=AttemptState.PAID_OUT, flag="")
        PayoutItemFactory(tenant=tenant_a, payout=payout, position=n,
                          item_type="payment_paid_out", amount=str(amount),
                          payment_id=payment.gocardless_id, mandate_id=mandate.gocardless_id)
    PayoutItemFactory(tenant=tenant_a, payout=payout, position=2, item_type="gocardless_fee",
                      amount="-120", payment_id="PMMOLEN00001",
                      mandate_id=mandate.gocardless_id)
    return link, payout


def test_a_finance_person_opens_a_payout_and_a_customer(journey, paid_out):
    link, payout = paid_out
    page = journey.page
    journey.log_in("petra-payouts", PASSWORD)

    # the dashboard's lists lead to the payouts
    with page.expect_navigation():
        page.get_by_role("link", name="Payouts", exact=True).first.click()
    assert "/admin/gocardless/payout/" in page.url
    assert "POMOLEN00001" in page.locator("#result_list").inner_text()
    journey.shot("payouts")

    # the payout: amount, lines, sums that agree
    with page.expect_navigation():
        page.locator("#result_list").get_by_role("link", name="POMOLEN00001").click()
    assert page.url.endswith(f"/admin/gocardless/payout/{payout.pk}/change/")
    content = page.locator("#content")
    text = content.inner_text()
    assert "EUR 224.05" in text  # paid out (net)
    assert "MOLEN-PAYOUT-1" in text
    paid = page.get_by_role("heading", name="What was paid out")
    assert paid.count() == 1
    lines = content.locator("table", has=page.get_by_role("columnheader", name="Payment"))
    lines_text = lines.first.inner_text()
    for expected in ("PMMOLEN00001", "PMMOLEN00002", CUSTOMER, "26000201", "26000202",
                     "145.00", "80.25", "1.20"):
        assert expected in lines_text, expected
    sums = page.get_by_role("heading", name="Sums")
    assert sums.count() == 1
    assert "225.25" in text  # gross
    assert "Does not agree" not in text and "Agrees." in text
    assert "payment_paid_out" not in text and "gocardless_fee" not in text  # in words
    journey.shot("payout")

    # from one of its lines, the customer
    with page.expect_navigation():
        lines.first.get_by_role("link", name=CUSTOMER).first.click()
    assert page.url.endswith(f"/admin/customers/customerlink/{link.pk}/change/")
    text = page.locator("#content").inner_text()
    for heading in ("Exact Online account", "GoCardless customer", "Mandates",
                    "Open invoices in Exact Online", "Payments"):
        assert page.get_by_role("heading", name=heading, exact=True).count() == 1, heading
    for expected in (CUSTOMER, "ap@molen.example", "MOLEN-1", "26000301", "250.00",
                     "PMMOLEN00001", "PMMOLEN00002", "145.00", "80.25"):
        assert expected in text, expected
    payments = page.locator("#content table",
                            has=page.get_by_role("columnheader", name="For invoices"))
    assert "26000201" in payments.inner_text() and "26000202" in payments.inner_text()
    assert "sepa_core" not in text and "paid_out" not in text  # in words
    journey.shot("customer")
