"""A finance person logs in and reads the workspace (reconciliation/workspace) in Chromium,
under the strict Content-Security-Policy: no violation, the stylesheet and the SVG charts
render, and a number leads to the list behind it. Screenshots:
artifacts/screenshots/test_a_finance_person_reads_the_dashboard/.

The data is laid out around the real clock's today (the browser keeps real time for its
cookies), every date derived from one ``now``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from core.calendars import tenant_today
from exact.models import ConnectionStatus as ExactStatus
from exact.models import ExactRateBudget
from gocardless.models import Payment
from reconciliation.bookings.models import BookingState
from reconciliation.collection.models import AttemptState, RunKind, RunState
from reconciliation.customers.models import LinkState
from tenants.models import CollectionMode, Role
from tests.conftest import _member
from tests.factories import ExactConnectionFactory, GoCardlessConnectionFactory
from tests.gocardless.factories import PayoutFactory, RefundFactory
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionRunFactory,
)
from tests.reconciliation.factories import CustomerLinkFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
CAUSES = ("insufficient_funds", "refer_to_payer", "bank_account_closed", "refund_requested")


def _a_quarter_of_collections(tenant, today: dt.date) -> None:
    """Payments on the working days of the last 90 days, a few failed or charged back, the
    last days' still on their way."""
    rows = []
    for back in range(89, -1, -1):
        day = today - dt.timedelta(days=back)
        if day.weekday() >= 5:
            continue
        for n in range(2 + (day.toordinal() * 7) % 6):
            status = (
                "submitted" if back < 3
                else "failed" if (day.toordinal() + n) % 17 == 0
                else "charged_back" if (day.toordinal() + n) % 41 == 0
                else "paid_out" if back > 10
                else "confirmed"
            )
            rows.append(
                Payment(
                    tenant=tenant,
                    gocardless_id=f"PM{day:%Y%m%d}{n:02d}",
                    status=status,
                    amount=4_850 + ((day.toordinal() * 31 + n * 977) % 90_000),
                    currency="EUR",
                    charge_date=day,
                )
            )
    Payment.objects.bulk_create(rows)


def _a_company_with_work_to_do(tenant, now: dt.datetime) -> None:
    today = tenant_today(tenant, now=now)
    tenant.collection_mode = CollectionMode.REVIEW
    tenant.currencies = ["EUR"]
    tenant.save()
    exact = ExactConnectionFactory(
        tenant=tenant,
        status=ExactStatus.NEEDS_REAUTH,
        status_reason="Exact Online refused the refresh token: ask the person who connected it "
        "to connect again.",
    )
    GoCardlessConnectionFactory(tenant=tenant)
    ExactRateBudget.objects.create(
        client_id="sim-client-id", host=exact.api_base_url, division=exact.division,
        daily_limit=5000, daily_remaining=4_612,
        daily_reset_at=(now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0),
    )
    CollectionRunFactory(tenant=tenant, kind=RunKind.PREVIEW, state=RunState.AWAITING_APPROVAL,
                         to_collect=14, totals={"EUR": "12883.10"}, as_of=today)
    for flag, cause, amount in (
        ("Charged back by the customer", "refund_requested", "363.00"),
        ("Payment failed: retries used up", "insufficient_funds", "121.00"),
        ("Payment failed: retries used up", "insufficient_funds", "89.50"),
        ("Mandate cancelled: GoCardless cancels its pending payments", "", "1250.00"),
    ):
        CollectionAttemptFactory(tenant=tenant, state=AttemptState.NEEDS_ATTENTION, flag=flag,
                                 failure_cause=cause, amount=Decimal(amount), charge_date=today)
    BookingFactory(tenant=tenant, state=BookingState.GAVE_UP,
                   last_error="Exact: the period is closed")
    CustomerLinkFactory(tenant=tenant, state=LinkState.AMBIGUOUS)
    CustomerLinkFactory(tenant=tenant, state=LinkState.AMBIGUOUS)
    _a_quarter_of_collections(tenant, today)
    first = today.replace(day=1)
    start = dt.datetime.combine(first, dt.time(12), tzinfo=tenant.zone)
    RefundFactory(tenant=tenant, status="paid", amount=12_100, gocardless_created_at=start)
    PayoutFactory(tenant=tenant, status="paid", amount=1_254_410, deducted_fees=2_830,
                  gocardless_created_at=start)
    for back in range(60):
        day = today - dt.timedelta(days=back)
        CollectionAttemptFactory(
            tenant=tenant,
            state=AttemptState.CONFIRMED,
            flag="",
            failure_cause=CAUSES[back % 4] if back % 5 == 0 else "",
            charge_date=day,
        )


@pytest.fixture
def finance_person(tenant_a):
    user = _member(tenant_a, Role.OPERATOR, "fiona-finance")
    user.set_password(PASSWORD)
    user.save()
    _a_company_with_work_to_do(tenant_a, timezone.now())
    return user


def test_a_finance_person_reads_the_dashboard(journey, finance_person, tenant_a):
    journey.log_in("fiona-finance", PASSWORD)
    page = journey.page
    assert page.url.endswith("/admin/")
    assert page.locator("h1").inner_text() == "Alpha BV"
    attention = page.locator(".ws-attention").inner_text()
    assert "collection preview waits for your approval" in attention
    assert "Exact Online must be connected again" in attention
    assert "not enough money in the customer's account" in attention
    assert "insufficient_funds" not in attention
    # the stylesheet applies (served from this origin), and the SVG bars take its colours
    badge = page.locator(".ws-attention .ws-count").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(186, 33, 33)"
    bars = page.locator("svg.ws-chart rect.ws-collected")
    assert bars.count() > 40
    assert bars.first.evaluate("e => getComputedStyle(e).fill") == "rgb(63, 143, 85)"
    assert page.locator(".ws-reasons tr").count() == 4
    journey.shot("dashboard")
    # what a person sees first, without scrolling
    page.screenshot(path=str(journey.folder / "01b-first-screen.png"))

    # a number leads to the list that explains it
    with page.expect_navigation():
        page.locator(".ws-item-group > a.ws-count").click()
    assert "/admin/collection/collectionattempt/" in page.url
    assert page.locator("#result_list tbody tr").count() == 4
    journey.shot("needs-attention-list")

    # and the model lists stay one click away
    journey.open("/admin/")
    with page.expect_navigation():
        page.locator("#all-lists ~ div a", has_text="Payouts").first.click()
    assert "/admin/gocardless/payout/" in page.url
