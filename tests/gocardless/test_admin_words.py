"""The GoCardless admin pages read as words (issue 15): statuses, schemes, actions and item
types in words with the code only in a tooltip, amounts with their currency (never minor
units or a float string), moments in the company's zone, related objects as links, list
filters in words, and the payload GoCardless sent folded away inside ``mlc-raw``."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from core.display import FAILURE_CAUSE_WORDS, PAYMENT_STATUS_WORDS
from gocardless import words as gc_words
from gocardless.models import EventSource
from tenants.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.gocardless.factories import (
    BillingRequestFactory,
    CustomerBankAccountFactory,
    CustomerFactory,
    GoCardlessEventFactory,
    MandateFactory,
    PaymentFactory,
    PayoutFactory,
    PayoutItemFactory,
    RefundFactory,
    WebhookDeliveryFactory,
)
from tests.workspace.page_words import findings, visible

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)  # 10:30 CET in Amsterdam
CODES = (set(PAYMENT_STATUS_WORDS) | set(FAILURE_CAUSE_WORDS) | set(gc_words.SCHEME_WORDS)
         | set(gc_words.PAYOUT_ITEM_TYPE_WORDS) | set(gc_words.RESOURCE_TYPE_WORDS)
         | {code for table in gc_words.STATUS_WORDS.values() for code in table}
         | {code for table in gc_words.EVENT_ACTION_WORDS.values() for code in table})
MINOR = {145200, 181500, 48000, 6000, 226720}


@pytest.fixture
def world(tenant_a, tenant_b):
    customer = CustomerFactory(tenant=tenant_a, name="Bakkerij Van Dijk", raw={
        "id": "CU1", "address_line1": "Dorpsstraat 1", "given_name": "Anna"})
    account = CustomerBankAccountFactory(tenant=tenant_a, customer_id=customer.gocardless_id)
    mandate = MandateFactory(tenant=tenant_a, status="active", scheme="sepa_core",
                             customer_id=customer.gocardless_id,
                             customer_bank_account_id=account.gocardless_id)
    bacs = MandateFactory(tenant=tenant_a, status="pending_submission", scheme="bacs")
    payout = PayoutFactory(tenant=tenant_a, status="paid", amount=226720, deducted_fees=960,
                           arrival_date=dt.date(2026, 3, 4), reference="SIM-0001",
                           gocardless_created_at=AT)
    payment = PaymentFactory(tenant=tenant_a, status="paid_out", amount=145200,
                             currency="EUR", charge_date=dt.date(2026, 3, 2),
                             mandate_id=mandate.gocardless_id, payout_id=payout.gocardless_id,
                             gocardless_created_at=AT,
                             metadata={"mlc_attempt": "r1/1", "exact_invoice": "26001"},
                             raw={"id": "x", "amount": 145200, "links": {"mandate": "MD"}})
    other = PaymentFactory(tenant=tenant_a, status="failed", amount=6000,
                           mandate_id=bacs.gocardless_id)
    items = [
        PayoutItemFactory(tenant=tenant_a, payout=payout, position=1,
                          item_type="payment_paid_out", amount="145200.0",
                          payment_id=payment.gocardless_id, mandate_id=mandate.gocardless_id),
        PayoutItemFactory(tenant=tenant_a, payout=payout, position=2,
                          item_type="payment_paid_out", amount="181500.0",
                          payment_id=other.gocardless_id),
        PayoutItemFactory(tenant=tenant_a, payout=payout, position=3,
                          item_type="gocardless_fee", amount="-480.0",
                          payment_id=payment.gocardless_id,
                          taxes=[{"amount": "-80.0", "currency": "EUR"}]),
    ]
    refund = RefundFactory(tenant=tenant_a, status="funds_returned", amount=48000,
                           payment_id=payment.gocardless_id, mandate_id=mandate.gocardless_id)
    request = BillingRequestFactory(tenant=tenant_a, status="fulfilled",
                                    customer_id=customer.gocardless_id,
                                    mandate_id=mandate.gocardless_id)
    delivery = WebhookDeliveryFactory(tenant=tenant_a, body=b'{"events":[{"id":"EV1"}]}',
                                      body_size=25, headers={"content_type": "json"})
    event = GoCardlessEventFactory(
        tenant=tenant_a, resource_type="payments", action="paid_out",
        resource_id=payment.gocardless_id, links={"payment": payment.gocardless_id},
        details={"origin": "gocardless", "cause": "payment_paid_out",
                 "description": "The payment has been paid out by GoCardless."},
        raw={"id": "EV1", "resource_type": "payments", "action": "paid_out"},
        created_at=AT, source=EventSource.WEBHOOK, delivery=delivery)
    failed = GoCardlessEventFactory(
        tenant=tenant_a, resource_type="mandates", action="cancelled",
        resource_id=mandate.gocardless_id, links={"mandate": mandate.gocardless_id},
        details={"origin": "bank", "cause": "bank_account_closed", "reason_code": "AC04"})
    PaymentFactory(tenant=tenant_b, status="paid_out", amount=9_999_900,
                   gocardless_id="PMBRAVO")
    return {"customer": customer, "account": account, "mandate": mandate, "payout": payout,
            "payment": payment, "items": items, "refund": refund, "request": request,
            "delivery": delivery, "event": event, "failed": failed}


@pytest.fixture
def viewer(client, tenant_a):
    user = UserFactory(username="vera-viewer")
    MembershipFactory(user=user, tenant=tenant_a, role=Role.VIEWER)
    client.force_login(user)
    return user


def _page(client, url: str) -> tuple[str, str]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    html = response.content.decode()
    return html, visible(html)[0]


def _url(obj, view: str = "change") -> str:
    opts = obj._meta
    if view == "changelist":
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def test_every_list_and_page_reads_as_words(client, world, viewer):
    objects = [world[k] for k in ("customer", "account", "mandate", "payout", "payment",
                                  "refund", "request", "delivery", "event", "failed")]
    objects += world["items"]
    pages = {_url(obj, "changelist") for obj in objects} | {_url(obj) for obj in objects}
    problems = {}
    for url in sorted(pages):
        html, _text = _page(client, url)
        found = findings(html, codes=CODES, minor=MINOR)
        if found:
            problems[url] = found
    assert not problems, problems


def test_amounts_carry_their_currency_and_payout_items_are_exact(client, world, viewer):
    _html, text = _page(client, _url(world["payment"], "changelist"))
    assert "EUR 1,452.00" in text and "145200" not in text
    _html, text = _page(client, _url(world["items"][0], "changelist"))
    assert "EUR 1,815.00" in text and "-EUR 4.80" in text and "-EUR 0.80" in text
    assert "181500.0" not in text and "-480.0" not in text
    _html, text = _page(client, _url(world["payout"], "changelist"))
    assert "EUR 2,267.20" in text and "EUR 9.60" in text
    _html, text = _page(client, _url(world["items"][2]))
    assert "GoCardless fee -EUR 4.80 in payout" in text


def test_codes_are_words_with_the_code_in_a_tooltip(client, world, viewer):
    html, text = _page(client, _url(world["mandate"], "changelist"))
    assert "SEPA Direct Debit" in text and "Bacs Direct Debit" in text
    assert 'title="sepa_core"' in html
    _html, text = _page(client, _url(world["payment"], "changelist"))
    assert "Collected and paid out" in text
    _html, text = _page(client, _url(world["event"]))
    assert "Payment" in text and "Collected and paid out" in text
    assert "payments.paid_out" not in text
    _html, text = _page(client, _url(world["failed"]))
    assert "The customer's bank account is closed" in text and "AC04" in text
    _html, text = _page(client, _url(world["request"], "changelist"))
    assert "Completed (mandate set up)" in text
    _html, text = _page(client, _url(world["refund"], "changelist"))
    assert "Money returned to us" in text


def test_list_filters_offer_words_and_still_take_the_dashboards_links(client, world, viewer):
    changelist = _url(world["payment"], "changelist")
    html, _text = _page(client, changelist)
    filters = html[html.index('id="changelist-filter"'):]
    assert "Collected and paid out" in filters and ">paid_out<" not in filters
    response = client.get(changelist, {"status__exact": "paid_out"})
    assert [p.pk for p in response.context["cl"].result_list] == [world["payment"].pk]
    response = client.get(changelist, {"status__in": "paid_out,failed"})
    assert len(response.context["cl"].result_list) == 2
    html, _text = _page(client, _url(world["mandate"], "changelist"))
    filters = html[html.index('id="changelist-filter"'):]
    assert "SEPA Direct Debit" in filters and "Waiting to be sent to the bank" in filters
    html, _text = _page(client, _url(world["event"], "changelist"))
    filters = html[html.index('id="changelist-filter"'):]
    assert "Payment: Collected and paid out" in filters
    response = client.get(_url(world["event"], "changelist"), {"event": "mandates.cancelled"})
    assert [e.pk for e in response.context["cl"].result_list] == [world["failed"].pk]
    html, _text = _page(client, _url(world["items"][0], "changelist"))
    filters = html[html.index('id="changelist-filter"'):]
    assert "GoCardless fee" in filters and ">gocardless_fee<" not in filters


def test_filters_offer_fixed_choices_and_select_only_what_the_user_may_see(
    client, world, viewer, tenant_b,
):
    """The filters' choices come from the words tables, never from the rows (a SELECT
    DISTINCT over 100,000 payments on every view: docs/admin-performance.md), so offering a
    status says nothing about another company's payments, and choosing it shows none."""
    theirs = PaymentFactory(tenant=tenant_b, status="charged_back", amount=7000)
    changelist = _url(world["payment"], "changelist")
    html, _text = _page(client, changelist)
    filters = html[html.index('id="changelist-filter"'):]
    assert "Charged back by the customer" in filters and "Waiting to be sent to the bank" in filters
    # Events' names a payment never has as a status are not offered as one.
    assert "Failed after payout; deducted from a payout" not in filters
    response = client.get(changelist, {"status__exact": "charged_back"})
    assert theirs.pk not in [p.pk for p in response.context["cl"].result_list]


def test_payments_by_charge_date_period_without_a_date_hierarchy(client, world, viewer):
    today = timezone.localdate()
    now = PaymentFactory(tenant=world["payment"].tenant, status="submitted", charge_date=today)
    changelist = _url(world["payment"], "changelist")
    html, _text = _page(client, changelist)
    filters = html[html.index('id="changelist-filter"'):]
    assert "This month" in filters and "Last month" in filters
    assert 'class="toplinks"' not in html  # no date hierarchy (its years: a table scan)
    for period in ("this_month", "last_90_days"):
        response = client.get(changelist, {"charge_date_period": period})
        shown = [p.pk for p in response.context["cl"].result_list]
        assert now.pk in shown and world["payment"].pk not in shown, period
    response = client.get(changelist, {"charge_date_period": "last_month"})
    assert now.pk not in [p.pk for p in response.context["cl"].result_list]


def test_ids_are_searched_whole(client, world, viewer):
    changelist = _url(world["payment"], "changelist")
    payment = world["payment"]
    for term in (payment.gocardless_id, payment.mandate_id, payment.payout_id):
        shown = [p.pk for p in client.get(changelist, {"q": term}).context["cl"].result_list]
        assert shown == [payment.pk], term
    part = payment.gocardless_id[:-2]
    assert list(client.get(changelist, {"q": part}).context["cl"].result_list) == []


def test_moments_are_in_the_companys_zone(client, world, viewer):
    _html, text = _page(client, _url(world["payment"]))
    assert "Mon 2 Mar 2026, 10:30 CET" in text


def test_related_objects_are_links(client, world, viewer):
    payment, mandate, customer = world["payment"], world["mandate"], world["customer"]
    html, _text = _page(client, _url(payment))
    by_id = reverse("admin:gocardless_mandate_by_id",
                    args=[payment.tenant_id, mandate.gocardless_id])
    assert by_id in html
    assert client.get(by_id).url == _url(mandate)
    assert reverse("admin:gocardless_customer_by_id",
                   args=[payment.tenant_id, customer.gocardless_id]) in html
    html, _text = _page(client, _url(mandate))
    assert reverse("admin:gocardless_customer_by_id",
                   args=[mandate.tenant_id, customer.gocardless_id]) in html
    html, _text = _page(client, _url(world["items"][0]))
    assert _url(world["payout"]) in html
    assert reverse("admin:gocardless_payment_by_id",
                   args=[payment.tenant_id, payment.gocardless_id]) in html
    html, _text = _page(client, _url(world["event"]))
    assert reverse("admin:gocardless_payment_by_id",
                   args=[payment.tenant_id, payment.gocardless_id]) in html


def test_another_companys_id_leads_nowhere(client, world, viewer, tenant_b):
    response = client.get(reverse("admin:gocardless_payment_by_id",
                                  args=[tenant_b.pk, "PMBRAVO"]))
    assert response.status_code == 302 and "/change/" not in response.url
    listed = client.get(response.url).context["cl"].result_list
    assert list(listed) == []


def test_the_payload_is_kept_folded_away_as_received(client, world, viewer):
    html, text = _page(client, _url(world["customer"]))
    assert "address_line1" in html and "address_line1" not in text
    assert re.search(r"<details[^>]*>\s*<summary>As received from GoCardless</summary>"
                     r"\s*<pre class='mlc-raw", html)
    html, text = _page(client, _url(world["delivery"]))
    assert "EV1" in html and "EV1" not in text and "content_type" not in text
    _html, text = _page(client, _url(world["payment"]))
    assert "Exact invoice" in text and "26001" in text and "exact_invoice" not in text
