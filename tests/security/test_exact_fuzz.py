"""Fuzzing both Exact webhook endpoints with hostile payloads, signed and unsigned.

Runs on PostgreSQL when DATABASE_URL points there (the strict database: NUL bytes, 32-bit
columns, unpaired surrogates are errors there, not silently stored), on SQLite otherwise.
Deterministic (``derandomize``) and bounded (well under a minute).

What must hold for every payload: no 5xx; nothing unsigned is ever stored as valid or
queued; the delivery admin still renders what was stored. And 150 random 1 MiB bodies grow
the database by less than 5 MiB.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from exact.models import ExactWebhookDelivery
from exact.webhooks import webhook_signature
from tests.exact.conftest import connect
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
SECRET = "sim-webhook-secret"
EXAMPLES = 1000  # per test: 1,000 signed + 1,000 unsigned payloads, each to both endpoints
FUZZ = hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)


@pytest.fixture
def connection(exact_simulator, tenant_a, settings):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    settings.EXACT_DELIVERY_MAX_BYTES_PER_HOUR = 64 * 1024 * 1024  # the cap has its own test
    exact_simulator.seed_division(division=DIVISION)
    return connect(tenant_a, exact_simulator)


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *args: calls.append(args) or "task")
    return calls


def sign(content: bytes, secret: str = SECRET) -> bytes:
    return (b'{"Content":' + content + b',"HashCode":"'
            + webhook_signature(content, secret=secret).encode() + b'"}')


# --- strategies --------------------------------------------------------------------------------
nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e", "'; DROP TABLE x;--",
                     "Accounts", "SalesInvoices", "Update", "Delete", "k" * 65, "é" * 70]),
)
nasty_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -5, 1, DIVISION, 2**31 - 1, 2**31, 2**40, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
leaf = st.one_of(st.none(), nasty_text, nasty_number)
json_value = st.recursive(
    leaf,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
field_value = st.one_of(json_value, nasty_text, nasty_number)
event_object = st.fixed_dictionaries(
    {},
    optional={
        "Topic": st.one_of(st.sampled_from(["Accounts", "SalesInvoices", "Items"]),
                           field_value),
        "Division": st.one_of(st.just(DIVISION), field_value),
        "Action": st.one_of(st.sampled_from(["Create", "Update", "Delete"]), field_value),
        "Key": st.one_of(st.uuids().map(str), field_value),
        "EventCreatedOn": st.one_of(st.just("2026-01-06T16:26:08.587"), field_value),
        "ExactOnlineEndpoint": st.one_of(
            st.just("https://start.exactonline.nl/api/v1/123456/crm/Accounts"), field_value
        ),
        "ClientId": field_value,
    },
)

VALID_EVENT = {
    "Topic": "Accounts", "ClientId": "sim-client-id", "Division": DIVISION, "Action": "Update",
    "Key": "19cee073-095e-46d1-8d2d-f3fc97ba5bc1",
    "ExactOnlineEndpoint": "https://start.exactonline.nl/api/v1/123456/crm/Accounts",
    "EventCreatedOn": "2026-01-06T16:26:08.587",
}


def _one_field_changed(name: str, value, drop: bool, key: str) -> dict:
    event = {**VALID_EVENT, "Key": key}
    if drop:
        event.pop(name)
    else:
        event[name] = value
    return event


# A real event with one field hostile (or missing), or a real one (accepted, then replayed).
near_valid_event = st.one_of(
    st.builds(_one_field_changed, st.sampled_from(sorted(VALID_EVENT)), field_value,
              st.booleans(), st.uuids().map(str)),
    st.builds(lambda key, topic: {**VALID_EVENT, "Key": key, "Topic": topic},
              st.sampled_from(["a", "b", "c"]), st.sampled_from(["Accounts", "Items"])),
)


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _dumps(value, ascii_only: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    return text.encode("utf-8", errors="surrogatepass")


content_bytes = st.one_of(
    st.builds(_dumps, near_valid_event, st.booleans()),
    st.builds(_dumps, event_object, st.booleans()),
    st.builds(_dumps, json_value, st.booleans()),
    st.integers(min_value=1, max_value=20_000).map(_deep),
    st.binary(max_size=600),
    st.builds(lambda obj, extra: _dumps(obj, True)[:-1] + extra + b"}", event_object,
              st.binary(max_size=50)),
)
signed_payloads = content_bytes.map(sign)
unsigned_payloads = st.one_of(
    st.binary(max_size=2000),
    st.builds(_dumps, json_value, st.booleans()),
    content_bytes.map(lambda c: sign(c, secret="not-the-secret")),
    st.builds(lambda c, h: b'{"Content":' + c + b',"HashCode":"' + h + b'"}', content_bytes,
              st.binary(max_size=70)),
    st.builds(lambda c, h: b'{"Content":' + c + b',"HashCode":"' + h.encode() + b'"}',
              content_bytes, st.text("0123456789ABCDEF", min_size=64, max_size=64)),
    content_bytes,
)


# --- the checks ---------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.posts = 0
        self.statuses: dict[int, int] = {}
        self.signed_hashes: set[str] = set()

    def post(self, client, url: str, body: bytes) -> int:
        response = client.post(url, data=body, content_type="application/json")
        self.posts += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (url, body[:200])
        return response.status_code


def _assert_nothing_unauthentic(tally: Tally, queued: list) -> None:
    valid = ExactWebhookDelivery.objects.filter(valid=True)
    assert set(valid.values_list("body_sha256", flat=True)) <= tally.signed_hashes
    processed = ExactWebhookDelivery.objects.filter(pk__in=[pk for _, pk in queued])
    assert processed.count() == len(queued)
    for row in processed:
        assert row.valid and row.event_key and row.body_sha256 in tally.signed_hashes


def _assert_admin_renders(client, superuser) -> None:
    client.force_login(superuser)
    changelist = reverse("admin:exact_exactwebhookdelivery_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(changelist, {"valid__exact": "0"}).status_code == 200
    ids = list(ExactWebhookDelivery.objects.values_list("pk", flat=True))
    for pk in random.Random(14).sample(ids, min(40, len(ids))):
        page = client.get(reverse("admin:exact_exactwebhookdelivery_change", args=[pk]))
        assert page.status_code == 200
    client.logout()


def test_fuzz_signed_payloads(client, connection, queued, superuser,
                              django_capture_on_commit_callbacks):
    tally = Tally()
    urls = [f"/webhooks/exact/{connection.tenant.uuid}/", "/webhooks/exact/"]

    @FUZZ
    @given(body=signed_payloads)
    def run(body):
        tally.signed_hashes.add(hashlib.sha256(body).hexdigest())
        with django_capture_on_commit_callbacks(execute=True):
            for url in urls:
                tally.post(client, url, body)

    run()
    assert tally.posts == 2 * EXAMPLES
    _assert_nothing_unauthentic(tally, queued)
    _assert_admin_renders(client, superuser)
    print(f"signed: {tally.posts} posts, statuses {sorted(tally.statuses.items())}, "
          f"{len(queued)} queued")


def test_fuzz_unsigned_payloads(client, connection, queued, superuser,
                                django_capture_on_commit_callbacks):
    tally = Tally()
    urls = [f"/webhooks/exact/{connection.tenant.uuid}/", "/webhooks/exact/"]

    @FUZZ
    @given(body=unsigned_payloads)
    def run(body):
        with django_capture_on_commit_callbacks(execute=True):
            for url in urls:
                tally.post(client, url, body)

    run()
    assert tally.posts == 2 * EXAMPLES
    assert queued == []
    assert not ExactWebhookDelivery.objects.filter(valid=True).exists()
    _assert_admin_renders(client, superuser)
    print(f"unsigned: {tally.posts} posts, statuses {sorted(tally.statuses.items())}")


# --- 150 x 1 MiB of junk -----------------------------------------------------------------------


def _stored_size() -> int:
    table = ExactWebhookDelivery._meta.db_table
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        else:  # SQLite: what the rows hold
            cursor.execute(
                f"SELECT COALESCE(SUM(LENGTH(body) + LENGTH(headers) + LENGTH(error)"
                f" + LENGTH(body_sha256) + LENGTH(source_address)), 0) FROM {table}"
            )
        return int(cursor.fetchone()[0])


def test_150_one_mib_junk_posts_grow_the_database_by_less_than_5_mib(client, connection):
    rng = random.Random(150)
    before = _stored_size()
    statuses = set()
    for _ in range(150):
        body = rng.randbytes(1024 * 1024)
        statuses.add(client.post("/webhooks/exact/", data=body,
                                 content_type="application/json").status_code)
    growth = _stored_size() - before
    assert statuses == {400}
    assert ExactWebhookDelivery.objects.count() == 150
    assert growth < 5 * 1024 * 1024, growth
    print(f"150 x 1 MiB junk: {db_connection.vendor} grew by {growth} bytes")

