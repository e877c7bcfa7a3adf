"""GET /metrics: Prometheus metrics read from the database at scrape time.

The app runs as several gunicorn and django-q2 processes, so counters kept in one process's
memory would show a fraction of the truth. Every value here is therefore read from the
database (or the broker) when Prometheus scrapes, by one custom collector, in a fixed number
of grouped queries whatever the number of tenants (tests/config/test_metrics.py checks it).
Rows that only ever grow (confirmed bookings, collected attempts, processed events) are not
counted: each query filters on an indexed column to the rows that still need something.

Per-tenant series carry the tenant slug as label ``tenant``. Inactive tenants are reported
like the others (their backlog is real and is worked off when they are activated again);
``mlc_tenant_active`` tells them apart, so an alert can be limited to active tenants with
``... and on(tenant) mlc_tenant_active == 1``. docs/metrics.md lists every metric.

Protection: the answer names tenants and their volumes, like /healthz. Keep it on the
internal network; with ``METRICS_TOKEN`` set, a request must also carry
``Authorization: Bearer <token>`` (401 otherwise). A database error answers 503 with one
line (logged by exception class only: exception texts can carry connection strings).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import math

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Exists, Min, OuterRef, Q, Subquery
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from exact.errors import ExactHostNotAllowed
from exact.models import ConnectionStatus as ExactStatus
from exact.models import (
    ExactRateBudget,
    ExactWebhookDelivery,
    SyncEntity,
    SyncRun,
    region_base_url,
)
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import GoCardlessEvent, WebhookDelivery, WebhookEndpoint
from reconciliation.bookings.models import Booking, BookingState
from reconciliation.collection.freshness import WHOLE_COPY_MODES
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
)
from tenants.models import Tenant

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "not_configured"
EXACT_STATUSES = [*ExactStatus.values, NOT_CONFIGURED]
GOCARDLESS_STATUSES = [*GoCardlessStatus.values, NOT_CONFIGURED]
# Attempts and bookings that still need something (from us, GoCardless, Exact or a person).
OPEN_ATTEMPT_STATES = [
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.RETRY_SCHEDULED,
    AttemptState.NEEDS_ATTENTION,
]
OPEN_BOOKING_STATES = [
    BookingState.PENDING,
    BookingState.SENT,
    BookingState.FAILED,
    BookingState.GAVE_UP,
]
# Unprocessed GoCardless events, by where they stand (disjoint; the sum is all unprocessed).
EVENT_STATES = ("pending", "awaiting_retry", "given_up")
WEBHOOK_WINDOW = dt.timedelta(hours=1)


def _age_seconds(now: dt.datetime, then: dt.datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


def _tenants() -> list[dict]:
    """One row per tenant: connections, freshness of the Exact copy, last and live runs.

    Two statements: the per-tenant lookups are correlated subqueries (SyncRun's
    (tenant, -started_at) index, read until the first successful whole-copy sync; the partial
    unique index of the live running run; the tenant's runs for the latest one — CollectionRun
    has no (tenant, started_at) index, so that one sorts the tenant's runs), then the state and
    start of those latest runs by primary key."""
    last_sync = SyncRun.objects.filter(
        tenant=OuterRef("pk"),
        entity=SyncEntity.RECEIVABLES,
        mode__in=WHOLE_COPY_MODES,
        finished_at__isnull=False,
        error="",
    ).order_by("-started_at")
    last_run = CollectionRun.objects.filter(tenant=OuterRef("pk")).order_by("-started_at", "-id")
    live_running = CollectionRun.objects.filter(
        tenant=OuterRef("pk"), kind=RunKind.LIVE, state=RunState.RUNNING
    )
    tenants = list(
        Tenant.objects.order_by("slug")
        .annotate(
            exact_synced_at=Subquery(last_sync.values("started_at")[:1]),
            last_run_id=Subquery(last_run.values("pk")[:1]),
            live_run_running=Exists(live_running),
        )
        .values(
            "pk",
            "slug",
            "is_active",
            "exact_connection__pk",
            "exact_connection__status",
            "exact_connection__division",
            "exact_connection__region",
            "exact_connection__custom_base_url",
            "exact_connection__grant__region",
            "exact_connection__grant__custom_base_url",
            "exact_connection__paused_until",
            "gocardless_connection__status",
            "exact_synced_at",
            "last_run_id",
            "live_run_running",
        )
    )
    run_ids = [t["last_run_id"] for t in tenants if t["last_run_id"] is not None]
    latest = CollectionRun.objects.filter(pk__in=run_ids).values("pk", "state", "started_at")
    runs = {row["pk"]: row for row in latest}  # no query at all when no tenant has a run
    for t in tenants:
        run = runs.get(t["last_run_id"], {})
        t["last_run_state"], t["last_run_started_at"] = run.get("state"), run.get("started_at")
    return tenants


def _events() -> dict[int, dict]:
    """Unprocessed GoCardless events per tenant (the gc_event_pending index: processed_at)."""
    awaiting_retry = Q(failed_at__isnull=False, next_attempt_at__isnull=False)
    given_up = Q(failed_at__isnull=False, next_attempt_at__isnull=True)
    rows = (
        GoCardlessEvent.objects.filter(processed_at__isnull=True)
        .order_by()
        .values("tenant_id")
        .annotate(
            pending=Count("pk", filter=Q(failed_at__isnull=True)),
            awaiting_retry=Count("pk", filter=awaiting_retry),
            given_up=Count("pk", filter=given_up),
            oldest=Min("received_at", filter=~given_up),
        )
    )
    return {row["tenant_id"]: row for row in rows}


def _grouped_counts(queryset, field: str) -> dict[tuple[int, str], int]:
    rows = queryset.order_by().values("tenant_id", field).annotate(n=Count("pk"))
    return {(row["tenant_id"], row[field]): row["n"] for row in rows}


def _webhooks(now: dt.datetime) -> dict[tuple[str, str, bool], int]:
    """Deliveries of the last hour (both received_at columns are indexed)."""
    since = now - WEBHOOK_WINDOW
    counts = {
        (provider, endpoint, valid): 0
        for provider, endpoints in (
            ("gocardless", WebhookEndpoint.values),
            ("exact", [WebhookEndpoint.TENANT]),
        )
        for endpoint in endpoints
        for valid in (True, False)
    }
    rows = (
        WebhookDelivery.objects.filter(received_at__gte=since)
        .order_by()
        .values("endpoint", "valid")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[("gocardless", row["endpoint"], row["valid"])] = row["n"]
    rows = (
        ExactWebhookDelivery.objects.filter(received_at__gte=since)
        .order_by()
        .values("valid")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[("exact", WebhookEndpoint.TENANT, row["valid"])] = row["n"]
    return counts


def _budgets(now: dt.datetime) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    """Exact's daily API budget per (host, division) for this app: (remaining, limit). Keyed
    by host too: a division number exists once per Exact region, and only the answers of the
    host that holds it count (exact/ratelimit.py).

    The stored row is rolled over only when the next call is reserved; a day that has ended
    since counts as the full limit again (what exact/ratelimit.py would do)."""
    budgets = {}
    rows = ExactRateBudget.objects.filter(client_id=settings.EXACT_CLIENT_ID).values(
        "host", "division", "daily_remaining", "daily_limit", "daily_reset_at"
    )
    for row in rows:
        remaining = row["daily_remaining"]
        if row["daily_reset_at"] is not None and now >= row["daily_reset_at"]:
            remaining = row["daily_limit"]
        budgets[(row["host"], row["division"])] = (remaining, row["daily_limit"])
    return budgets


def _exact_host(row: dict) -> str | None:
    """Where a tenant's Exact calls go: its grant's host, else its connection's region (as
    ExactConnection.api_base_url says, without a query per tenant); None when not allowed."""
    prefix = "exact_connection__grant__" if row["exact_connection__grant__region"] else (
        "exact_connection__")
    try:
        return region_base_url(region=row[prefix + "region"],
                               custom_base_url=row[prefix + "custom_base_url"] or "")
    except ExactHostNotAllowed:
        return None


def _django_q() -> tuple[int | None, int]:
    """(tasks waiting in the broker or None when it cannot be asked, failed tasks stored)."""
    from django_q.conf import Conf
    from django_q.models import Failure, OrmQ

    if Conf.ORM:
        queued = OrmQ.objects.count()
    else:
        from django_q.brokers import get_broker

        try:
            queued = get_broker().queue_size()
        except Exception as exc:  # Redis down: reported as broker_up 0, not as an error
            logger.warning("metrics: broker unreachable (%s)", type(exc).__name__)
            queued = None
    return queued, Failure.objects.count()


def _gauge(name: str, documentation: str, labels: list[str] | None = None):
    return GaugeMetricFamily(name, documentation, labels=labels)


def metric_families(now: dt.datetime | None = None) -> list[GaugeMetricFamily]:
    """Every metric, read now. Raises DatabaseError when the database cannot answer."""
    now = now or timezone.now()
    tenants = _tenants()
    events = _events()
    attempts = _grouped_counts(
        CollectionAttempt.objects.filter(state__in=OPEN_ATTEMPT_STATES), "state"
    )
    bookings = _grouped_counts(Booking.objects.filter(state__in=OPEN_BOOKING_STATES), "state")
    webhooks = _webhooks(now)
    budgets = _budgets(now)
    queued, failed_tasks = _django_q()

    active = _gauge("mlc_tenant_active", "1 if the tenant is active, 0 if deactivated.",
                    ["tenant"])
    gc_events = _gauge(
        "mlc_gocardless_events_unprocessed",
        "GoCardless events not yet processed, by state: pending (not failed yet), "
        "awaiting_retry (failed, retry scheduled), given_up (failed too often; a person "
        "must reprocess).",
        ["tenant", "state"],
    )
    gc_oldest = _gauge(
        "mlc_gocardless_events_oldest_unprocessed_age_seconds",
        "Age of the oldest pending or awaiting_retry GoCardless event (0 when none; "
        "given-up events are not included).",
        ["tenant"],
    )
    exact_status = _gauge(
        "mlc_exact_connection_status",
        "Exact Online connection status: 1 for the current status, 0 for the others.",
        ["tenant", "status"],
    )
    exact_paused = _gauge(
        "mlc_exact_connection_paused",
        "1 while the Exact connection is paused because the daily API budget is spent.",
        ["tenant"],
    )
    exact_sync_age = _gauge(
        "mlc_exact_receivables_sync_age_seconds",
        "Seconds since the start of the last successful whole-copy sync of the Exact "
        "receivables (+Inf: never); tenants with an Exact connection only.",
        ["tenant"],
    )
    budget_remaining = _gauge(
        "mlc_exact_api_daily_calls_remaining",
        "Exact API calls left today for the tenant's division (as last reported by Exact).",
        ["tenant"],
    )
    budget_limit = _gauge(
        "mlc_exact_api_daily_calls_limit", "Exact API calls allowed a day for the division.",
        ["tenant"],
    )
    gc_status = _gauge(
        "mlc_gocardless_connection_status",
        "GoCardless connection status: 1 for the current status, 0 for the others.",
        ["tenant", "status"],
    )
    attempt_gauge = _gauge(
        "mlc_collection_attempts_open",
        "Collection attempts that are not finished, by state (needs_attention: a person "
        "must act).",
        ["tenant", "state"],
    )
    live_running = _gauge(
        "mlc_collection_live_run_running", "1 while a live collection run is running.",
        ["tenant"],
    )
    last_run_state = _gauge(
        "mlc_collection_last_run_state",
        "State of the tenant's most recent collection run (preview or live): 1 for its "
        "state, 0 for the others; no series when the tenant never had a run.",
        ["tenant", "state"],
    )
    last_run_time = _gauge(
        "mlc_collection_last_run_started_timestamp_seconds",
        "Unix time the tenant's most recent collection run started.",
        ["tenant"],
    )
    booking_gauge = _gauge(
        "mlc_bookings_open",
        "Bookings not yet confirmed in Exact, by state (failed: retrying; gave_up: needs "
        "attention).",
        ["tenant", "state"],
    )

    for t in tenants:
        slug = t["slug"]
        active.add_metric([slug], 1 if t["is_active"] else 0)

        row = events.get(t["pk"], {})
        for state in EVENT_STATES:
            gc_events.add_metric([slug, state], row.get(state, 0))
        gc_oldest.add_metric([slug], _age_seconds(now, row.get("oldest")) or 0.0)

        current = t["exact_connection__status"] or NOT_CONFIGURED
        for status in EXACT_STATUSES:
            exact_status.add_metric([slug, status], 1 if status == current else 0)
        if t["exact_connection__pk"] is not None:
            paused_until = t["exact_connection__paused_until"]
            exact_paused.add_metric([slug], 1 if paused_until and paused_until > now else 0)
            age = _age_seconds(now, t["exact_synced_at"])
            exact_sync_age.add_metric([slug], math.inf if age is None else age)
            key = (_exact_host(t), t["exact_connection__division"])
            remaining, limit = budgets.get(key, (None, None))
            if remaining is not None:
                budget_remaining.add_metric([slug], remaining)
            if limit is not None:
                budget_limit.add_metric([slug], limit)

        current = t["gocardless_connection__status"] or NOT_CONFIGURED
        for status in GOCARDLESS_STATUSES:
            gc_status.add_metric([slug, status], 1 if status == current else 0)

        for state in OPEN_ATTEMPT_STATES:
            attempt_gauge.add_metric([slug, state], attempts.get((t["pk"], state), 0))
        live_running.add_metric([slug], 1 if t["live_run_running"] else 0)
        if t["last_run_state"]:
            for state in RunState.values:
                last_run_state.add_metric([slug, state], 1 if state == t["last_run_state"] else 0)
            last_run_time.add_metric([slug], t["last_run_started_at"].timestamp())

        for state in OPEN_BOOKING_STATES:
            booking_gauge.add_metric([slug, state], bookings.get((t["pk"], state), 0))

    deliveries = _gauge(
        "mlc_webhook_deliveries_last_hour",
        "Webhook deliveries received in the last hour, by provider, endpoint and validity "
        "(valid=false: bad signature, unknown tenant or malformed).",
        ["provider", "endpoint", "valid"],
    )
    for (provider, endpoint, valid), n in sorted(webhooks.items()):
        deliveries.add_metric([provider, endpoint, "true" if valid else "false"], n)

    broker_up = _gauge("mlc_django_q_broker_up", "1 if the django-q2 broker answered.")
    broker_up.add_metric([], 0 if queued is None else 1)
    queue = _gauge("mlc_django_q_queued_tasks", "Tasks waiting in the django-q2 broker.")
    if queued is not None:
        queue.add_metric([], queued)
    failures = _gauge(
        "mlc_django_q_failed_tasks",
        "Failed django-q2 tasks stored (shown under Django Q > Failed tasks in the admin).",
    )
    failures.add_metric([], failed_tasks)

    return [
        active, gc_events, gc_oldest, deliveries, exact_status, exact_paused, exact_sync_age,
        budget_remaining, budget_limit, gc_status, attempt_gauge, live_running, last_run_state,
        last_run_time, booking_gauge, queue, failures, broker_up,
    ]


class _Snapshot:
    """A collector that yields families already read (so a database error surfaces before
    any output is rendered)."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        yield from self.families


def _authorised(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_GET
def metrics(request):
    if not _authorised(request):
        response = HttpResponse("unauthorised\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        families = metric_families()
    except DatabaseError as exc:
        logger.error("metrics: database error (%s); answered 503", type(exc).__name__)
        return HttpResponse(
            "database unavailable\n", status=503, content_type="text/plain; charset=utf-8"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
