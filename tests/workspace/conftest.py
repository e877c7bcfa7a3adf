"""A small, known company month for the workspace tests.

The clock is pinned to Wednesday 18 March 2026, 10:00 in Amsterdam (09:00 UTC). Tenant A
(Alpha BV, Europe/Amsterdam, EUR and GBP, review mode at 06:00) has one of everything that
needs a person and a month whose numbers are worked out below; tenant B (Bravo Ltd) has
large, recognisable numbers and names that A's people must never see.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import time_machine

from exact.models import ConnectionStatus as ExactStatus
from exact.models import ExactRateBudget
from reconciliation.bookings.models import BookingState
from reconciliation.collection.models import AttemptState, RunKind, RunState
from reconciliation.customers.models import LinkState
from tenants.models import CollectionMode
from tests.factories import ExactConnectionFactory, GoCardlessConnectionFactory
from tests.gocardless.factories import PaymentFactory, PayoutFactory, RefundFactory
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionRunFactory,
)
from tests.reconciliation.factories import CustomerLinkFactory

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 18, 9, 0, tzinfo=UTC)  # 10:00 in Amsterdam
MARCH = dt.date(2026, 3, 1)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def at(day: str, hour: int = 12) -> dt.datetime:
    """An instant in UTC: ``at("2026-03-05")`` is noon UTC that day."""
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def seed_attention(tenant, *, n: int = 1, label: str = "") -> None:
    """Things that need a person: ``n`` of each kind."""
    for _ in range(n):
        CollectionRunFactory(
            tenant=tenant,
            kind=RunKind.PREVIEW,
            state=RunState.AWAITING_APPROVAL,
            to_collect=3,
            totals={"EUR": "1234.50"},
            as_of=dt.date(2026, 3, 18),
        )
        CollectionAttemptFactory(
            tenant=tenant,
            state=AttemptState.NEEDS_ATTENTION,
            flag=f"{label}Charged back by the customer",
            failure_cause="refund_requested",
            payment_status="charged_back",
            amount=Decimal("60.00"),
            charge_date=dt.date(2026, 3, 6),
        )
        CollectionAttemptFactory(
            tenant=tenant,
            state=AttemptState.NEEDS_ATTENTION,
            flag=f"{label}Payment failed: retries used up",
            failure_cause="insufficient_funds",
            payment_status="failed",
            amount=Decimal("80.00"),
            charge_date=dt.date(2026, 3, 10),
        )
        BookingFactory(tenant=tenant, state=BookingState.GAVE_UP, last_error="closed period")
        BookingFactory(tenant=tenant, state=BookingState.FAILED)
        CustomerLinkFactory(tenant=tenant, state=LinkState.AMBIGUOUS)


def seed_month(tenant, *, n: int = 1, minor: int = 0) -> None:
    """A month of money at GoCardless; ``minor`` shifts every amount (tenant B's numbers)."""
    for _ in range(n):
        PaymentFactory(tenant=tenant, status="confirmed", amount=12100 + minor,
                       charge_date=dt.date(2026, 3, 5))
        PaymentFactory(tenant=tenant, status="paid_out", amount=20000 + minor,
                       charge_date=dt.date(2026, 3, 2))
        PaymentFactory(tenant=tenant, status="failed", amount=8000 + minor,
                       charge_date=dt.date(2026, 3, 10))
        PaymentFactory(tenant=tenant, status="charged_back", amount=6000 + minor,
                       charge_date=dt.date(2026, 3, 6))
        PaymentFactory(tenant=tenant, status="submitted", amount=5000 + minor,
                       charge_date=dt.date(2026, 3, 20))
        PaymentFactory(tenant=tenant, status="confirmed", amount=5000 + minor, currency="GBP",
                       charge_date=dt.date(2026, 3, 11))
        # February: charged before the month began.
        PaymentFactory(tenant=tenant, status="confirmed", amount=99999,
                       charge_date=dt.date(2026, 2, 27))
        RefundFactory(tenant=tenant, status="paid", amount=5000 + minor,
                      gocardless_created_at=at("2026-03-12"))
        # 28 Feb 23:30 UTC is 1 March 00:30 in Amsterdam: this month.
        RefundFactory(tenant=tenant, status="paid", amount=1000 + minor,
                      gocardless_created_at=at("2026-02-28", 23).replace(minute=30))
        # 28 Feb 22:30 UTC is still February in Amsterdam.
        RefundFactory(tenant=tenant, status="paid", amount=77700,
                      gocardless_created_at=at("2026-02-28", 22).replace(minute=30))
        RefundFactory(tenant=tenant, status="cancelled", amount=3000,
                      gocardless_created_at=at("2026-03-13"))
        PayoutFactory(tenant=tenant, status="paid", amount=45451 + minor, deducted_fees=649,
                      gocardless_created_at=at("2026-03-09"))
        PayoutFactory(tenant=tenant, status="pending", amount=10000, deducted_fees=100,
                      gocardless_created_at=at("2026-03-17"))


def seed_chart(tenant, *, n: int = 1) -> None:
    """Attempts sent in the last 90 days: 10 per ``n``, 2 failed for lack of money and 1
    charged back."""
    for i in range(n):
        for j in range(10):
            cause = {0: "insufficient_funds", 1: "insufficient_funds", 2: "refund_requested"}
            CollectionAttemptFactory(
                tenant=tenant,
                state=AttemptState.CONFIRMED if j > 2 else AttemptState.RETRIED,
                flag="",
                failure_cause=cause.get(j, ""),
                charge_date=dt.date(2026, 2, 1) + dt.timedelta(days=i + j),
            )


def connect(tenant, *, exact_status=ExactStatus.CONNECTED, reason: str = ""):
    exact = ExactConnectionFactory(tenant=tenant, status=exact_status, status_reason=reason)
    GoCardlessConnectionFactory(tenant=tenant)
    return exact


@pytest.fixture
def alpha(tenant_a, frozen):
    """Tenant A with the month and the things to do described in the module docstring."""
    tenant_a.currencies = ["EUR", "GBP"]
    tenant_a.collection_mode = CollectionMode.REVIEW
    tenant_a.collection_hour = 6
    tenant_a.save()
    exact = connect(tenant_a, exact_status=ExactStatus.NEEDS_REAUTH,
                    reason="Exact refused the refresh token")
    ExactRateBudget.objects.create(
        client_id="sim-client-id",
        host=exact.api_base_url,
        division=exact.division,
        daily_limit=5000,
        daily_remaining=4812,
        daily_reset_at=dt.datetime(2026, 3, 19, 0, 0, tzinfo=UTC),
    )
    seed_attention(tenant_a)
    seed_month(tenant_a)
    seed_chart(tenant_a)
    return tenant_a


@pytest.fixture
def bravo(tenant_b, frozen):
    """Tenant B: everything of its own, with numbers and words A must never see."""
    connect(tenant_b)
    seed_attention(tenant_b, label="Bravo-only ")
    seed_month(tenant_b, minor=7777700)
    seed_chart(tenant_b)
    return tenant_b


# --- reading the page ---------------------------------------------------------------------------


class Links(HTMLParser):
    """Every link inside the dashboard (before "All lists") with its text."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.done = False
        self.links: list[list[str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "ws-dashboard" in (attrs.get("class") or "").split():
            self.inside = True
        if attrs.get("id") == "all-lists":
            self.done = True
        if self.inside and not self.done and tag == "a" and attrs.get("href"):
            entry = [attrs["href"], ""]
            self.links.append(entry)
            self._open.append(entry)

    def handle_endtag(self, tag):
        if tag == "a" and self._open:
            self._open.pop()

    def handle_data(self, data):
        for entry in self._open:
            entry[1] += data


def dashboard_links(html: str) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(html)
    return [(href, " ".join(text.split())) for href, text in parser.links]


class Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())
