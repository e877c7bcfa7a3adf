"""What the webhook intake costs us per delivery, whoever sends it (issue 14):

- a refused delivery is logged as metadata only (time, size, status, source address, SHA-256,
  at most the first 4 KiB, a few headers);
- what is stored per tenant per hour is capped, signed and unsigned apart; beyond: 429;
- signed but unusable envelopes are 400; unusable events are quarantined (kept with their
  reason, never processed, visible in the admin), the rest of the batch goes on;
- a wrong SALT_KEY is a logged 503; deliveries are pruned after the retention period;
- one unreadable event never stalls processing or the sweeper."""

import hashlib
import json
import logging
from datetime import timedelta

import pytest
from django.db import DataError
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from core.audit import Actor
from gocardless import errors, event_processing
from gocardless.events_replay import ReplayError, events_replay_select, events_reprocess
from gocardless.events_sweep import events_retry_due
from gocardless.intake_budget import budget_take, current_hour
from gocardless.models import EventOutcome, GoCardlessEvent, IntakeBudget, WebhookDelivery
from gocardless.retention import deliveries_prune
from tests.factories import GoCardlessConnectionFactory, TenantFactory
from tests.gocardless.conftest import body_of, fixture_event, post_webhook, sign, webhook_url
from tests.gocardless.factories import GoCardlessEventFactory, WebhookDeliveryFactory

pytestmark = pytest.mark.django_db

SECRET = "intake-secret"
PARTNER = "partner-secret"


@pytest.fixture
def connection(db):
    return GoCardlessConnectionFactory(webhook_secret=SECRET, organisation_id="ORINTAKE")


def _post(client, connection, body: bytes, signed: bool = True, **extra):
    signature = sign(body, SECRET) if signed else "0" * 64
    return post_webhook(client, webhook_url(connection.tenant), body, signature, **extra)


def _good(n=1, **overrides):
    return fixture_event("payments__confirmed", **{"id": f"EVGOOD{n}",
                                                   "links": {"payment": f"PMGOOD{n}"},
                                                   **overrides})


class GoneClient:
    """GoCardless answering 404 for everything (processing without the network)."""

    def resource_get(self, resource_type, resource_id):
        raise errors.NotFoundError("gone")


def _gone(_connection):
    return GoneClient()


# --- refused deliveries: metadata only ----------------------------------------------------


def test_a_refused_delivery_keeps_metadata_and_4_kib(client, connection, no_queue):
    body = b'{"events":[' + b"x" * 10_000 + b"]}"
    response = _post(client, connection, body, signed=False, REMOTE_ADDR="203.0.113.5",
                     HTTP_X_SOMETHING="y" * 5000, HTTP_COOKIE="sessionid=secret")
    assert response.status_code == 498
    delivery = WebhookDelivery.objects.get()
    assert (delivery.valid, delivery.response_status) == (False, 498)
    assert bytes(delivery.body) == body[:4096]
    assert delivery.body_size == len(body)
    assert delivery.body_sha256 == hashlib.sha256(body).hexdigest()
    assert delivery.source_address == "203.0.113.5"
    assert set(delivery.headers) <= {"CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_USER_AGENT",
                                     "HTTP_ORIGIN", "HTTP_WEBHOOK_SIGNATURE"}
    assert not GoCardlessEvent.objects.exists() and no_queue == []


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_the_source_address_is_the_one_our_proxy_saw(client, connection, no_queue):
    _post(client, connection, b"{}", signed=False, REMOTE_ADDR="10.0.0.2",
          HTTP_X_FORWARDED_FOR="192.0.2.66, 198.51.100.2")
    assert WebhookDelivery.objects.get().source_address == "198.51.100.2"


def test_an_unknown_tenant_is_404_without_reading_the_body(client, no_queue):
    response = post_webhook(client, f"/webhooks/gocardless/{TenantFactory().uuid}/",
                            b"x" * 5000, "0" * 64)
    assert response.status_code == 404
    delivery = WebhookDelivery.objects.get()
    assert (delivery.tenant, bytes(delivery.body), delivery.body_sha256) == (None, b"", "")
    assert delivery.body_size == 5000


@override_settings(WEBHOOK_MAX_BODY_BYTES=100)
def test_too_large_is_413_with_the_claimed_size(client, connection, no_queue):
    assert _post(client, connection, b"y" * 500).status_code == 413
    delivery = WebhookDelivery.objects.get()
    assert (delivery.response_status, delivery.body_size, bytes(delivery.body)) == (413, 500, b"")


# --- signed but unusable: the envelope -------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"events": [ not json', id="not-json"),
        pytest.param(b"[" * 10_000 + b"]" * 10_000, id="10000-deep"),
        pytest.param(b'{"events": ' + b"[" * 40 + b"]" * 40 + b"}", id="40-deep"),
        pytest.param(b'{"events": {"id": "EV1"}}', id="events-not-a-list"),
        pytest.param(b'{"events": "EV1"}', id="events-a-string"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(b'{"events": [' + b"1" * 5000 + b"]}", id="5000-digit-number"),
        pytest.param(b'{"events": ["\xff\xfe"]}', id="invalid-utf-8"),
        pytest.param(json.dumps({"events": [{}] * 1001}).encode(), id="1001-events"),
        pytest.param(b"", id="empty"),
    ],
)
def test_signed_but_unusable_envelopes_are_400(client, connection, no_queue, body):
    response = _post(client, connection, body)
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.valid and delivery.response_status == 400
    assert delivery.error.startswith("malformed:") and len(bytes(delivery.body)) <= 4096
    assert not GoCardlessEvent.objects.exists() and no_queue == []


# --- signed but unusable: one event ------------------------------------------------------


QUARANTINED = [
    pytest.param({"links": "PM1"}, "links is not an object", id="links-not-an-object"),
    pytest.param({"links": {"payment": 42}}, "links.payment", id="link-not-a-string"),
    pytest.param({"id": 12345}, "event id", id="id-not-a-string"),
    pytest.param({"id": "EV\u0000NUL"}, "event id", id="id-with-nul"),
    pytest.param({"resource_type": None}, "resource_type", id="no-resource-type"),
    pytest.param({"details": ["x"]}, "details is not an object", id="details-a-list"),
    pytest.param({"created_at": "0001-01-01T00:00:00+01:00"}, "created_at", id="year-1"),
    pytest.param({"created_at": "9999-12-31T23:59:59-14:00"}, "created_at", id="year-9999"),
    pytest.param({"created_at": "2024-02-30T00:00:00Z"}, "created_at", id="no-such-day"),
    pytest.param({"created_at": 1700000000}, "created_at", id="created-at-a-number"),
    pytest.param({"created_at": "2024-03-01T10:00:00"}, "created_at", id="no-time-zone"),
    pytest.param({"details": {"description": "a\u0000b"}}, "NUL", id="nul-in-a-string"),
    pytest.param({"details": {"description": "\ud800"}}, "surrogate", id="lone-surrogate"),
    pytest.param({"metadata": {"\u0000": "key"}}, "NUL", id="nul-in-a-key"),
    pytest.param({"details": {"n": 10**30}}, "out of range", id="huge-integer"),
]


@pytest.mark.parametrize(("change", "reason"), QUARANTINED)
def test_an_unusable_event_is_quarantined_and_its_batch_goes_on(
    client, connection, no_queue, change, reason
):
    bad = {**fixture_event("payments__confirmed", id="EVBAD1", links={"payment": "PMBAD1"}),
           **change}
    body = body_of(_good(1), bad, _good(2))
    for _ in range(2):  # a redelivery stores nothing new
        assert _post(client, connection, body).status_code == 204
    quarantined = GoCardlessEvent.objects.get(outcome=EventOutcome.QUARANTINED)
    assert reason in quarantined.error and quarantined.error.startswith("quarantined:")
    assert quarantined.processed_at is not None and quarantined.resource_id == ""
    json.dumps(quarantined.raw)  # stored as JSON any database takes back
    good = set(GoCardlessEvent.objects.filter(outcome="").values_list("pk", flat=True))
    assert len(good) == 2 and no_queue[0] == sorted(good)  # queued: only the usable ones
    assert quarantined.pk not in no_queue[0]
    assert GoCardlessEvent.objects.count() == 3


def test_non_finite_numbers_are_quarantined(client, connection, no_queue):
    bad = fixture_event("payments__confirmed", id="EVBAD1", links={"payment": "PMBAD1"})
    text = json.dumps({"events": [bad]}).replace('"metadata": {}', '"metadata": {"x": NaN, '
                                                '"y": 1e400, "z": -Infinity}')
    assert "NaN" in text
    assert _post(client, connection, text.encode()).status_code == 204
    event = GoCardlessEvent.objects.get()
    assert event.outcome == EventOutcome.QUARANTINED and "finite" in event.error
    assert event.raw["metadata"] == {"x": "nan", "y": "inf", "z": "-inf"}


def test_an_event_that_is_not_an_object_is_quarantined_under_a_digest(client, connection,
                                                                      no_queue):
    body = json.dumps({"events": [17, [1, 2], _good()]}).encode()
    assert _post(client, connection, body).status_code == 204
    assert _post(client, connection, body).status_code == 204  # same digests: nothing new
    ids = sorted(GoCardlessEvent.objects.filter(outcome=EventOutcome.QUARANTINED)
                 .values_list("event_id", flat=True))
    assert len(ids) == 2 and all(i.startswith("~") and len(i) == 40 for i in ids)


def test_quarantined_events_are_shown_and_never_replayed(client, connection, no_queue,
                                                         superuser):
    bad = {**fixture_event("payments__confirmed", id="EVBAD1"),
           "created_at": "0001-01-01T00:00:00+01:00", "details": {"d": "\ud800\u0000"}}
    _post(client, connection, body_of(bad))
    event = GoCardlessEvent.objects.get()
    client.force_login(superuser)
    changelist = reverse("admin:gocardless_gocardlessevent_changelist")
    for query in ({}, {"processing": "quarantined"}, {"processing": "processed"}):
        assert client.get(changelist, query).status_code == 200
    listed = client.get(changelist, {"processing": "quarantined"}).context["cl"].result_list
    assert [e.pk for e in listed] == [event.pk]
    page = client.get(reverse("admin:gocardless_gocardlessevent_change", args=[event.pk]))
    assert page.status_code == 200 and b"quarantined" in page.content

    with pytest.raises(ReplayError, match="quarantined"):
        events_replay_select(event_ids=["EVBAD1"])
    assert events_replay_select(event_type="payments") == []
    counts = events_reprocess(event_pks=[event.pk], actor=Actor.system("test"))
    assert counts == {"quarantined": 1}
    event.refresh_from_db()
    assert event.outcome == EventOutcome.QUARANTINED and event.attempts == 0


@override_settings(GOCARDLESS_WEBHOOK_SECRET=PARTNER)
def test_the_partner_endpoint_quarantines_and_never_routes_by_a_malformed_link(
    client, connection, no_queue
):
    routed = _good(1, links={"payment": "PM1", "organisation": "ORINTAKE"})
    bad = _good(2, links={"payment": 7, "organisation": "ORINTAKE"})
    nowhere = _good(3, links=["ORINTAKE"])
    body = body_of(routed, bad, nowhere)
    response = post_webhook(client, "/webhooks/gocardless/", body, sign(body, PARTNER))
    assert response.status_code == 204
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event_count, delivery.unrouted_count) == (3, 1)
    stored = dict(GoCardlessEvent.objects.values_list("event_id", "outcome"))
    assert stored == {"EVGOOD1": "", "EVGOOD2": EventOutcome.QUARANTINED}


# --- hourly budgets --------------------------------------------------------------------------


def test_unsigned_junk_beyond_the_hourly_budget_is_429_and_stored_no_more(
    client, connection, no_queue, settings, caplog
):
    settings.GOCARDLESS_UNSIGNED_DELIVERY_MAX_BYTES_PER_HOUR = 3 * 4096
    junk = b"j" * 20_000
    with caplog.at_level(logging.WARNING, logger="gocardless.intake_budget"):
        answers = [_post(client, connection, junk, signed=False) for _ in range(10)]
    statuses = [a.status_code for a in answers]
    assert statuses[:2] == [498, 498] and set(statuses[2:]) == {429}
    assert WebhookDelivery.objects.count() == 2
    assert 0 < int(answers[-1]["Retry-After"]) <= 3600
    # Logged at the 1st, 10th, 100th… refusal of the hour: a flood is not a log flood.
    assert caplog.text.count("over its hourly budget") == 1
    # GoCardless's genuine deliveries have a budget of their own.
    assert _post(client, connection, body_of(_good())).status_code == 204


def test_signed_deliveries_beyond_the_hourly_budget_are_429_and_retried_later(
    client, connection, no_queue, settings
):
    body = body_of(_good())
    settings.GOCARDLESS_DELIVERY_MAX_BYTES_PER_HOUR = 2 * (len(body) + 600)
    statuses = [_post(client, connection, body).status_code for _ in range(4)]
    assert statuses[:2] == [204, 204] and statuses[2:] == [429, 429]
    assert WebhookDelivery.objects.count() == 2
    # Another tenant is not affected.
    other = GoCardlessConnectionFactory(webhook_secret=SECRET)
    assert _post(client, other, body).status_code == 204


def test_the_budget_is_per_hour(connection):
    assert budget_take(key="k", amount=6, limit=10, hour=1)
    assert not budget_take(key="k", amount=6, limit=10, hour=1)
    assert budget_take(key="k", amount=6, limit=10, hour=2)
    assert not budget_take(key="k", amount=11, limit=10, hour=3)
    assert IntakeBudget.objects.get(key="k", hour=1).refused == 1


# --- keys ----------------------------------------------------------------------------------


def test_a_wrong_salt_key_is_a_logged_503(client, connection, no_queue, caplog):
    body = body_of(_good())
    with override_settings(SALT_KEY=["another-salt"]), caplog.at_level(logging.ERROR):
        response = _post(client, connection, body)
    assert response.status_code == 503
    assert "cannot be decrypted" in caplog.text and "SALT_KEY" in caplog.text
    delivery = WebhookDelivery.objects.get()
    assert delivery.response_status == 503 and not delivery.valid
    assert not GoCardlessEvent.objects.exists()


@override_settings(GOCARDLESS_WEBHOOK_SECRET=PARTNER)
def test_the_partner_endpoint_routes_without_decrypting_secrets(client, connection, no_queue):
    body = body_of(_good(links={"payment": "PM1", "organisation": "ORINTAKE"}))
    with override_settings(SALT_KEY=["another-salt"]):
        response = post_webhook(client, "/webhooks/gocardless/", body, sign(body, PARTNER))
    assert response.status_code == 204 and GoCardlessEvent.objects.count() == 1


# --- retention -----------------------------------------------------------------------------


def test_old_deliveries_are_pruned_and_their_events_kept(connection, settings):
    settings.GOCARDLESS_DELIVERY_RETENTION_DAYS = 7
    old = WebhookDeliveryFactory(tenant=connection.tenant)
    recent = WebhookDeliveryFactory(tenant=connection.tenant)
    WebhookDelivery.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - timedelta(days=8))
    event = GoCardlessEventFactory(tenant=connection.tenant, delivery=old)
    IntakeBudget.objects.create(key="old", hour=current_hour() - 72, used=1)
    IntakeBudget.objects.create(key="new", hour=current_hour(), used=1)

    assert deliveries_prune(batch=1) == {"deliveries": 1, "budgets": 1}
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent.pk]
    event.refresh_from_db()
    assert event.delivery is None
    assert list(IntakeBudget.objects.values_list("key", flat=True)) == ["new"]


def test_the_retention_job_is_scheduled():
    from gocardless.schedules import SCHEDULES
    from gocardless.tasks import deliveries_prune_task

    assert SCHEDULES["gocardless.deliveries_prune"] == (
        "gocardless.tasks.deliveries_prune_task", 60)
    assert deliveries_prune_task() == {"deliveries": 0, "budgets": 0}


# --- one bad event never stalls the others ------------------------------------------------


def test_a_chunk_that_raises_is_processed_one_by_one(connection, monkeypatch):
    bad = GoCardlessEventFactory(tenant=connection.tenant)
    good = GoCardlessEventFactory(tenant=connection.tenant)
    other = GoCardlessEventFactory(tenant=GoCardlessConnectionFactory().tenant)
    real = event_processing._process_chunk

    def unreadable(pks, **kwargs):
        if bad.pk in pks:
            raise DataError("timestamp too small")
        return real(pks, **kwargs)

    monkeypatch.setattr(event_processing, "_process_chunk", unreadable)
    counts = events_retry_due(now=timezone.now() + timedelta(hours=1), client_factory=_gone)
    assert counts == {"gone": 2, "failed": 1}
    bad.refresh_from_db()
    assert bad.outcome == EventOutcome.QUARANTINED and "cannot be read" in bad.error
    for event in (good, other):
        event.refresh_from_db()
        assert event.outcome == EventOutcome.GONE


def test_an_unexpected_error_is_a_failed_attempt_with_backoff(connection, monkeypatch):
    event = GoCardlessEventFactory(tenant=connection.tenant)

    def broken(pks, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(event_processing, "_process_chunk", broken)
    assert event_processing.events_process(event_pks=[event.pk]) == {"failed": 1}
    event.refresh_from_db()
    assert event.attempts == 1 and event.next_attempt_at and "a bug" in event.error
    assert event.processed_at is None  # the sweeper tries again later


@pytest.mark.postgres
def test_an_event_postgresql_cannot_hand_back_no_longer_stalls_the_sweeper(
    client, connection, superuser
):
    """What happened: an event stored with created_at 0001-01-01T00:00:00+01:00 (year 0 in
    UTC) was accepted by PostgreSQL but raised DataError whenever it was read: the
    installation-wide sweeper stopped for every tenant, and the admin list failed."""
    from django.db import connection as db

    stuck = GoCardlessEventFactory(tenant=connection.tenant, event_id="EVYEAR0")
    other = GoCardlessEventFactory(tenant=GoCardlessConnectionFactory().tenant)
    with db.cursor() as cursor:
        cursor.execute("UPDATE gocardless_gocardlessevent SET created_at = "
                       "'0001-01-01T00:00:00+01:00' WHERE id = %s", [stuck.pk])
    with pytest.raises(DataError):
        list(GoCardlessEvent.objects.filter(pk=stuck.pk))

    counts = events_retry_due(now=timezone.now() + timedelta(hours=1), client_factory=_gone)
    assert counts.get("gone") == 1
    other.refresh_from_db()
    assert other.outcome == EventOutcome.GONE
    stuck.refresh_from_db()  # readable again
    assert stuck.outcome == EventOutcome.QUARANTINED and stuck.created_at is None
    client.force_login(superuser)
    assert client.get(reverse("admin:gocardless_gocardlessevent_changelist")).status_code == 200


@pytest.mark.postgres
def test_migration_0005_clears_unreadable_timestamps_in_the_database(connection):
    import importlib

    from django.apps import apps
    from django.db import connection as db

    migration = importlib.import_module("gocardless.migrations.0005_intake_log_and_quarantine")
    waiting = GoCardlessEventFactory(tenant=connection.tenant)
    done = GoCardlessEventFactory(tenant=connection.tenant, processed_at=timezone.now(),
                                  outcome=EventOutcome.APPLIED)
    fine = GoCardlessEventFactory(tenant=connection.tenant, created_at=timezone.now())
    with db.cursor() as cursor:
        cursor.execute("UPDATE gocardless_gocardlessevent SET created_at = "
                       "'9999-12-31T23:59:59-14:00' WHERE id IN (%s, %s)", [waiting.pk, done.pk])
    migration.quarantine_unreadable_timestamps(apps, db.schema_editor())
    waiting.refresh_from_db()
    done.refresh_from_db()
    fine.refresh_from_db()
    assert (waiting.outcome, waiting.created_at) == (EventOutcome.QUARANTINED, None)
    assert (done.outcome, done.created_at) == (EventOutcome.APPLIED, None)
    assert fine.created_at is not None and fine.outcome == ""
