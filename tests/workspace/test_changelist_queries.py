"""The five big changelists (attempts, payments, events, bookings, audit entries) and their
change pages answer in a number of queries that does not grow with the rows shown.

Per page and per user (a superuser, and a viewer of tenant A, for whom scoping applies):
seed 3 rows (with what the page shows next to them: runs, mandates, customers and their
links to Exact, receivables, Exact connections, users), count the queries of the page, seed
30 more, and the page must not need more. Tenant B gets rows too, so the viewer's page is
really narrowed. Wall time is bench/admin_pages.py's business, never a test's.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import ActorType, AuditEntry
from gocardless.models import GoCardlessEvent, Payment
from reconciliation.bookings.models import Booking, BookingState, Rule
from reconciliation.collection.models import AttemptState, CollectionAttempt, RunKind, RunState
from reconciliation.customers.models import LinkState
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.factories import AuditEntryFactory, ExactConnectionFactory, UserFactory
from tests.gocardless.factories import (
    CustomerFactory,
    GoCardlessEventFactory,
    MandateFactory,
    PaymentFactory,
    WebhookDeliveryFactory,
)
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionRunFactory,
)
from tests.reconciliation.factories import CustomerLinkFactory

pytestmark = pytest.mark.django_db

_n = itertools.count()
ATTEMPT_STATES = [AttemptState.CONFIRMED, AttemptState.PAID_OUT, AttemptState.NEEDS_ATTENTION,
                  AttemptState.RETRY_SCHEDULED, AttemptState.SUBMITTED, AttemptState.RETRIED]
PAYMENT_STATUSES = ["confirmed", "paid_out", "failed", "charged_back", "submitted",
                    "pending_submission"]
BOOKING_STATES = [BookingState.CONFIRMED, BookingState.PENDING, BookingState.FAILED,
                  BookingState.GAVE_UP]


def _day(i: int) -> dt.date:
    return dt.date(2026, 3, 1) - dt.timedelta(days=(i * 11) % 365)


def _payment_graph(tenant, i: int, *, status: str | None = None) -> Payment:
    """A payment with everything its row may show: mandate, GoCardless customer, the link of
    that customer to an Exact account, the invoice (receivable) and our attempt for it."""
    n = next(_n)
    customer = CustomerFactory(tenant=tenant, name=f"Payer {n}")
    mandate = MandateFactory(tenant=tenant, customer_id=customer.gocardless_id)
    account = ExactAccountFactory(tenant=tenant)
    CustomerLinkFactory(tenant=tenant, exact_account=account, gocardless_customer=customer,
                        mandate=mandate, state=LinkState.MATCHED)
    receivable = ExactReceivableFactory(tenant=tenant, account=account)
    currency = "GBP" if i % 5 == 0 else "EUR"
    receivable_id = receivable.exact_id
    payment = PaymentFactory(
        tenant=tenant,
        status=status or PAYMENT_STATUSES[i % len(PAYMENT_STATUSES)],
        amount=1000 + 37 * n,
        currency=currency,
        charge_date=_day(i),
        mandate_id=mandate.gocardless_id,
        payout_id=f"PO{n:010d}" if i % 3 == 0 else "",
        metadata={"mlc_attempt": f"{receivable_id}/1",
                  "exact_invoice": str(receivable.invoice_number),
                  "exact_account": str(account.exact_id)},
    )
    CollectionAttemptFactory(
        tenant=tenant,
        receivable_exact_id=receivable_id,
        invoice_number=receivable.invoice_number,
        account_exact_id=account.exact_id,
        account_label=f"{account.code} {account.name}",
        currency=currency,
        charge_date=payment.charge_date,
        mandate_gocardless_id=mandate.gocardless_id,
        payment_gocardless_id=payment.gocardless_id,
        payment_status=payment.status,
        state=AttemptState.CONFIRMED,
        flag="",
    )
    return payment


def seed_attempts(tenant, count: int) -> None:
    run = CollectionRunFactory(tenant=tenant, kind=RunKind.LIVE, state=RunState.COMPLETED)
    for i in range(count):
        state = ATTEMPT_STATES[i % len(ATTEMPT_STATES)]
        CollectionAttemptFactory(
            tenant=tenant,
            run=run if i % 4 else None,
            state=state,
            flag="Payment failed: retries used up" if state == AttemptState.NEEDS_ATTENTION
            else "",
            amount=Decimal("121.00") + i,
            currency="GBP" if i % 5 == 0 else "EUR",
            charge_date=_day(i),
            next_retry_on=_day(i) + dt.timedelta(days=7)
            if state == AttemptState.RETRY_SCHEDULED else None,
        )


def seed_payments(tenant, count: int) -> None:
    for i in range(count):
        _payment_graph(tenant, i)


def seed_events(tenant, count: int) -> None:
    delivery = WebhookDeliveryFactory(tenant=tenant)
    kinds = [("payments", "confirmed"), ("payments", "paid_out"), ("mandates", "active"),
             ("payouts", "paid"), ("payments", "failed"), ("refunds", "paid")]
    for i in range(count):
        resource_type, action = kinds[i % len(kinds)]
        created = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC) - dt.timedelta(hours=37 * i)
        GoCardlessEventFactory(
            tenant=tenant,
            delivery=delivery if i % 2 else None,
            resource_type=resource_type,
            action=action,
            created_at=created,
            processed_at=created + dt.timedelta(seconds=2) if i % 7 else None,
            outcome="" if i % 7 == 0 else "applied",
        )


def seed_bookings(tenant, count: int) -> None:
    if not hasattr(tenant, "exact_connection"):
        ExactConnectionFactory(tenant=tenant)
    for i in range(count):
        state = BOOKING_STATES[i % len(BOOKING_STATES)]
        posted = state == BookingState.CONFIRMED
        BookingFactory(
            tenant=tenant,
            rule=[Rule.RECEIPT, Rule.RECEIPT, Rule.PAYOUT, Rule.REVERSAL][i % 4],
            state=state,
            currency="GBP" if i % 5 == 0 else "EUR",
            amount_minor=12100 + i,
            booking_date=_day(i),
            exact_entry_id=uuid.uuid4() if posted else None,
            exact_entry_number=1000 + next(_n) if posted else None,
            attempts=1 if posted else 3,
            last_error="" if posted else "Exact refused: closed period",
        )


def seed_audit(tenant, count: int) -> None:
    user = UserFactory(username=f"auditor-{tenant.slug}")
    for i in range(count):
        by_user = i % 3 == 0
        AuditEntryFactory(
            tenant=tenant,
            actor_type=ActorType.USER if by_user else ActorType.SYSTEM,
            actor_user=user if by_user else None,
            actor_label=user.username if by_user else "schedule",
            action=["attempt.created", "booking.posted", "payment.confirmed"][i % 3],
            object_type="gocardless.payment",
            object_id=str(next(_n)),
        )


CASES = {
    "attempts": (CollectionAttempt, seed_attempts),
    "payments": (Payment, seed_payments),
    "events": (GoCardlessEvent, seed_events),
    "bookings": (Booking, seed_bookings),
    "audit": (AuditEntry, seed_audit),
}

# Changelists known to do a query per row; the owners remove the entry when it is fixed
# (strict: the test fails as soon as it passes).
XFAIL: dict[tuple[str, str], str] = {}


def _params():
    for name in CASES:
        for page in ("changelist", "change"):
            reason = XFAIL.get((name, page))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, page, marks=marks, id=f"{name}-{page}")


def _url(model, page: str, obj=None) -> str:
    opts = model._meta
    name = f"admin:{opts.app_label}_{opts.model_name}_{page}"
    return reverse(name, args=[obj.pk]) if page == "change" else reverse(name)


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


@pytest.mark.parametrize("who", ["superuser", "viewer"])
@pytest.mark.parametrize(("name", "page"), list(_params()))
def test_queries_do_not_grow_with_rows(
    client, tenant_a, tenant_b, superuser, viewer_of_a, django_assert_max_num_queries,
    name, page, who,
):
    model, seed = CASES[name]
    seed(tenant_a, 3)
    seed(tenant_b, 3)
    client.force_login(superuser if who == "superuser" else viewer_of_a)
    obj = model._default_manager.filter(tenant=tenant_a).order_by("pk").first()
    url = _url(model, page, obj)
    _count(client, url)  # the first visit may write the session
    few = _count(client, url)
    if page == "changelist":
        # The page really shows the rows, and only the viewer's tenant's to the viewer.
        shown = client.get(url).context["cl"].result_list
        expected = 6 if who == "superuser" else 3
        assert len(shown) == expected
    seed(tenant_a, 30)
    seed(tenant_b, 30)
    with django_assert_max_num_queries(few):
        response = client.get(url)
    assert response.status_code == 200


# What reads a whole table: a filter's choices (SELECT DISTINCT), a date_hierarchy (MIN/MAX,
# then DISTINCT DATE_TRUNC; SQLite spells it django_date_trunc).
WHOLE_TABLE = re.compile(r"\bDISTINCT\b|\bMIN\(|\bMAX\(|DATE_TRUNC", re.IGNORECASE)
# The lists whose filters offer fixed choices (the attempts' list is its owners').
WITHOUT_SCANS = ("payments", "events", "bookings", "audit")


@pytest.mark.parametrize("who", ["superuser", "viewer"])
@pytest.mark.parametrize("name", WITHOUT_SCANS)
def test_the_list_reads_its_table_for_the_page_and_its_count_only(
    client, tenant_a, tenant_b, superuser, viewer_of_a, name, who,
):
    """At 100,000 rows every query over the table costs tens of milliseconds: the list's
    filters (their choices), a date hierarchy and the like must not ask the table anything
    (docs/admin-performance.md). The page's rows and their count are the only two queries."""
    model, seed = CASES[name]
    seed(tenant_a, 3)
    seed(tenant_b, 3)
    client.force_login(superuser if who == "superuser" else viewer_of_a)
    url = _url(model, "changelist")
    client.get(url)  # the first visit may write the session
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    table = f'"{model._meta.db_table}"'
    reading = [q["sql"] for q in captured.captured_queries if table in q["sql"]]
    assert [sql for sql in reading if WHOLE_TABLE.search(sql)] == []
    assert len(reading) == 2, reading
    filters = response.content.decode()
    assert 'id="changelist-filter"' in filters
