"""Admin pages benchmark: the five big changelists at 100,000 rows each.

Builds, for one company, ``BENCH_ADMIN_ROWS`` (default 100,000) collection attempts,
GoCardless payments, GoCardless events, bookings and audit entries, with what those pages
show next to them at realistic ratios (one GoCardless customer, mandate, Exact account and
customer link per ten payments; one receivable per invoice; a collection run a day; a
webhook delivery per ten events), over a year, in EUR and GBP, in several states. Three more
companies get a tenth as much each, so scoping matters. Then, signed in as a superuser and as
a viewer of the big company (scoping applies), it asks each changelist for its first page, a
filtered page, a search, a sorted column and page 50, and one change page, several times,
through Django's test client (the whole request: middleware, admin, templates).

Prints per page: median and max wall time in ms; this process's CPU time (Django, the admin,
templates); the number of queries, their total and the slowest one's time in ms; the median
against the 300 ms budget of issue 15 (1.00 is the budget, lower is better), and the same for
CPU + SQL time, which is what the page costs when it need not wait for a CPU (on a busy
machine the wall clock is more: the load average is printed). Then the peak RSS. With
``BENCH_ADMIN_EXPLAIN=1`` a slow page's slowest query gets its EXPLAIN ANALYZE;
``BENCH_ADMIN_ONLY=attempts,bookings`` measures only those lists.

PostgreSQL by default: ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/mlc_bench_admin``) names a database the bench creates,
and drops at the end (a name without "bench" in it is never used: the bench then takes
``mlc_bench_admin`` on that server); ``BENCH_ADMIN_DB=sqlite`` runs on a temporary SQLite
file instead.
``BENCH_KEEP_DB=1`` keeps the database and reuses its rows on the next run (for iterating
on indexes: migrations still run, the build is skipped when the rows are there).

    .venv/bin/python bench/admin_pages.py                      # 5-10 minutes on 2 cores
    BENCH_KEEP_DB=1 BENCH_ADMIN_EXPLAIN=1 .venv/bin/python bench/admin_pages.py
    BENCH_ADMIN_ROWS=10000 BENCH_ADMIN_DB=sqlite .venv/bin/python bench/admin_pages.py
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django.core.serializers.json import DjangoJSONEncoder  # noqa: E402

from bench._support import drop_database, ensure_database, peak_mb  # noqa: E402

ROWS = int(os.environ.get("BENCH_ADMIN_ROWS", "100000"))
OTHER_TENANTS = 3
REPEAT = int(os.environ.get("BENCH_ADMIN_REPEAT", "3"))
BUDGET_MS = 300.0
KEEP = os.environ.get("BENCH_KEEP_DB") == "1"
EXPLAIN = os.environ.get("BENCH_ADMIN_EXPLAIN") == "1"
BATCH = 5000
#: Measure only these lists (comma-separated: attempts,payments,events,bookings,audit).
ONLY = {n for n in os.environ.get("BENCH_ADMIN_ONLY", "").split(",") if n}
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/mlc_bench_admin"
MAIN_SLUG = "bench-admin-main"
# A fixed "today": the year of data ends here, whatever day the bench runs.
END = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _environ() -> str:
    if os.environ.get("BENCH_ADMIN_DB") == "sqlite":
        tmp = tempfile.mkdtemp(prefix="mlc-bench-admin-")
        url = f"sqlite:///{tmp}/bench.sqlite3"
    else:
        url = _bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",  # DEBUG keeps every SQL query in memory: not a fair RSS
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghijkl",
            "SALT_KEY": "bench-salt",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "LOG_LEVEL": "ERROR",
            "EXACT_CLIENT_ID": "sim-client-id",
            "EXACT_CLIENT_SECRET": "sim-client-secret",
            "EXACT_WEBHOOK_SECRET": "sim-webhook-secret",
            "PUBLIC_BASE_URL": "https://connector.example.test",
            "EMAIL_URL": "memorymail://",
        }
    )
    return url


def _bench_url(url: str) -> str:
    """The bench drops its database at the end: it only ever uses one whose name says it is
    a bench's. Any other DATABASE_URL (a developer's, CI's) lends its server and credentials,
    and the bench uses its own database there."""
    if not url.startswith(("postgres://", "postgresql://")):
        return DEFAULT_URL
    parsed = urlsplit(url)
    if "bench" in parsed.path.lstrip("/"):
        return url
    return parsed._replace(path="/" + urlsplit(DEFAULT_URL).path.lstrip("/")).geturl()


@contextlib.contextmanager
def _explicit_timestamps(*models):
    """Let bulk_create keep the created_at / updated_at we give (auto_now would make a year
    of rows all "now"; the audit trail cannot be updated afterwards)."""
    saved = []
    for model in models:
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                saved.append((field, field.auto_now, field.auto_now_add))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _bulk(model, objects) -> int:
    """Insert model instances from a generator in batches (never a whole table in memory):
    bulk_create on SQLite; on PostgreSQL the same instances through COPY, some twenty times
    faster than bulk_create's parameter quoting, so 100,000 rows a model build in minutes."""
    from django.db import connection

    done, batch = 0, []
    for obj in objects:
        batch.append(obj)
        if len(batch) >= BATCH:
            done += _insert(model, batch, connection)
            batch = []
    if batch:
        done += _insert(model, batch, connection)
    return done


def _insert(model, batch, connection) -> int:
    if connection.vendor != "postgresql":
        model.objects.bulk_create(batch)
        return len(batch)
    # Every concrete column but the serial id and those left to the database (db_default).
    fields = [
        f for f in model._meta.concrete_fields
        if not f.primary_key and not hasattr(getattr(batch[0], f.attname), "resolve_expression")
    ]
    for obj in batch:
        for f in fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                f.pre_save(obj, add=True)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    # psycopg adapts str, bytes, int, Decimal, date, datetime, UUID and None itself; only
    # the project's own fields (encrypted secrets) need Django's preparation.
    prepared = {f.attname for f in fields if not type(f).__module__.startswith("django.")}

    def value(obj, field):
        raw = getattr(obj, field.attname)
        if field.attname in json_fields:
            return None if raw is None else json.dumps(raw, cls=DjangoJSONEncoder)
        if field.attname in prepared:
            return field.get_db_prep_save(raw, connection)
        return raw

    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY {table} ({columns}) FROM STDIN"
    ) as copy:
        for obj in batch:
            copy.write_row([value(obj, f) for f in fields])
    return len(batch)


def _at(i: int, n: int) -> datetime:
    """Row i of n, spread over the year before END (later rows are newer)."""
    return END - timedelta(seconds=int((n - i) * 365 * 86400 / n))


def build_tenant(tenant, n: int, *, prefix: str) -> None:
    """n rows of each of the five models for one company, and what their pages show."""
    from core.models import ActorType, AuditEntry
    from exact.models import ExactAccount, ExactReceivable
    from gocardless.models import (
        Customer,
        EventOutcome,
        EventSource,
        GoCardlessEvent,
        Mandate,
        Payment,
        WebhookDelivery,
    )
    from reconciliation.bookings.models import Booking, BookingState, Rule
    from reconciliation.collection.models import (
        AttemptState,
        CollectionAttempt,
        CollectionRun,
        RunKind,
        RunState,
        RunTrigger,
    )
    from reconciliation.customers.models import CustomerLink, LinkState

    customers = max(n // 10, 1)
    account_ids = [uuid.uuid4() for _ in range(customers)]
    receivable_ids = [uuid.uuid4() for _ in range(n)]

    def currency(i):
        return "GBP" if i % 5 == 0 else "EUR"

    _bulk(ExactAccount, (
        ExactAccount(tenant=tenant, exact_id=account_ids[c], code=str(10000 + c),
                     name=f"{prefix} Debtor {c:06d} B.V.", email=f"ar{c}@{prefix}.example",
                     country="NL", status="C", synced_at=END,
                     raw={"ID": str(account_ids[c]), "Name": f"Debtor {c}", "Code": str(c)})
        for c in range(customers)
    ))
    accounts = dict(ExactAccount.objects.filter(tenant=tenant).values_list("exact_id", "pk"))
    _bulk(Customer, (
        Customer(tenant=tenant, gocardless_id=f"CU{prefix}{c:08d}", name=f"Debtor {c:06d} B.V.",
                 email=f"ar{c}@{prefix}.example", gocardless_created_at=_at(c, customers),
                 fetched_at=END, raw={"id": f"CU{prefix}{c:08d}", "company_name": f"Debtor {c}"})
        for c in range(customers)
    ))
    _bulk(Mandate, (
        Mandate(tenant=tenant, gocardless_id=f"MD{prefix}{c:08d}",
                status="active" if c % 20 else "cancelled",
                scheme="bacs" if c % 5 == 0 else "sepa_core", reference=f"MLC-{c:06d}",
                customer_id=f"CU{prefix}{c:08d}", gocardless_created_at=_at(c, customers),
                raw={"id": f"MD{prefix}{c:08d}", "links": {"customer": f"CU{prefix}{c:08d}"}})
        for c in range(customers)
    ))
    gc_customers = dict(Customer.objects.filter(tenant=tenant).values_list("gocardless_id", "pk"))
    mandates = dict(Mandate.objects.filter(tenant=tenant).values_list("gocardless_id", "pk"))
    _bulk(CustomerLink, (
        CustomerLink(tenant=tenant, exact_account_id=accounts[account_ids[c]],
                     exact_account_guid=account_ids[c], exact_code=str(10000 + c),
                     exact_name=f"{prefix} Debtor {c:06d} B.V.",
                     gocardless_customer_id=gc_customers[f"CU{prefix}{c:08d}"],
                     mandate_id=mandates[f"MD{prefix}{c:08d}"],
                     state=LinkState.MATCHED if c % 50 else LinkState.AMBIGUOUS)
        for c in range(customers)
    ))
    _bulk(ExactReceivable, (
        ExactReceivable(tenant=tenant, exact_id=receivable_ids[i],
                        account_id=accounts[account_ids[i % customers]],
                        account_exact_id=account_ids[i % customers],
                        invoice_number=26_000_000 + i, invoice_date=_at(i, n).date(),
                        due_date=_at(i, n).date() + timedelta(days=14), currency=currency(i),
                        amount=Decimal("121.00") + i % 900, is_fully_paid=i % 6 != 0,
                        outstanding=Decimal(0) if i % 6 else Decimal("121.00"), synced_at=END)
        for i in range(n)
    ))

    days = 365
    with _explicit_timestamps(CollectionRun):
        _bulk(CollectionRun, (
            CollectionRun(tenant=tenant, kind=RunKind.LIVE, trigger=RunTrigger.SCHEDULE,
                          state=RunState.COMPLETED, as_of=(END - timedelta(days=d)).date(),
                          evaluated=n // days, to_collect=n // days, submitted=n // days,
                          totals={"EUR": "12345.00"}, started_at=END - timedelta(days=d),
                          finished_at=END - timedelta(days=d, seconds=-30))
            for d in range(days)
        ))
    runs = list(CollectionRun.objects.filter(tenant=tenant).order_by("started_at")
                .values_list("pk", flat=True))

    pay_statuses = (["paid_out"] * 12 + ["confirmed"] * 3 + ["failed", "failed", "charged_back",
                    "submitted", "pending_submission", "cancelled"])
    attempt_of = {"paid_out": AttemptState.PAID_OUT, "confirmed": AttemptState.CONFIRMED,
                  "failed": AttemptState.RETRY_SCHEDULED, "charged_back":
                  AttemptState.NEEDS_ATTENTION, "submitted": AttemptState.SUBMITTED,
                  "pending_submission": AttemptState.PENDING,
                  "cancelled": AttemptState.CANCELLED}

    def status(i):
        return pay_statuses[(i * 7) % len(pay_statuses)]

    def pm(i):
        return f"PM{prefix}{i:08d}"

    with _explicit_timestamps(Payment):
        _bulk(Payment, (
            Payment(tenant=tenant, gocardless_id=pm(i), status=status(i),
                    amount=12100 + (i * 37) % 90000, currency=currency(i),
                    charge_date=_at(i, n).date() + timedelta(days=3),
                    reference=f"INV{26_000_000 + i}", mandate_id=f"MD{prefix}{i % customers:08d}",
                    payout_id=f"PO{prefix}{i // 50:06d}" if status(i) == "paid_out" else "",
                    metadata={"mlc_attempt": f"{receivable_ids[i]}/1",
                              "exact_invoice": str(26_000_000 + i),
                              "exact_account": str(account_ids[i % customers])},
                    raw={"id": pm(i), "amount": 12100, "currency": currency(i),
                         "status": status(i), "description": f"Invoice {26_000_000 + i}",
                         "links": {"mandate": f"MD{prefix}{i % customers:08d}",
                                   "creditor": "CR000BENCH"},
                         "metadata": {"mlc_attempt": f"{receivable_ids[i]}/1"},
                         "retry_if_possible": False, "scheme": "sepa_core"},
                    gocardless_created_at=_at(i, n), fetched_at=_at(i, n), synced_at=_at(i, n))
            for i in range(n)
        ))

    with _explicit_timestamps(CollectionAttempt):
        _bulk(CollectionAttempt, (
            CollectionAttempt(
                tenant=tenant, run_id=runs[min(i * days // n, days - 1)],
                receivable_exact_id=receivable_ids[i], invoice_number=26_000_000 + i,
                account_exact_id=account_ids[i % customers],
                account_label=f"{10000 + i % customers} {prefix} Debtor {i % customers:06d} B.V.",
                attempt_number=1, key=f"{receivable_ids[i]}/1",
                idempotency_key=f"mlc-pay-{prefix}-{receivable_ids[i].hex}-1",
                amount=Decimal(12100 + (i * 37) % 90000) / 100, currency=currency(i),
                charge_date=_at(i, n).date() + timedelta(days=3),
                mandate_gocardless_id=f"MD{prefix}{i % customers:08d}",
                payment_gocardless_id=pm(i), payment_status=status(i),
                state=attempt_of[status(i)],
                next_retry_on=(_at(i, n).date() + timedelta(days=10)
                               if status(i) == "failed" else None),
                failure_cause={"failed": "insufficient_funds",
                               "charged_back": "refund_requested"}.get(status(i), ""),
                flag="Charged back by the customer" if status(i) == "charged_back" else "",
                send_count=1, created_at=_at(i, n), updated_at=_at(i, n))
            for i in range(n)
        ))

    deliveries = max(n // 10, 1)
    with _explicit_timestamps(WebhookDelivery):
        _bulk(WebhookDelivery, (
            WebhookDelivery(tenant=tenant, endpoint="gocardless", body=b'{"events":[]}',
                            body_size=2000, valid=True, response_status=204, event_count=10,
                            received_at=_at(d, deliveries))
            for d in range(deliveries)
        ))
    delivery_ids = list(WebhookDelivery.objects.filter(tenant=tenant).order_by("received_at")
                        .values_list("pk", flat=True))
    kinds = (("payments", "confirmed"), ("payments", "paid_out"), ("payments", "submitted"),
             ("payouts", "paid"), ("mandates", "active"), ("payments", "failed"),
             ("refunds", "paid"), ("payments", "charged_back"))

    def event(i):
        resource_type, action = kinds[i % len(kinds)]
        created = _at(i, n)
        pending = i % 997 == 0
        return GoCardlessEvent(
            tenant=tenant, delivery_id=delivery_ids[i // 10] if i % 4 else None,
            event_id=f"EV{prefix}{i:08d}", resource_type=resource_type, action=action,
            resource_id=pm(i) if resource_type == "payments" else f"XX{prefix}{i:08d}",
            links={resource_type.rstrip("s"): pm(i)},
            details={"origin": "gocardless", "cause": action, "description": "Bench event"},
            raw={"id": f"EV{prefix}{i:08d}", "created_at": created.isoformat(),
                 "resource_type": resource_type, "action": action,
                 "links": {resource_type.rstrip("s"): pm(i)},
                 "details": {"origin": "gocardless", "cause": action}},
            source=EventSource.WEBHOOK if i % 4 else EventSource.POLL, created_at=created,
            received_at=created + timedelta(seconds=1),
            processed_at=None if pending else created + timedelta(seconds=2),
            outcome="" if pending else EventOutcome.APPLIED, attempts=0 if pending else 1,
        )

    _bulk(GoCardlessEvent, (event(i) for i in range(n)))

    booking_states = ([BookingState.CONFIRMED] * 45 + [BookingState.PENDING, BookingState.FAILED,
                      BookingState.GAVE_UP, BookingState.SENT, BookingState.CONFIRMED])
    rules = [Rule.RECEIPT] * 8 + [Rule.PAYOUT, Rule.REVERSAL]

    def booking(i):
        state = booking_states[i % len(booking_states)]
        posted = state == BookingState.CONFIRMED
        return Booking(
            tenant=tenant, key=f"{rules[i % 10]}:{pm(i)}:1", rule=rules[i % 10],
            gocardless_id=pm(i), reference=f"B{prefix}{i:08d}", state=state,
            facts={"payment": pm(i), "invoice": 26_000_000 + i, "amount": 12100,
                   "account": str(account_ids[i % customers]), "attempt": f"{i}/1"},
            currency=currency(i), amount_minor=12100 + (i * 37) % 90000,
            booking_date=_at(i, n).date(),
            exact_entry_id=uuid.uuid4() if posted else None,
            exact_entry_number=100000 + i if posted else None,
            request_body={"JournalCode": "21", "BankEntryLines": [{"AmountFC": -121.0}]}
            if posted else {},
            attempts=1 if posted else 3,
            last_error="" if posted else "Exact answered 400: the period is closed",
            confirmed_at=_at(i, n) if posted else None,
            created_at=_at(i, n), updated_at=_at(i, n),
        )

    with _explicit_timestamps(Booking):
        _bulk(Booking, (booking(i) for i in range(n)))

    actions = ["attempt.created", "payment.confirmed", "booking.posted", "event.processed",
               "mandate.reflected", "collectionattempt.changed", "sync.finished"]

    def entry(i):
        by_user = i % 25 == 0
        action = actions[i % len(actions)]
        return AuditEntry(
            tenant=tenant, actor_type=ActorType.USER if by_user else ActorType.SCHEDULE,
            actor_label="bench-root" if by_user else "collection sweep", action=action,
            object_type=["gocardless.payment", "bookings.booking", "collection.collectionattempt"]
            [i % 3], object_id=str(i), before={"state": "submitted"} if i % 2 else None,
            after={"state": "confirmed", "payment": pm(i)}, message=f"{action} by the bench",
            created_at=_at(i, n))

    with _explicit_timestamps(AuditEntry):
        _bulk(AuditEntry, (entry(i) for i in range(n)))


def build(n: int) -> tuple:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from exact.models import ConnectionStatus, ExactConnection, Region
    from tenants.models import Membership, Role, Tenant

    User = get_user_model()
    main = Tenant.objects.filter(slug=MAIN_SLUG).first()
    if main is None:
        started = time.monotonic()
        main = Tenant.objects.create(name="Bench Main BV", slug=MAIN_SLUG,
                                     currencies=["EUR", "GBP"])
        tenants = [(main, n, "A")] + [
            (Tenant.objects.create(name=f"Bench Other {k}", slug=f"bench-admin-other-{k}"),
             max(n // 10, 1), chr(ord("B") + k))
            for k in range(OTHER_TENANTS)
        ]
        for tenant, rows, prefix in tenants:
            ExactConnection.objects.create(
                tenant=tenant, region=Region.NL, division=900000 + ord(prefix),
                division_name="Bench", status=ConnectionStatus.CONNECTED,
                access_token="bench-access", refresh_token="bench-refresh")
            build_tenant(tenant, rows, prefix=prefix)
        User.objects.create_superuser("bench-root", "root@bench.example", "pw")
        viewer = User.objects.create_user("bench-viewer", "viewer@bench.example", "pw",
                                          is_staff=True)
        Membership.objects.create(user=viewer, tenant=main, role=Role.VIEWER)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        else:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        print(f"  built {n:,} rows x 5 (+{OTHER_TENANTS} companies of {n // 10:,}) and their "
              f"related rows in {time.monotonic() - started:.0f} s")
    else:
        print(f"  reusing the rows of {os.environ['DATABASE_URL']} (BENCH_KEEP_DB=1)")
    return main, User.objects.get(username="bench-root"), User.objects.get(username="bench-viewer")


def _column(model_admin, fields: tuple[str, ...]) -> str:
    """``o=`` value sorting by the first column whose sort field is one of ``fields`` (a
    model field shown as is, or a display method's ``ordering=``)."""
    sort_fields = []
    for name in model_admin.list_display:
        attr = getattr(model_admin, name, None) if isinstance(name, str) else name
        sort_fields.append(getattr(attr, "admin_order_field", None) or name)
    for wanted in fields:
        if wanted in sort_fields:
            return str(sort_fields.index(wanted) + 1)
    return "1"


def pages(main) -> list[tuple[str, str, str]]:
    """(model, page, url) for each page measured."""
    from django.contrib import admin
    from django.urls import reverse

    from core.models import AuditEntry
    from gocardless.models import GoCardlessEvent, Payment
    from reconciliation.bookings.models import Booking
    from reconciliation.collection.models import CollectionAttempt

    specs = [
        ("attempts", CollectionAttempt, "state=needs_attention", "q=26000123",
         ("charge_date", "amount"), "invoice_number"),
        ("payments", Payment, "status__exact=failed", "q=PMA00000123",
         ("amount", "charge_date"), "gocardless_id"),
        ("events", GoCardlessEvent, "processing=pending", "q=EVA00000123",
         ("resource_id", "action"), "event_id"),
        ("bookings", Booking, "state__exact=gave_up", "q=PMA00000123",
         ("booking_date", "state"), "gocardless_id"),
        ("audit", AuditEntry, "action__exact=booking.posted", "q=booking.posted",
         ("action", "object_type"), "object_id"),
    ]
    out = []
    for name, model, filtered, search, sort_by, _key in specs:
        if ONLY and name not in ONLY:
            continue
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        column = _column(admin.site._registry[model], sort_by)
        obj = model._default_manager.filter(tenant=main).order_by("-pk")[ROWS // 3 : ROWS // 3 + 1]
        change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj[0].pk])
        out += [
            (name, "first page", url),
            (name, "filtered", f"{url}?{filtered}"),
            (name, "search", f"{url}?{search}"),
            (name, f"sorted (o={column})", f"{url}?o={column}"),
            (name, "page 50", f"{url}?p=50"),
            (name, "change page", change),
        ]
    return out


def measure(client, url: str) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm: templates, content types, session
    times, cpu = [], []
    for _ in range(REPEAT):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        if response.status_code != 200:
            return {"status": response.status_code, "where": response.get("Location", "")}
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    queries = captured.captured_queries
    slowest = max(queries, key=lambda q: float(q["time"])) if queries else {"time": 0, "sql": ""}
    return {
        "status": 200,
        "median": statistics.median(times),
        "max": max(times),
        "cpu": statistics.median(cpu),
        "queries": len(queries),
        "sql_ms": sum(float(q["time"]) for q in queries) * 1000,
        "slowest_ms": float(slowest["time"]) * 1000,
        "slowest_sql": slowest["sql"],
    }


def explain(sql: str) -> str:
    from django.db import connection

    if connection.vendor != "postgresql":
        return ""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> int:
    began = time.monotonic()
    url = _environ()
    if url.startswith(("postgres://", "postgresql://")) and not KEEP:
        drop_database(url)
    ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    try:
        call_command("migrate", verbosity=0)
        print(f"admin pages: {ROWS:,} rows of each of five models on {connection.vendor}, "
              f"median of {REPEAT} requests per page, budget {BUDGET_MS:.0f} ms; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        main_tenant, root, viewer = build(ROWS)
        over = over_busy = 0
        header = (f"  {'user':<10}{'model':<10}{'page':<18}{'median ms':>10}{'max ms':>9}"
                  f"{'app CPU':>8}{'queries':>8}{'SQL ms':>8}{'slowest':>8}{'x budget':>9}"
                  f"{'CPU+SQL x':>10}")
        for who, user in (("superuser", root), ("viewer", viewer)):
            client = Client()
            client.force_login(user)
            print(header)
            for model, page, page_url in pages(main_tenant):
                result = measure(client, page_url)
                if result["status"] != 200:
                    if page == "page 50" and result["where"].endswith("?e=1"):
                        print(f"  {who:<10}{model:<10}{page:<18}  (fewer than 50 pages)")
                        continue
                    print(f"  {who:<10}{model:<10}{page:<18}  HTTP {result['status']} "
                          f"{result['where']}")
                    over += 1
                    continue
                ratio = result["median"] / BUDGET_MS
                # What the page costs when it does not wait for a CPU: this process's CPU time
                # plus the time the database took (on a busy machine the wall clock is more).
                busy = (result["cpu"] + result["sql_ms"]) / BUDGET_MS
                over += ratio > 1
                over_busy += busy > 1
                print(f"  {who:<10}{model:<10}{page:<18}{result['median']:>10.0f}"
                      f"{result['max']:>9.0f}{result['cpu']:>8.0f}{result['queries']:>8}{result['sql_ms']:>8.0f}"
                      f"{result['slowest_ms']:>8.0f}{ratio:>9.2f}{busy:>10.2f}"
                      f"{'  OVER' if ratio > 1 else ''}")
                if EXPLAIN and (ratio > 1 or result["slowest_ms"] > BUDGET_MS / 3):
                    print("    slowest query:", result["slowest_sql"][:600])
                    print("    " + explain(result["slowest_sql"]).replace("\n", "\n    "))
        print(f"  peak RSS {peak_mb():.0f} MB; load average {os.getloadavg()[0]:.1f} at the end; "
              f"{time.monotonic() - began:.0f} s in all")
        print(f"  pages over the {BUDGET_MS:.0f} ms budget: {over} by the wall clock, "
              f"{over_busy} by CPU + SQL time")
        print("  OK" if over == 0 else "  NOT OK")
        return 0 if over == 0 else 1
    finally:
        connections.close_all()
        if not KEEP:
            drop_database(url)
            if url.startswith("sqlite:///"):
                shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
