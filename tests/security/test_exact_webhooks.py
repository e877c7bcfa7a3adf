"""Exact webhook intake under hostile input (per-company ``/webhooks/exact/<uuid>/`` and the
app-wide ``/webhooks/exact/``): invalid deliveries are stored as metadata only, storage per
company and hour is capped, old deliveries are pruned, and signed but unusable payloads are
a 4xx — never a 5xx, never processed."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from exact.models import ExactWebhookDelivery
from exact.schedules import exact_schedules_ensure
from exact.tasks import exact_deliveries_prune_task
from exact.webhooks import KEPT_BODY_BYTES, webhook_signature
from tests.exact.conftest import connect
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
SECRET = "sim-webhook-secret"


@pytest.fixture
def connection(exact_simulator, tenant_a, settings):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    exact_simulator.seed_division(division=DIVISION)
    return connect(tenant_a, exact_simulator)


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *args: calls.append(args) or "task-1")
    return calls


def signed(content: bytes) -> bytes:
    return (b'{"Content":' + content + b',"HashCode":"'
            + webhook_signature(content, secret=SECRET).encode() + b'"}')


def content(**fields) -> bytes:
    base = {"Topic": "Accounts", "Division": DIVISION, "Action": "Update",
            "Key": "19cee073-095e-46d1-8d2d-f3fc97ba5bc1",
            "EventCreatedOn": "2026-01-06T16:26:08.587"}
    base.update(fields)
    return json.dumps(base, separators=(",", ":")).encode()


def endpoints(connection):
    return [f"/webhooks/exact/{connection.tenant.uuid}/", "/webhooks/exact/"]


def post(client, url, body, **extra):
    return client.post(url, data=body, content_type="application/json", **extra)


# --- metadata only ---------------------------------------------------------------------------


def test_an_invalid_delivery_keeps_metadata_and_at_most_4_kib(client, connection, queued):
    body = os.urandom(1024 * 1024)
    resp = post(client, "/webhooks/exact/", body, REMOTE_ADDR="198.51.100.9",
                HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert resp.status_code == 400
    row = ExactWebhookDelivery.objects.get()
    assert len(bytes(row.body)) == KEPT_BODY_BYTES and bytes(row.body) == body[:KEPT_BODY_BYTES]
    assert row.size == len(body) and row.body_truncated
    assert row.body_sha256 == hashlib.sha256(body).hexdigest()
    assert row.source_address == "203.0.113.5"  # our one trusted proxy's view (settings)
    assert row.received_at and row.response_status == 400 and not row.valid
    assert row.stored_bytes < 8 * 1024
    assert queued == []


@pytest.mark.parametrize(
    ("declared", "status"),
    # a length Django cannot read is an empty body to it: the validation POST's 200
    [("99999999999999", 413), ("-5", 200), ("abc", 200), ("1e3", 200)],
)
def test_any_declared_length_is_answered_never_a_5xx(
    client, connection, queued, declared, status
):
    for url in endpoints(connection):
        resp = post(client, url, b'{"Content":{},"HashCode":""}', CONTENT_LENGTH=declared)
        assert resp.status_code == status, (declared, resp.status_code)
    assert queued == [] and not ExactWebhookDelivery.objects.filter(valid=True).exists()
    if status == 413:
        assert set(ExactWebhookDelivery.objects.values_list("size", flat=True)) == {2**31 - 1}


def test_a_signed_event_is_kept_whole_and_a_replay_as_metadata(
    client, connection, queued, django_capture_on_commit_callbacks
):
    body = signed(content(Description="x" * 6000))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, endpoints(connection)[0], body).status_code == 200
        assert post(client, endpoints(connection)[0], body).json() == {"status": "duplicate"}
    first, replay = ExactWebhookDelivery.objects.order_by("pk")
    assert bytes(first.body) == body and not first.body_truncated
    assert len(bytes(replay.body)) == KEPT_BODY_BYTES and replay.duplicate
    assert len(queued) == 1


# --- the hourly cap ----------------------------------------------------------------------------


def test_beyond_the_hourly_cap_junk_is_429_and_not_stored(
    client, connection, queued, settings, caplog, django_capture_on_commit_callbacks
):
    settings.EXACT_DELIVERY_MAX_BYTES_PER_HOUR = 40 * 1024
    url = endpoints(connection)[0]
    statuses = [post(client, url, os.urandom(8192)).status_code for _ in range(20)]
    assert statuses[:5] == [400] * 5 and statuses[-1] == 429
    stored = ExactWebhookDelivery.objects.filter(tenant=connection.tenant)
    assert sum(stored.values_list("stored_bytes", flat=True)) <= 40 * 1024
    assert any("hourly storage cap" in r.getMessage() for r in caplog.records)
    # a new signed event still gets through: only Exact can make one
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, url, signed(content())).status_code == 200
        assert post(client, url, signed(content())).status_code == 429  # its replay does not
    assert len(queued) == 1
    # another company's budget is its own; the junk bucket without a company too
    assert post(client, "/webhooks/exact/", b"junk").status_code == 400
    # an hour later the cap is free again
    stored.update(received_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert post(client, url, b"junk").status_code == 400


# --- retention ----------------------------------------------------------------------------------


def test_old_deliveries_are_pruned_by_an_installation_wide_daily_job(
    client, connection, settings
):
    settings.EXACT_DELIVERY_RETENTION_DAYS = 7
    for _ in range(3):
        post(client, "/webhooks/exact/", b"junk")
    old = list(ExactWebhookDelivery.objects.values_list("pk", flat=True)[:2])
    ExactWebhookDelivery.objects.filter(pk__in=old).update(
        received_at=timezone.now() - timedelta(days=8)
    )
    assert exact_deliveries_prune_task() == 2
    assert ExactWebhookDelivery.objects.count() == 1
    exact_schedules_ensure()
    job = Schedule.objects.get(name="exact.deliveries_prune")
    assert (job.func, job.schedule_type) == ("exact.tasks.exact_deliveries_prune_task", "D")


# --- signed but unusable -------------------------------------------------------------------------

DEEP = b"[" * 10_000 + b"]" * 10_000
UNUSABLE = {
    "division-1e999": content().replace(b'"Division":123456', b'"Division":1e999'),
    "division-negative": content(Division=-5),
    "division-2**40": content(Division=2**40),
    "division-zero": content(Division=0),
    "division-float": content(Division=123456.0),
    "division-string": content(Division="123456"),
    "division-bool": content(Division=True),
    "division-huge-literal": content().replace(b'"Division":123456', b'"Division":' + b"9" * 5000),
    "nul-in-topic": content(Topic="Acc\u0000ounts"),
    "nul-in-key": content(Key="\u0000"),
    "lone-surrogate-key": content().replace(b'"Key":"19cee073', b'"Key":"\\ud800'),
    "lone-surrogate-topic": content().replace(b'"Topic":"Accounts"', b'"Topic":"\\udfff"'),
    "deep-json": b'{"Topic":' + DEEP + b"}",
    "deep-content": DEEP,
    "topic-object": content(Topic={"a": 1}),
    "key-list": content(Key=[1, 2]),
    "action-number": content(Action=7),
    "created-on-object": content(EventCreatedOn={"x": 1}),
    "endpoint-number": content(ExactOnlineEndpoint=5),
    "key-too-long": content(Key="k" * 65),
    "content-array": b"[1,2,3]",
    "content-string": b'"Accounts"',
    "content-null": b"null",
    "invalid-utf8": content().replace(b"Accounts", b"Acc\xff\xfeounts"),
    "missing-key": content(Key=""),
}


@pytest.mark.parametrize("payload", list(UNUSABLE.values()), ids=list(UNUSABLE))
def test_signed_but_unusable_payloads_are_4xx_never_processed(
    client, connection, queued, payload, django_capture_on_commit_callbacks
):
    for url in endpoints(connection):
        with django_capture_on_commit_callbacks(execute=True):
            resp = post(client, url, signed(payload))
        assert resp.status_code == 400, (url, resp.content)
    assert queued == []
    rows = ExactWebhookDelivery.objects.all()
    assert rows.count() == 2 and not rows.filter(event_key__isnull=False).exists()


def test_the_delivery_admin_renders_whatever_was_stored(client, connection, superuser):
    for payload in UNUSABLE.values():
        post(client, "/webhooks/exact/", signed(payload), HTTP_USER_AGENT="\x1b[31mred\x00")
    post(client, "/webhooks/exact/", os.urandom(5000))
    client.force_login(superuser)
    changelist = reverse("admin:exact_exactwebhookdelivery_changelist")
    assert client.get(changelist).status_code == 200
    for pk in ExactWebhookDelivery.objects.values_list("pk", flat=True):
        page = client.get(reverse("admin:exact_exactwebhookdelivery_change", args=[pk]))
        assert page.status_code == 200 and b"\x00" not in page.content
