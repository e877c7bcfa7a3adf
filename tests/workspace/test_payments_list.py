"""The payments list (reconciliation/workspace/payments_admin.py): whose payment (the Exact
customer, linked), for which invoice (linked to its collection attempt), on which mandate
(linked), its status in words, the amount with its currency and the charge date, in a fixed
number of queries however many rows a page has."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.gocardless.factories import CustomerFactory, MandateFactory, PaymentFactory
from tests.reconciliation.collection.factories import CollectionAttemptFactory
from tests.reconciliation.factories import CustomerLinkFactory
from tests.workspace.page_words import findings, visible

pytestmark = pytest.mark.django_db

LIST = "/admin/gocardless/payment/"
# What a page of payments costs: the session, the user, their memberships, the count, the
# rows, the filters' choices, and the page's mandates, customer links and attempts.
MAX_QUERIES = 14


def _customer(tenant, name: str, code: str):
    customer = CustomerFactory(tenant=tenant)
    mandate = MandateFactory(tenant=tenant, customer_id=customer.gocardless_id)
    link = CustomerLinkFactory(tenant=tenant, gocardless_customer=customer, mandate=mandate,
                               exact_name=name, exact_code=code)
    return mandate, link


def _payment(tenant, mandate, *, invoice: int, status="paid_out", amount=145200):
    payment = PaymentFactory(tenant=tenant, status=status, amount=amount,
                             mandate_id=mandate.gocardless_id, charge_date=dt.date(2026, 3, 5))
    attempt = CollectionAttemptFactory(tenant=tenant, payment_gocardless_id=payment.gocardless_id,
                                       mandate_gocardless_id=mandate.gocardless_id,
                                       invoice_number=invoice, amount=Decimal("1452.00"))
    return payment, attempt


def _rows(tenant, n: int) -> None:
    mandate, _link = _customer(tenant, "Filler B.V.", "9000")
    for i in range(n):
        _payment(tenant, mandate, invoice=80000 + i, status=("confirmed", "failed")[i % 2],
                 amount=1000 + i)


def test_each_row_says_whose_payment_for_which_invoice(client, tenant_a, admin_of_a):
    mandate, link = _customer(tenant_a, "Bakkerij Van Dijk B.V.", "1001")
    _payment_row, attempt = _payment(tenant_a, mandate, invoice=26001)
    # A payment of a mandate whose customer is linked by customer only (an older mandate).
    older = MandateFactory(tenant=tenant_a, customer_id=link.gocardless_customer.gocardless_id)
    _second, _attempt = _payment(tenant_a, older, invoice=26002, status="confirmed")
    client.force_login(admin_of_a)
    html = client.get(LIST).content.decode()
    text, _cells = visible(html)
    assert "Bakkerij Van Dijk B.V. (1001)" in text
    assert reverse("admin:customers_customerlink_change", args=[link.pk]) in html
    assert "Invoice 26001" in text and "Invoice 26002" in text
    assert reverse("admin:collection_collectionattempt_change", args=[attempt.pk]) in html
    assert reverse("admin:gocardless_mandate_by_id",
                   args=[tenant_a.pk, mandate.gocardless_id]) in html
    assert "Collected and paid out" in text and 'title="paid_out"' in html
    assert "EUR 1,452.00" in text and "Thu 5 Mar 2026" in text
    codes = {"paid_out", "confirmed", "failed"}
    assert findings(html, codes=codes, minor={145200}) == []


def test_a_payment_without_a_customer_link_or_attempt_shows_dashes(client, tenant_a,
                                                                   admin_of_a):
    customer = CustomerFactory(tenant=tenant_a)
    mandate = MandateFactory(tenant=tenant_a, customer_id=customer.gocardless_id)
    PaymentFactory(tenant=tenant_a, mandate_id=mandate.gocardless_id)
    client.force_login(admin_of_a)
    html = client.get(LIST).content.decode()
    # The GoCardless customer stands in for the Exact one.
    assert reverse("admin:gocardless_customer_by_id",
                   args=[tenant_a.pk, customer.gocardless_id]) in html


def test_the_change_page_shows_the_same(client, tenant_a, admin_of_a):
    mandate, _link = _customer(tenant_a, "Visser Transport B.V.", "1009")
    payment, _attempt = _payment(tenant_a, mandate, invoice=26022)
    client.force_login(admin_of_a)
    html = client.get(reverse("admin:gocardless_payment_change", args=[payment.pk])).content
    text, _cells = visible(html.decode())
    assert "Visser Transport B.V. (1009)" in text and "Invoice 26022" in text


def test_another_companys_invoices_and_names_never_show(client, tenant_a, tenant_b,
                                                        admin_of_a):
    mandate, _link = _customer(tenant_a, "Alpha Klant B.V.", "1")
    _payment(tenant_a, mandate, invoice=11111)
    # Tenant B: the same GoCardless ids cannot link across companies.
    b_mandate = MandateFactory(tenant=tenant_b, gocardless_id=mandate.gocardless_id,
                               customer_id="CUB")
    CustomerLinkFactory(tenant=tenant_b, mandate=b_mandate, exact_name="Bravo Secret Ltd")
    client.force_login(admin_of_a)
    html = client.get(LIST).content.decode()
    assert "Alpha Klant B.V." in html and "Bravo Secret Ltd" not in html


@pytest.mark.parametrize("rows", [5, 50])
def test_a_page_reads_a_fixed_number_of_queries(client, tenant_a, admin_of_a,
                                                django_assert_max_num_queries, rows):
    client.force_login(admin_of_a)
    client.get(LIST)  # the first visit also writes the chosen company into the session
    _rows(tenant_a, rows)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIST)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(LIST)
    _rows(tenant_a, 3)
    with CaptureQueriesContext(connection) as again:
        client.get(LIST)
    assert len(again.captured_queries) == len(captured.captured_queries)
