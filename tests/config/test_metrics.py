"""GET /metrics: Prometheus text read from the database at scrape time (config/metrics.py)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ, Task
from prometheus_client.parser import text_string_to_metric_families

from exact.models import ConnectionStatus as ExactStatus
from exact.models import ExactRateBudget, ExactWebhookDelivery, SyncEntity, SyncMode
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import WebhookDelivery, WebhookEndpoint
from reconciliation.bookings.models import BookingState
from reconciliation.collection.models import AttemptState, CollectionRun, RunKind, RunState
from tests.exact.factories import ExactWebhookDeliveryFactory, SyncRunFactory
from tests.factories import ExactConnectionFactory, GoCardlessConnectionFactory, TenantFactory
from tests.gocardless.factories import GoCardlessEventFactory, WebhookDeliveryFactory
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionRunFactory,
)

pytestmark = pytest.mark.django_db


def ago(**kwargs) -> dt.datetime:
    return timezone.now() - dt.timedelta(**kwargs)


def scrape(client, **headers) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value}; also checks HELP texts and the format."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        assert family.name.startswith("mlc_")
        assert family.documentation, f"{family.name} has no HELP text"
        assert family.type == "gauge"
        assert not family.name.endswith("_total")  # gauges only: no counter suffix
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def tenant_samples(samples, slug):
    return {key: v for key, v in samples.items() if ("tenant", slug) in key[1]}


def event(tenant, state, received_at):
    fields = {"tenant": tenant, "received_at": received_at}
    if state == "processed":
        fields.update(processed_at=timezone.now(), outcome="applied")
    elif state == "awaiting_retry":
        fields.update(failed_at=ago(minutes=1), attempts=2, next_attempt_at=ago(minutes=-5))
    elif state == "given_up":
        fields.update(failed_at=ago(hours=1), attempts=10, next_attempt_at=None)
    return GoCardlessEventFactory(**fields)


def run(tenant, *, kind, state, started_at):
    created = CollectionRunFactory(tenant=tenant, kind=kind, state=state)
    CollectionRun.objects.filter(pk=created.pk).update(started_at=started_at)
    return created


def seed_a(tenant):
    """Tenant A: connected Exact, GoCardless needs re-authorisation, something of each."""
    exact = ExactConnectionFactory(tenant=tenant, paused_until=ago(hours=1))  # pause over
    GoCardlessConnectionFactory(tenant=tenant, status=GoCardlessStatus.NEEDS_REAUTH)
    receivables = {"tenant": tenant, "entity": SyncEntity.RECEIVABLES}
    SyncRunFactory(**receivables, mode=SyncMode.INCREMENTAL, started_at=ago(minutes=30))
    # Newer, but none of them vouches for the whole copy:
    SyncRunFactory(**receivables, mode=SyncMode.INCREMENTAL, started_at=ago(minutes=10),
                   error="ExactServerError: 503")
    SyncRunFactory(**receivables, mode=SyncMode.INCREMENTAL, started_at=ago(minutes=5),
                   finished_at=None)
    SyncRunFactory(**receivables, mode=SyncMode.TARGETED, started_at=ago(minutes=4))
    SyncRunFactory(tenant=tenant, entity=SyncEntity.ACCOUNTS, mode=SyncMode.FULL,
                   started_at=ago(minutes=3))
    ExactRateBudget.objects.create(
        client_id=settings.EXACT_CLIENT_ID, host=exact.api_base_url, division=exact.division,
        daily_limit=5000, daily_remaining=4200, daily_reset_at=ago(hours=-5),
    )
    ExactRateBudget.objects.create(  # another app's budget for the same division
        client_id="some-other-app", host=exact.api_base_url, division=exact.division,
        daily_limit=5000, daily_remaining=1, daily_reset_at=ago(hours=-5),
    )
    ExactRateBudget.objects.create(  # the same division number in another Exact region
        client_id=settings.EXACT_CLIENT_ID, host="https://start.exactonline.de",
        division=exact.division, daily_limit=5000, daily_remaining=7, daily_reset_at=ago(hours=-5),
    )
    event(tenant, "pending", ago(minutes=10))
    event(tenant, "pending", ago(minutes=2))
    event(tenant, "awaiting_retry", ago(minutes=20))
    event(tenant, "given_up", ago(days=3))  # older, but given up: not in the age
    event(tenant, "processed", ago(days=5))
    for state in (AttemptState.NEEDS_ATTENTION, AttemptState.NEEDS_ATTENTION,
                  AttemptState.SUBMITTED, AttemptState.CONFIRMED, AttemptState.RESOLVED):
        CollectionAttemptFactory(tenant=tenant, state=state)
    for state in (BookingState.PENDING, BookingState.GAVE_UP, BookingState.GAVE_UP,
                  BookingState.CONFIRMED):
        BookingFactory(tenant=tenant, state=state)
    run(tenant, kind=RunKind.PREVIEW, state=RunState.COMPLETED, started_at=ago(days=1))
    run(tenant, kind=RunKind.LIVE, state=RunState.RUNNING, started_at=ago(minutes=1))


def seed_b(tenant):
    """Tenant B: Exact needs re-authorisation and never synced, no GoCardless connection."""
    exact = ExactConnectionFactory(tenant=tenant, status=ExactStatus.NEEDS_REAUTH,
                                   paused_until=ago(hours=-2))
    ExactRateBudget.objects.create(  # spent yesterday; the day has rolled over since
        client_id=settings.EXACT_CLIENT_ID, host=exact.api_base_url, division=exact.division,
        daily_limit=5000, daily_remaining=0, daily_reset_at=ago(hours=1),
    )
    SyncRunFactory(tenant=tenant, entity=SyncEntity.RECEIVABLES, mode=SyncMode.FULL,
                   error="ExactAuthError: expired")
    event(tenant, "given_up", ago(days=1))
    CollectionAttemptFactory(tenant=tenant, state=AttemptState.NEEDS_ATTENTION)
    BookingFactory(tenant=tenant, state=BookingState.FAILED)
    run(tenant, kind=RunKind.PREVIEW, state=RunState.RUNNING, started_at=ago(hours=4))
    run(tenant, kind=RunKind.LIVE, state=RunState.FAILED, started_at=ago(hours=3))
    run(tenant, kind=RunKind.LIVE, state=RunState.REFUSED, started_at=ago(hours=2))


def test_values_match_the_seeded_rows_of_two_tenants(client, tenant_a, tenant_b):
    seed_a(tenant_a)
    seed_b(tenant_b)
    samples = scrape(client)

    assert value(samples, "mlc_tenant_active", tenant="alpha") == 1
    # GoCardless events
    events = "mlc_gocardless_events_unprocessed"
    assert value(samples, events, tenant="alpha", state="pending") == 2
    assert value(samples, events, tenant="alpha", state="awaiting_retry") == 1
    assert value(samples, events, tenant="alpha", state="given_up") == 1
    assert value(samples, events, tenant="bravo", state="pending") == 0
    assert value(samples, events, tenant="bravo", state="given_up") == 1
    oldest = "mlc_gocardless_events_oldest_unprocessed_age_seconds"
    assert 20 * 60 <= value(samples, oldest, tenant="alpha") < 25 * 60
    assert value(samples, oldest, tenant="bravo") == 0  # only a given-up event
    # Exact
    status = "mlc_exact_connection_status"
    assert value(samples, status, tenant="alpha", status="connected") == 1
    assert value(samples, status, tenant="alpha", status="needs_reauth") == 0
    assert value(samples, status, tenant="bravo", status="needs_reauth") == 1
    assert value(samples, status, tenant="bravo", status="connected") == 0
    assert value(samples, status, tenant="bravo", status="not_configured") == 0
    assert value(samples, "mlc_exact_connection_paused", tenant="alpha") == 0
    assert value(samples, "mlc_exact_connection_paused", tenant="bravo") == 1
    age = "mlc_exact_receivables_sync_age_seconds"
    assert 30 * 60 <= value(samples, age, tenant="alpha") < 35 * 60
    assert value(samples, age, tenant="bravo") == math.inf  # never a successful sync
    assert value(samples, "mlc_exact_api_daily_calls_remaining", tenant="alpha") == 4200
    assert value(samples, "mlc_exact_api_daily_calls_limit", tenant="alpha") == 5000
    assert value(samples, "mlc_exact_api_daily_calls_remaining", tenant="bravo") == 5000
    # GoCardless connection
    gc_status = "mlc_gocardless_connection_status"
    assert value(samples, gc_status, tenant="alpha", status="needs_reauth") == 1
    assert value(samples, gc_status, tenant="alpha", status="connected") == 0
    assert value(samples, gc_status, tenant="bravo", status="not_configured") == 1
    # collection
    attempts = "mlc_collection_attempts_open"
    assert value(samples, attempts, tenant="alpha", state="needs_attention") == 2
    assert value(samples, attempts, tenant="alpha", state="submitted") == 1
    assert value(samples, attempts, tenant="alpha", state="pending") == 0
    assert value(samples, attempts, tenant="bravo", state="needs_attention") == 1
    assert not any(k[0] == attempts and ("state", "confirmed") in k[1] for k in samples)
    assert value(samples, "mlc_collection_live_run_running", tenant="alpha") == 1
    assert value(samples, "mlc_collection_live_run_running", tenant="bravo") == 0  # a preview
    last = "mlc_collection_last_run_state"
    assert value(samples, last, tenant="alpha", state="running") == 1
    assert value(samples, last, tenant="alpha", state="completed") == 0
    assert value(samples, last, tenant="bravo", state="refused") == 1
    assert value(samples, last, tenant="bravo", state="failed") == 0
    started = "mlc_collection_last_run_started_timestamp_seconds"
    assert abs(value(samples, started, tenant="bravo") - ago(hours=2).timestamp()) < 60
    # bookings
    bookings = "mlc_bookings_open"
    assert value(samples, bookings, tenant="alpha", state="pending") == 1
    assert value(samples, bookings, tenant="alpha", state="gave_up") == 2
    assert value(samples, bookings, tenant="alpha", state="failed") == 0
    assert value(samples, bookings, tenant="bravo", state="failed") == 1
    assert not any(k[0] == bookings and ("state", "confirmed") in k[1] for k in samples)


def test_webhook_deliveries_of_the_last_hour(client, tenant_a):
    WebhookDeliveryFactory(tenant=tenant_a)
    WebhookDeliveryFactory(tenant=tenant_a)
    WebhookDeliveryFactory(tenant=None, endpoint=WebhookEndpoint.PARTNER, valid=False)
    old = WebhookDeliveryFactory(tenant=tenant_a)
    WebhookDelivery.objects.filter(pk=old.pk).update(received_at=ago(minutes=61))
    ExactWebhookDeliveryFactory(tenant=tenant_a)
    ExactWebhookDeliveryFactory(tenant=None, valid=False, response_status=404)
    ExactWebhookDeliveryFactory(tenant=None, valid=False, response_status=404)
    ExactWebhookDeliveryFactory(tenant=tenant_a, received_at=ago(hours=2))
    assert ExactWebhookDelivery.objects.count() == 4
    samples = scrape(client)
    name = "mlc_webhook_deliveries_last_hour"

    def deliveries(provider, endpoint, valid):
        return value(samples, name, provider=provider, endpoint=endpoint, valid=valid)

    assert deliveries("gocardless", "tenant", "true") == 2
    assert deliveries("gocardless", "tenant", "false") == 0
    assert deliveries("gocardless", "partner", "false") == 1
    assert deliveries("gocardless", "partner", "true") == 0
    assert deliveries("exact", "tenant", "true") == 1
    assert deliveries("exact", "tenant", "false") == 2


def test_django_q_queue_and_failed_tasks(client, db):
    now = timezone.now()
    for n in range(3):
        OrmQ.objects.create(key=settings.Q_CLUSTER["name"], payload=f"task-{n}", lock=now)
    for n, success in enumerate((False, False, True)):
        Task.objects.create(id=uuid.uuid4().hex, name=f"t{n}", func="x.y", started=now,
                            stopped=now, success=success)
    samples = scrape(client)
    assert value(samples, "mlc_django_q_queued_tasks") == 3
    assert value(samples, "mlc_django_q_failed_tasks") == 2
    assert value(samples, "mlc_django_q_broker_up") == 1


def test_broker_down_is_reported_not_an_error(client, monkeypatch, db):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    samples = scrape(client)
    assert value(samples, "mlc_django_q_broker_up") == 0
    assert not any(name == "mlc_django_q_queued_tasks" for name, _ in samples)


def test_labels_of_one_tenant_never_carry_another_tenants_rows(client, tenant_a, tenant_b):
    seed_a(tenant_a)  # everything belongs to A; B has nothing at all
    samples = scrape(client)
    tenants = {dict(labels).get("tenant") for _, labels in samples} - {None}
    assert tenants == {"alpha", "bravo"}
    bravo = tenant_samples(samples, "bravo")
    not_configured = {
        ("mlc_exact_connection_status", (("status", "not_configured"), ("tenant", "bravo"))),
        ("mlc_gocardless_connection_status", (("status", "not_configured"), ("tenant", "bravo"))),
        ("mlc_tenant_active", (("tenant", "bravo"),)),
    }
    assert {k: v for k, v in bravo.items() if v} == dict.fromkeys(not_configured, 1)
    # B has no Exact connection, runs or budget: those series are absent, not zero.
    names = {name for name, _ in bravo}
    for absent in ("mlc_exact_receivables_sync_age_seconds", "mlc_exact_connection_paused",
                   "mlc_exact_api_daily_calls_remaining", "mlc_collection_last_run_state",
                   "mlc_collection_last_run_started_timestamp_seconds"):
        assert absent not in names
    assert sum(tenant_samples(samples, "alpha").values()) > 10


def test_inactive_tenant_is_reported_and_marked(client, tenant_a):
    stopped = TenantFactory(slug="charlie", is_active=False)
    GoCardlessEventFactory(tenant=stopped)  # not processed while the tenant is inactive
    samples = scrape(client)
    assert value(samples, "mlc_tenant_active", tenant="alpha") == 1
    assert value(samples, "mlc_tenant_active", tenant="charlie") == 0
    assert value(samples, "mlc_gocardless_events_unprocessed", tenant="charlie",
                 state="pending") == 1


def test_token_required_when_set(client, settings, tenant_a):
    settings.METRICS_TOKEN = "s3cret-token"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"},
                    {"HTTP_AUTHORIZATION": "Basic s3cret-token"},
                    {"HTTP_AUTHORIZATION": "Bearer s3cret-tokenX"},
                    {"HTTP_AUTHORIZATION": "Bearer"},
                    {"HTTP_AUTHORIZATION": "Bearer s3cret-tökén"}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"alpha" not in response.content
    samples = scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert value(samples, "mlc_tenant_active", tenant="alpha") == 1


def test_no_token_asked_when_unset(client, settings, tenant_a):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


def test_only_get(client):
    assert client.post("/metrics").status_code == 405


def _queries_of_a_scrape(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
    return len(queries)


def test_queries_do_not_grow_with_the_number_of_tenants(client):
    def seed(n):
        for _ in range(n):
            tenant = TenantFactory()
            seed_a(tenant)
            seed_b(TenantFactory())

    seed(1)  # 2 tenants
    few = _queries_of_a_scrape(client)
    seed(9)  # 20 tenants
    many = _queries_of_a_scrape(client)
    assert many == few
    assert few <= 10


def test_503_with_one_line_when_the_database_fails(client, monkeypatch, caplog, tenant_a):
    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "db" failed: password=hunter2')

    monkeypatch.setattr(connection, "cursor", refuse)
    with caplog.at_level(logging.ERROR, logger="config.metrics"):
        response = client.get("/metrics")
    assert response.status_code == 503
    assert response.content == b"database unavailable\n"
    assert "OperationalError" in caplog.text
    assert "hunter2" not in caplog.text
