"""The admin's front page is the finance workspace (reconciliation/workspace).

A member of one company lands on its dashboard: what needs a person in words, this month's
numbers, the next run, the API budget and two charts, every number a link to the admin list
that explains it. A member of several companies (and a superuser) switches between them;
nobody ever sees another company's names or numbers.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.template import Context, Template

from core.display import NOTHING
from exact.models import ExactRateBudget
from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from reconciliation.workspace.charts import nice_top, percent
from reconciliation.workspace.dashboard import dashboard_build
from reconciliation.workspace.month import month_bounds
from reconciliation.workspace.tenant_choice import SESSION_KEY
from tenants.models import CollectionMode, Role, Tenant
from tests.conftest import _member
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.reconciliation.collection.factories import CollectionRunFactory
from tests.workspace.conftest import NOW, connect, dashboard_links, visible_text

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


def _page(client, user, query: str = ""):
    client.force_login(user)
    response = client.get(INDEX + query)
    assert response.status_code == 200
    return response.content.decode()


def _dashboard_part(html: str) -> str:
    start = html.index('class="ws-dashboard"')
    return html[start : html.index('id="all-lists"')]


# --- a member of one company ----------------------------------------------------------------------


def test_a_single_company_member_lands_on_its_dashboard(client, alpha, bravo, admin_of_a):
    html = _page(client, admin_of_a)
    text = visible_text(html)
    assert "<h1>Alpha BV</h1>" in html
    assert "ws-switcher" not in html  # one company: nothing to switch
    assert "Needs a person today" in text
    # what needs a person, in words
    for words in (
        "1 collection preview waits for your approval",
        "3 invoices to collect: EUR 1,234.50",
        "1 booking could not be posted to Exact and stopped trying",
        "1 booking failed to post to Exact",
        "1 Exact customer matches more than one GoCardless customer",
        "Reconnect Exact Online must be connected again Exact refused the refresh token",
        "2 collections need a decision",
        "Charged back by the customer (the customer asked their bank for the money back)",
        "Payment failed: retries used up (not enough money in the customer's account)",
    ):
        assert words in text, words
    # never a code a finance person would have to decode
    for code in ("insufficient_funds", "refund_requested", "needs_attention", "gave_up",
                 "awaiting_approval", "needs_reauth", "charged_back"):
        assert code not in text, code
    # the lists stay one click away, below the dashboard
    assert 'href="#all-lists"' in html
    assert "All lists" in text and "Collection attempts" in text
    assert html.index('id="all-lists"') < html.index("Collection attempts")


def test_every_number_links_to_a_list_that_explains_it(client, alpha, bravo, admin_of_a):
    html = _page(client, admin_of_a)
    links = [(href, text) for href, text in dashboard_links(html) if not href.startswith("#")]
    assert len(links) > 20
    for href, text in links:
        response = client.get(href)
        assert response.status_code == 200, (href, text)
        assert "e=1" not in response.get("Location", ""), href  # an unknown filter
        cl = response.context.get("cl") if response.context else None
        if cl is not None and re.fullmatch(r"[\d,]+", text):
            assert cl.result_count == int(text.replace(",", "")), (href, text)
        if cl is not None:
            assert {o.tenant_id for o in cl.result_list} <= {alpha.pk}, href


def _cl(client, links, text, model=""):
    href = next(h for h, t in links if t == text and f"/{model}" in h)
    return client.get(href).context["cl"]


def test_the_month_links_list_exactly_the_rows_counted(client, alpha, bravo, admin_of_a):
    links = dashboard_links(_page(client, admin_of_a))
    collected = _cl(client, links, "EUR 321.00")
    assert sorted(p.amount for p in collected.queryset) == [12100, 20000]
    refunded = _cl(client, links, "EUR 60.00", "refund/")
    assert sorted(r.amount for r in refunded.queryset) == [1000, 5000]
    fees = _cl(client, links, "EUR 6.49")
    assert [p.deducted_fees for p in fees.queryset] == [649]
    gbp = _cl(client, links, "GBP 50.00")
    assert [p.currency for p in gbp.queryset] == ["GBP"]


def test_many_reasons_are_summed_up_after_the_first_five(alpha):
    from tests.reconciliation.collection.factories import CollectionAttemptFactory

    for n in range(7):
        CollectionAttemptFactory(tenant=alpha, flag=f"Invoice changed after the payment left "
                                 f"(case {n}); refund?", failure_cause="")
    groups = dashboard_build(tenant=alpha, now=NOW).attention_groups
    assert len(groups) == 6
    assert groups[-1].text == "for 4 other reasons"
    assert sum(g.count for g in groups) == 9


def test_needs_attention_links_use_the_shared_definition(client, alpha, bravo, admin_of_a):
    from reconciliation.collection.selectors import attempts_needing_attention

    links = dashboard_links(_page(client, admin_of_a))
    everything = _cl(client, links, "2")
    assert {a.pk for a in everything.queryset} == set(
        attempts_needing_attention(tenant=alpha).values_list("pk", flat=True)
    )


# --- tenants apart --------------------------------------------------------------------------------


def _bravo_traces(html: str, bravo) -> list[str]:
    found = [
        word
        for word in ("Bravo Ltd", "Bravo-only", "155,875.00", "77,857.00", "77,837.00",
                     "155,614.00", "78,231.51", "77,827.00")
        if word in html
    ]
    for href, _ in dashboard_links(html):
        query = parse_qs(urlsplit(href).query)
        for key in ("tenant", "tenant__id__exact"):
            if str(bravo.pk) in query.get(key, []):
                found.append(href)
    return found


def test_a_member_of_a_never_sees_b(client, alpha, bravo, admin_of_a):
    html = _page(client, admin_of_a)
    assert _bravo_traces(html, bravo) == []
    assert "EUR 321.00" in html  # A's own numbers are there


@pytest.mark.parametrize("slug", ["bravo", "no-such-company"])
def test_a_forged_tenant_slug_changes_nothing_and_tells_nothing(
    client, alpha, bravo, admin_of_a, slug
):
    html = _page(client, admin_of_a, f"?tenant={slug}")
    text = visible_text(html)
    assert _bravo_traces(html, bravo) == []
    assert "<h1>Alpha BV</h1>" in html
    # the same words whether the company exists or not
    assert f"You have no company called “{slug}”. Showing Alpha BV instead." in text
    assert client.session[SESSION_KEY] == alpha.pk


def test_a_deactivated_membership_is_not_offered(client, alpha, bravo, admin_of_a):
    MembershipFactory(user=admin_of_a, tenant=bravo, role=Role.VIEWER)
    bravo.is_active = False
    bravo.save()
    html = _page(client, admin_of_a, "?tenant=bravo")
    assert _bravo_traces(html, bravo) == []


# --- several companies ----------------------------------------------------------------------------


def test_a_member_of_two_companies_switches_and_the_choice_is_remembered(client, alpha, bravo):
    user = _member(alpha, Role.VIEWER, "val-two-companies")
    MembershipFactory(user=user, tenant=bravo, role=Role.OPERATOR)
    html = _page(client, user)
    assert "ws-switcher" in html
    assert '<strong aria-current="page">Alpha BV</strong>' in html
    assert 'href="?tenant=bravo"' in html
    assert "EUR 321.00" in html

    html = _page(client, user, "?tenant=bravo")
    assert "<h1>Bravo Ltd</h1>" in html
    assert "EUR 155,875.00" in html  # Bravo's collected
    assert "EUR 321.00" not in html
    assert 'href="?tenant=alpha"' in html

    html = _page(client, user)  # remembered in the session
    assert "<h1>Bravo Ltd</h1>" in html


def test_a_superuser_gets_the_switcher_over_every_company(client, alpha, bravo, superuser):
    TenantFactory(name="Charlie GmbH", slug="charlie", is_active=False)
    html = _page(client, superuser)
    assert "ws-switcher" in html
    assert "<h1>Alpha BV</h1>" in html
    assert 'href="?tenant=charlie"' in html and "(deactivated)" in html
    html = _page(client, superuser, "?tenant=charlie")
    assert "<h1>Charlie GmbH</h1>" in html
    assert "This company is deactivated" in html


def test_many_companies_get_a_chooser_instead_of_links(client, frozen, superuser):
    for n in range(10):
        TenantFactory(name=f"Company {n:02d}", slug=f"company-{n:02d}")
    html = _page(client, superuser, "?tenant=company-03")
    assert '<select name="tenant" id="ws-tenant">' in html
    assert '<option value="company-03" selected>' in html
    assert "<h1>Company 03</h1>" in html


def test_a_member_of_no_company_gets_the_plain_lists(client, db):
    user = UserFactory(username="nobody-yet")
    html = _page(client, user)
    assert "ws-dashboard" not in html
    assert "You are not a member of any company yet" in html


# --- the numbers themselves -----------------------------------------------------------------------


def _cells(board, label):
    row = next(r for r in board.month_rows if r.label == label)
    return {c: (cell.amount, cell.count) for c, cell in row.cells.items()}


def test_this_months_numbers(alpha, bravo):
    board = dashboard_build(tenant=alpha, now=NOW)
    assert board.month_title == "March 2026"
    assert board.currencies == ["EUR", "GBP"]
    assert _cells(board, "Collected") == {"EUR": ("EUR 321.00", 2), "GBP": ("GBP 50.00", 1)}
    assert _cells(board, "Failed") == {"EUR": ("EUR 80.00", 1), "GBP": ("GBP 0.00", 0)}
    assert _cells(board, "Charged back") == {"EUR": ("EUR 60.00", 1), "GBP": ("GBP 0.00", 0)}
    # 50.00 on 12 March and 10.00 at 00:30 on 1 March in Amsterdam (still February in UTC)
    assert _cells(board, "Refunded") == {"EUR": ("EUR 60.00", 2), "GBP": ("GBP 0.00", 0)}
    assert _cells(board, "Paid out") == {"EUR": ("EUR 454.51", 1), "GBP": ("GBP 0.00", 0)}
    assert _cells(board, "Fees") == {"EUR": ("EUR 6.49", 1), "GBP": ("GBP 0.00", 0)}


def test_the_month_is_the_companys_calendar_month():
    tenant = Tenant(name="T", slug="t", time_zone="Pacific/Auckland")
    # 18:00 UTC on 31 March is already 1 April in Auckland
    first, following, start, end = month_bounds(tenant, dt.date(2026, 4, 1))
    assert (first, following) == (dt.date(2026, 4, 1), dt.date(2026, 5, 1))
    assert start == dt.datetime(2026, 3, 31, 11, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 4, 30, 12, 0, tzinfo=dt.UTC)


def test_a_company_with_nothing_to_do(client, frozen, tenant_a, admin_of_a):
    connect(tenant_a)
    html = _page(client, admin_of_a)
    assert "Nothing needs you today." in html
    assert "No payments with a charge date between" in html
    assert "sent no payments with a charge date in the last 90 days" in html


def test_missing_connections_need_a_person(client, frozen, tenant_a, admin_of_a):
    html = _page(client, admin_of_a)
    text = visible_text(html)
    for href, label in dashboard_links(html):
        if label == "Connect":
            assert client.get(href).status_code == 200, href
    assert "Connect Exact Online is not connected" in text
    assert "Connect GoCardless is not connected" in text
    assert "Exact Online unknown (not connected)" in text


# --- next run and budgets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "ran", "expected"),
    [
        (11, False, "Today, Wed 18 Mar 2026, 11:00 CET"),
        (6, False, "Due now: starts within 15 minutes"),
        (6, True, "Tomorrow, Thu 19 Mar 2026, 06:00 CET"),
    ],
)
def test_next_run(alpha, hour, ran, expected):
    alpha.collection_hour = hour
    alpha.save()
    # the preview seeded for A is today's scheduled run: start from none
    CollectionRun.objects.filter(tenant=alpha).delete()
    if ran:
        CollectionRunFactory(tenant=alpha, kind=RunKind.PREVIEW, trigger=RunTrigger.SCHEDULE,
                             state=RunState.SUPERSEDED, as_of=dt.date(2026, 3, 18))
    board = dashboard_build(tenant=alpha, now=NOW)
    assert board.next_run == expected
    assert board.next_run_detail == "A preview for you to approve"


def test_no_next_run_when_collection_is_off(alpha):
    alpha.collection_mode = CollectionMode.OFF
    alpha.save()
    board = dashboard_build(tenant=alpha, now=NOW)
    assert board.next_run == "None"
    assert "switched off" in board.next_run_detail


def test_the_exact_budget_left_today(alpha):
    budget = dashboard_build(tenant=alpha, now=NOW).budgets
    assert budget[0].text == "4,812 of 5,000 calls left today (renews Thu 19 Mar 2026, 01:00 CET)"
    assert budget[1].text.startswith("unknown")
    # after Exact's day ended, the budget is whole again
    later = dt.datetime(2026, 3, 19, 0, 5, tzinfo=dt.UTC)
    assert dashboard_build(tenant=alpha, now=later).budgets[0].text.startswith("5,000 of 5,000")
    ExactRateBudget.objects.all().delete()
    assert dashboard_build(tenant=alpha, now=NOW).budgets[0].text == (
        "unknown (no call to Exact recorded yet)"
    )


# --- charts ---------------------------------------------------------------------------------------


def _svgs(html: str) -> list[ET.Element]:
    return [
        ET.fromstring(m.group(0).replace("&nbsp;", " "))
        for m in re.finditer(r"<svg\b.*?</svg>", _dashboard_part(html), re.S)
    ]


def test_the_charts_are_svg_without_script_or_inline_style(client, alpha, bravo, admin_of_a):
    html = _page(client, admin_of_a)
    part = _dashboard_part(html)
    assert "style=" not in part and "<script" not in part
    daily, *bars = _svgs(html)
    ns = "{http://www.w3.org/2000/svg}"
    days = daily.findall(f"{ns}a") or daily.findall("a")
    # six days with payments between 19 Dec and 18 Mar (the 20 March one is not due yet)
    assert len(days) == 6
    titles = [d.find("title").text if d.find("title") is not None else d.find(f"{ns}title").text
              for d in days]
    assert "Fri 6 Mar 2026: 1 failed or charged back" in titles
    rects = [r for d in days for r in (d.findall("rect") or d.findall(f"{ns}rect"))]
    assert {r.get("class") for r in rects} == {"ws-bar ws-collected", "ws-bar ws-failed"}
    assert all(int(r.get("height")) > 0 for r in rects)
    # failure reasons: insufficient funds 3 of 12 sent, refund requested 2 of 12
    assert len(bars) == 2
    text = visible_text(part)
    assert "Of the 12 payments ml-connector sent, 5 (41.7 %) did not collect." in text
    assert "Not enough money in the customer's account 25.0 % 3 payments" in text
    assert "The customer asked their bank for the money back 16.7 % 2 payments" in text


def test_chart_arithmetic():
    assert [nice_top(n) for n in (1, 2, 3, 7, 11, 59, 601, 1234)] == [
        2, 2, 4, 10, 20, 60, 800, 1400,
    ]
    assert percent(1, 3) == "33.3 %"
    assert percent(2, 3) == "66.7 %"
    assert percent(0, 0) == NOTHING


def test_the_stylesheet_is_served_and_linked(client, alpha, admin_of_a):
    html = _page(client, admin_of_a)
    assert 'href="/static/workspace/dashboard.css"' in html
    from django.contrib.staticfiles import finders

    css = finders.find("workspace/dashboard.css")
    assert css and ".ws-bar.ws-collected" in open(css).read()


# --- template filters -----------------------------------------------------------------------------


def test_template_filters():
    tenant = Tenant(name="T", slug="t", time_zone="Europe/Amsterdam")
    template = Template(
        "{% load workspace_display %}"
        "{{ amount|money:'EUR' }}|{{ minor|minor_money:'GBP' }}|{{ status|payment_status }}|"
        "{{ cause|failure_cause }}|{{ moment|local_time:tenant }}|{{ n|count }}"
    )
    rendered = template.render(
        Context(
            {
                "amount": Decimal("-12.5"),
                "minor": 123456,
                "status": "charged_back",
                "cause": "refer_to_payer",
                "moment": dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC),
                "tenant": tenant,
                "n": 12345,
            }
        )
    )
    assert rendered == (
        "-EUR 12.50|GBP 1,234.56|Charged back by the customer|"
        "Refused by the customer&#x27;s bank: ask the customer|Tue 3 Mar 2026, 06:00 CET|12,345"
    )
