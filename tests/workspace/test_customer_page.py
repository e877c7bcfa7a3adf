"""The customer page (issue 15): a customer link's page shows the Exact account, the
GoCardless customer and mandates, the open invoices, the payments with the invoices they
were for, the mandate invitations and the audit trail, all in words, with a query count that
does not grow with the customer's history. The customer list says states, schemes and
languages in words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from core.audit import Actor, audit_record
from core.display import PAYMENT_STATUS_WORDS
from reconciliation.collection.models import AttemptState
from reconciliation.customers.models import InvitationState, LinkState
from reconciliation.workspace.customer_admin import CustomerPageAdmin
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.gocardless.factories import CustomerFactory, MandateFactory, PaymentFactory
from tests.reconciliation.collection.factories import CollectionAttemptFactory
from tests.reconciliation.factories import CustomerLinkFactory, MandateInvitationFactory
from tests.workspace.page_words import findings

pytestmark = pytest.mark.django_db

CODES = {"active", "sepa_core", "bacs", "sent", "completed", "nl", "de", "paid_out",
         "customerlink.matched", "collection.attempt_paid_out", "mandate.status_changed"}


def _customer(tenant, *, history: int):
    """A linked customer with ``history`` of each: invoices, payments (each for an invoice
    through a collection attempt), invitations and audit entries."""
    account = ExactAccountFactory(tenant=tenant, name="Bakkerij De Molen", code="  1001",
                                  email="ap@molen.example", payment_condition="DD",
                                  language="NL")
    customer = CustomerFactory(tenant=tenant, name="Bakkerij De Molen")
    mandate = MandateFactory(tenant=tenant, customer_id=customer.gocardless_id,
                             scheme="sepa_core", status="active", reference="MOLEN-1")
    link = CustomerLinkFactory(tenant=tenant, exact_account=account, gocardless_customer=customer,
                               mandate=mandate, state=LinkState.MATCHED)
    audit_record(actor=Actor.system("customers.exact_reflection"),
                 action="customerlink.matched", tenant=tenant, obj=link, message="matched")
    for n in range(history):
        ExactReceivableFactory(tenant=tenant, account=account, invoice_number=26_000 + n,
                               amount=Decimal("1320.00") + n, outstanding=Decimal("1320.00") + n,
                               due_date=dt.date(2026, 12, 1) + dt.timedelta(days=n))
        payment = PaymentFactory(tenant=tenant, mandate_id=mandate.gocardless_id,
                                 amount=145_000 + n, status="paid_out",
                                 charge_date=dt.date(2026, 11, 1) + dt.timedelta(days=n))
        attempt = CollectionAttemptFactory(
            tenant=tenant, account_exact_id=account.exact_id, invoice_number=25_000 + n,
            mandate_gocardless_id=mandate.gocardless_id,
            payment_gocardless_id=payment.gocardless_id, state=AttemptState.PAID_OUT)
        invitation = MandateInvitationFactory(
            tenant=tenant, link=link, language="nl" if n % 2 else "de",
            # At most one open invitation per customer (a constraint): the newest.
            state=(InvitationState.SENT if n == history - 1 else
                   InvitationState.COMPLETED if n % 2 else InvitationState.EXPIRED))
        audit_record(actor=Actor.schedule("gocardless.events_poll"),
                     action="collection.attempt_paid_out", tenant=tenant, obj=attempt,
                     before={"state": "confirmed"}, after={"state": "paid_out"},
                     message="Payment paid out")
        audit_record(actor=Actor.system("customers.invitations"),
                     action="mandateinvitation.sent", tenant=tenant, obj=invitation)
        audit_record(actor=Actor.webhook("gocardless"), action="mandate.status_changed",
                     tenant=tenant, obj=mandate, before={"status": "submitted"},
                     after={"status": "active"})
    return link


def _get(client, link):
    response = client.get(reverse("admin:customers_customerlink_change", args=[link.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_customer_link_admin_is_the_customer_page():
    from django.contrib import admin

    from reconciliation.customers.models import CustomerLink

    assert isinstance(admin.site._registry[CustomerLink], CustomerPageAdmin)


def test_the_page_shows_the_customer_across_both_systems_in_words(client, tenant_a,
                                                                  operator_of_a):
    link = _customer(tenant_a, history=2)
    client.force_login(operator_of_a)
    page = _get(client, link)

    assert "Bakkerij De Molen" in page and "1001" in page and "ap@molen.example" in page
    assert "Direct debit (DD)" in page
    assert link.gocardless_customer.gocardless_id in page
    assert "SEPA Direct Debit" in page and "Active (ready to collect)" in page
    assert "MOLEN-1" in page
    assert "EUR 1,320.00" in page and "EUR 1,321.00" in page  # open invoices
    assert "EUR 1,450.00" in page and PAYMENT_STATUS_WORDS["paid_out"] in page  # payments
    assert "25000" in page and "25001" in page  # the invoices the payments were for
    assert "Expired" in page and "Dutch" in page and "German" in page  # invitations
    assert "Payment paid out" in page and "Mandate invitation e-mailed" in page  # history
    assert "Mandate status changed at GoCardless" in page and "Customer matched" in page
    assert findings(page, codes=CODES, minor={145_000, 145_001}) == []


def test_the_page_does_not_show_another_companys_customer(client, tenant_a, tenant_b,
                                                          operator_of_a):
    other = _customer(tenant_b, history=1)
    client.force_login(operator_of_a)
    response = client.get(reverse("admin:customers_customerlink_change", args=[other.pk]))
    assert response.status_code in (302, 403, 404)


def test_the_query_count_does_not_grow_with_the_history(client, tenant_a, operator_of_a,
                                                        django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    small = _customer(tenant_a, history=1)
    large = _customer(tenant_a, history=12)
    client.force_login(operator_of_a)
    _get(client, small)  # warm the session and caches
    with CaptureQueriesContext(connection) as seen:
        _get(client, small)
    with django_assert_max_num_queries(len(seen)):
        page = _get(client, large)
    assert "EUR 1,331.00" in page  # the twelfth invoice is there


def test_the_customer_list_says_states_schemes_and_languages_in_words(client, tenant_a,
                                                                     operator_of_a):
    link = _customer(tenant_a, history=1)
    bacs = MandateFactory(tenant=tenant_a, scheme="bacs", status="submitted")
    CustomerLinkFactory(tenant=tenant_a, mandate=bacs, state=LinkState.MATCHED)
    client.force_login(operator_of_a)
    changelist = reverse("admin:customers_customerlink_changelist")
    page = client.get(changelist).content.decode()
    assert "SEPA Direct Debit" in page and "Bacs Direct Debit" in page
    assert "Sent to the customer&#x27;s bank" in page or "Sent to the customer's bank" in page
    assert findings(page, codes=CODES, minor=set()) == []
    for query in ("?mandate_status=active", "?invitation_state=sent", "?state__exact=matched"):
        assert findings(client.get(changelist + query).content.decode(), codes=CODES,
                        minor=set()) == []
    invitations = client.get(reverse("admin:customers_mandateinvitation_changelist"))
    assert "German" in invitations.content.decode()
    assert findings(invitations.content.decode(), codes=CODES, minor=set()) == []
    assert link.pk
