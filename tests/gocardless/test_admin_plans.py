"""Subscriptions and instalment plans on the admin pages, in words: the plans' own pages and
lists, the payments they created ("Subscription: <name>"), the mandate and customer pages
that list them, and a payout whose lines GoCardless no longer gives (410 Gone)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from core.audit import Actor, audit_record
from gocardless import words as gc_words
from gocardless.models import PayoutItemsState
from tenants.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.gocardless.factories import (
    CustomerFactory,
    GoCardlessEventFactory,
    InstalmentScheduleFactory,
    MandateFactory,
    PaymentFactory,
    PayoutFactory,
    SubscriptionFactory,
)
from tests.reconciliation.factories import CustomerLinkFactory
from tests.workspace.page_words import findings, visible

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
CODES = ({code for table in gc_words.STATUS_WORDS.values() for code in table}
         | {"monthly", "weekly", "yearly", "sepa_core"})
MINOR = {2500, 30000, 10000, 226720, 960}


@pytest.fixture
def world(tenant_a, tenant_b):
    customer = CustomerFactory(tenant=tenant_a, name="Bakkerij Van Dijk")
    mandate = MandateFactory(tenant=tenant_a, status="active", scheme="sepa_core",
                             customer_id=customer.gocardless_id)
    link = CustomerLinkFactory(tenant=tenant_a, gocardless_customer=customer, mandate=mandate,
                               exact_name="Bakkerij Van Dijk B.V.", exact_code="1001")
    subscription = SubscriptionFactory(
        tenant=tenant_a, gocardless_id="SB0001", mandate_id=mandate.gocardless_id,
        status="active", name="Bread delivery", amount=2500, currency="EUR",
        interval_unit="monthly", interval=1, day_of_month=10,
        start_date=dt.date(2026, 3, 10), gocardless_created_at=AT,
        upcoming_payments=[{"charge_date": "2026-05-11", "amount": 2500},
                           {"charge_date": "2026-04-10", "amount": 2500}])
    schedule = InstalmentScheduleFactory(
        tenant=tenant_a, gocardless_id="IS0001", mandate_id=mandate.gocardless_id,
        status="errored", name="Oven in three parts", currency="EUR", total_amount=30000,
        payment_ids=["PMI1", "PMI2", "PMI3"], gocardless_created_at=AT,
        upcoming_payments=[{"charge_date": "2026-04-13", "amount": 10000}])
    from_subscription = PaymentFactory(
        tenant=tenant_a, gocardless_id="PMS1", mandate_id=mandate.gocardless_id,
        subscription_id=subscription.gocardless_id, status="confirmed", amount=2500,
        charge_date=dt.date(2026, 3, 10), raw={"id": "PMS1"})
    from_schedule = PaymentFactory(
        tenant=tenant_a, gocardless_id="PMI1", mandate_id=mandate.gocardless_id,
        instalment_schedule_id=schedule.gocardless_id, status="failed", amount=10000,
        charge_date=dt.date(2026, 3, 12), raw={"id": "PMI1"})
    gone = PayoutFactory(tenant=tenant_a, status="paid", amount=226720, deducted_fees=960,
                         currency="EUR", items_state=PayoutItemsState.UNAVAILABLE,
                         gocardless_created_at=AT, reference="OLD-PAYOUT")
    theirs = SubscriptionFactory(tenant=tenant_b, gocardless_id="SBBRAVO", name="Bravo secret")
    return {"link": link, "mandate": mandate, "subscription": subscription,
            "schedule": schedule, "from_subscription": from_subscription,
            "from_schedule": from_schedule, "gone": gone, "theirs": theirs}


@pytest.fixture
def viewer(client, tenant_a):
    user = UserFactory(username="vera-viewer")
    MembershipFactory(user=user, tenant=tenant_a, role=Role.VIEWER)
    client.force_login(user)
    return user


def _page(client, url: str, **params) -> tuple[str, str]:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    html = response.content.decode()
    return html, visible(html)[0]


def _url(obj, view: str = "change") -> str:
    opts = obj._meta
    if view == "changelist":
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def test_plan_pages_read_as_words(client, world, viewer):
    urls = [_url(world[k], view) for k in ("subscription", "schedule", "from_subscription",
                                            "mandate", "gone", "link")
            for view in ("change", "changelist")]
    problems = {}
    for url in urls:
        html, _text = _page(client, url)
        if found := findings(html, codes=CODES, minor=MINOR):
            problems[url] = found
    assert not problems, problems


def test_a_subscription_says_amount_interval_next_payments_and_status(client, world, viewer):
    html, text = _page(client, _url(world["subscription"]))
    assert "Bread delivery" in text and "EUR 25.00" in text
    assert "Every month, on the 10th" in text
    assert "Active (GoCardless collects each period)" in text and 'title="active"' in html
    # Soonest first, dates in words.
    assert text.index("Fri 10 Apr 2026: EUR 25.00") < text.index("Mon 11 May 2026: EUR 25.00")
    payments = reverse("admin:gocardless_payment_changelist")
    assert f"{payments}?subscription_id__exact=SB0001" in html.replace("&amp;", "&")
    _html, text = _page(client, _url(world["subscription"], "changelist"))
    assert "Fri 10 Apr 2026: EUR 25.00" in text and "Bravo secret" not in text
    response = client.get(payments, {"subscription_id__exact": "SB0001"})
    assert [p.gocardless_id for p in response.context["cl"].result_list] == ["PMS1"]


def test_the_payments_list_filters_by_what_created_them(client, world, viewer):
    payments = reverse("admin:gocardless_payment_changelist")
    ours = PaymentFactory(tenant=world["link"].tenant, gocardless_id="PMOURS",
                          metadata={"mlc_attempt": "r1/1"})
    html, _text = _page(client, payments)
    filters = html[html.index('id="changelist-filter"'):]
    assert "A subscription" in filters and "An instalment plan" in filters

    def shown(plan):
        response = client.get(payments, {"plan": plan})
        return sorted(p.gocardless_id for p in response.context["cl"].result_list)

    assert shown("subscription") == ["PMS1"]
    assert shown("instalment_plan") == ["PMI1"]
    assert shown("none") == [ours.gocardless_id]


def test_an_instalment_plan_says_total_instalments_and_what_is_left(client, world, viewer):
    _html, text = _page(client, _url(world["schedule"]))
    assert "Oven in three parts" in text and "EUR 300.00" in text
    assert "An instalment failed" in text and "Mon 13 Apr 2026: EUR 100.00" in text
    _html, text = _page(client, _url(world["schedule"], "changelist"))
    assert "Oven in three parts" in text and "3" in text


def test_plan_payments_name_their_plan_and_the_mandate_lists_its_plans(client, world, viewer):
    _html, text = _page(client, _url(world["from_subscription"]))
    assert "Subscription: Bread delivery" in text
    _html, text = _page(client, _url(world["from_schedule"]))
    assert "Instalment plan: Oven in three parts" in text
    _html, text = _page(client, _url(world["from_subscription"], "changelist"))
    assert "Subscription: Bread delivery" in text
    assert "Instalment plan: Oven in three parts" in text
    html, text = _page(client, _url(world["mandate"]))
    assert "Subscription: Bread delivery" in text
    assert "Instalment plan: Oven in three parts" in text
    assert reverse("admin:gocardless_subscription_by_id",
                   args=[world["mandate"].tenant_id, "SB0001"]) in html


def test_the_customer_page_lists_the_customers_plans(client, world, viewer):
    audit_record(actor=Actor.schedule("gocardless.events_poll"),
                 action="subscription.status_changed", tenant=world["link"].tenant,
                 obj=world["subscription"], before={"status": ""},
                 after={"status": "active"}, message="GoCardless SB0001: event EV1")
    _html, text = _page(client, _url(world["link"]))
    history = text[text.index("History"):]
    assert "GoCardless subscription status changed" in history
    start = text.index("Subscriptions and instalment plans")
    section = text[start:text.index("Payments", start)]
    assert "Bread delivery" in section and "EUR 25.00" in section
    assert "Every month, on the 10th" in section
    assert "Fri 10 Apr 2026: EUR 25.00" in section
    assert "Active (GoCardless collects each period)" in section
    assert "Oven in three parts" in section and "EUR 300.00 in total" in section
    assert "3 instalments" in section and "An instalment failed" in section
    payments = text[text.index("Payments", text.index("Subscriptions and instalment plans")):]
    assert "Subscription: Bread delivery" in payments
    assert "Bravo secret" not in text


def test_another_companys_plan_is_not_shown(client, world, viewer):
    response = client.get(_url(world["theirs"]))
    assert response.status_code in (302, 404)
    by_id = reverse("admin:gocardless_subscription_by_id",
                    args=[world["theirs"].tenant_id, "SBBRAVO"])
    response = client.get(by_id, follow=True)
    assert "Bravo secret" not in response.content.decode()


def test_a_payout_whose_lines_are_gone_says_so(client, world, viewer):
    _html, text = _page(client, _url(world["gone"]))
    assert "No longer available: GoCardless keeps a payout's lines for six months only" in text
    assert "Cannot be checked." in text and "Does not agree" not in text
    assert "EUR 2,267.20" in text and "EUR 9.60" in text
    _html, text = _page(client, _url(world["gone"], "changelist"))
    assert "EUR 2,267.20" in text


def test_a_plans_event_reads_as_words_and_links_to_the_plan(client, world, viewer):
    event = GoCardlessEventFactory(
        tenant=world["link"].tenant, resource_type="subscriptions", action="payment_created",
        resource_id="SB0001", links={"subscription": "SB0001", "payment": "PMS1"})
    html, text = _page(client, _url(event))
    assert "Subscription" in text and "Payment created by the subscription" in text
    assert reverse("admin:gocardless_subscription_by_id",
                   args=[event.tenant_id, "SB0001"]) in html
    assert not findings(html, codes=CODES | {"payment_created", "subscriptions"}, minor=MINOR)
