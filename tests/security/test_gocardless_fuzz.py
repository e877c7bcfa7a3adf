"""Fuzzing both GoCardless webhook endpoints (per tenant and partner) with hostile payloads,
signed and unsigned.

Runs on PostgreSQL when DATABASE_URL points there (the strict database: NUL in text/jsonb,
``Infinity`` in jsonb, lone surrogates and timestamps Python cannot read back are errors
there), on SQLite otherwise. Deterministic (``derandomize``) and bounded (well under a
minute).

What must hold, whatever arrives: no 5xx; nothing unsigned is stored as an event or queued;
an event is only ever stored from a signed delivery that was answered 204; quarantined
events are never queued or processed; afterwards the sweeper runs and the event admin's
changelist and change pages render. And 150 junk bodies of 1 MiB grow the database by less
than 5 MiB.
"""

from __future__ import annotations

import json
import os
import random
from datetime import datetime, timedelta

import pytest
from django.db import connection as db_connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from gocardless import errors
from gocardless.events_sweep import events_retry_due
from gocardless.models import EventOutcome, GoCardlessEvent, IntakeBudget, WebhookDelivery
from tests.factories import GoCardlessConnectionFactory, TenantFactory
from tests.gocardless.conftest import post_webhook, sign

pytestmark = pytest.mark.django_db

SECRET = "fuzz-tenant-secret"
PARTNER = "fuzz-partner-secret"
EXAMPLES = int(os.environ.get("MLC_FUZZ_EXAMPLES", "1000"))  # per test; two tests
FUZZ = hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)
MIB = 1024 * 1024


@pytest.fixture
def world(db, settings, monkeypatch):
    """Two tenants with their own secret, partner-connected organisations, the partner
    secret; budgets large enough that storing is exercised (the caps have their own tests);
    queued batches recorded instead of run."""
    settings.GOCARDLESS_WEBHOOK_SECRET = PARTNER
    settings.GOCARDLESS_DELIVERY_MAX_BYTES_PER_HOUR = 256 * MIB
    settings.GOCARDLESS_UNSIGNED_DELIVERY_MAX_BYTES_PER_HOUR = 256 * MIB
    alpha = GoCardlessConnectionFactory(webhook_secret=SECRET, organisation_id="ORFUZZA")
    bravo = GoCardlessConnectionFactory(webhook_secret="bravo-secret",
                                        organisation_id="ORFUZZB")
    queued: list[list[int]] = []
    monkeypatch.setattr("django_q.tasks.async_task",
                        lambda func, pks, **kwargs: queued.append(list(pks)))
    return {"alpha": alpha, "bravo": bravo, "queued": queued,
            "tenant_url": f"/webhooks/gocardless/{alpha.tenant.uuid}/",
            "unknown_url": f"/webhooks/gocardless/{TenantFactory().uuid}/",
            "partner_url": "/webhooks/gocardless/"}


# --- strategies --------------------------------------------------------------------------------
nasty_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "EV\x00", "\ud800", "x\udfffy", "\u202e", "'; DROP TABLE x;--",
                     "payments", "confirmed", "E" * 41, "é" * 60, "OR../..", "OR\nFUZZ"]),
)
nasty_number = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
leaf = st.one_of(st.none(), nasty_text, nasty_number)
json_value = st.recursive(
    leaf,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(nasty_text, children, max_size=3),
    max_leaves=5,
)
good_id = st.from_regex(r"EV[A-Z0-9]{4,12}", fullmatch=True)
timestamps = st.one_of(
    st.sampled_from(["2026-03-02T10:00:00.000Z", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-14:00", "2024-02-30T00:00:00Z", "1999-12-31T23:59Z",
                     "2026-03-02T10:00:00", "not a date", "", "2026-03-02T10:00:00+25:00"]),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    nasty_number,
    json_value,
)
organisation = st.one_of(st.sampled_from(["ORFUZZA", "ORFUZZB", "ORUNKNOWN"]), json_value)
links = st.one_of(
    st.fixed_dictionaries(
        {"payment": st.one_of(st.from_regex(r"PM[A-Z0-9]{4,10}", fullmatch=True), json_value)},
        optional={"organisation": organisation, "mandate": json_value, "parent_event": leaf},
    ),
    json_value,
)
usable_event = st.fixed_dictionaries(
    {
        "id": good_id,
        "created_at": st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1))
        .map(lambda d: d.isoformat() + "Z"),
        "resource_type": st.sampled_from(["payments", "mandates", "payouts", "brand_new"]),
        "action": st.sampled_from(["confirmed", "failed", "created", "paid"]),
        "links": st.fixed_dictionaries({
            "payment": st.from_regex(r"PM[A-Z0-9]{4,10}", fullmatch=True),
            "mandate": st.from_regex(r"MD[A-Z0-9]{4,10}", fullmatch=True),
            "payout": st.from_regex(r"PO[A-Z0-9]{4,10}", fullmatch=True),
            "organisation": st.sampled_from(["ORFUZZA", "ORFUZZB", "ORUNKNOWN"]),
        }),
    },
    optional={"details": st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
              "metadata": st.dictionaries(st.text(max_size=8), st.integers(), max_size=2)},
)
event = st.one_of(
    usable_event,
    st.fixed_dictionaries(
        {"id": st.one_of(good_id, json_value)},
        optional={
            "created_at": timestamps,
            "resource_type": st.one_of(
                st.sampled_from(["payments", "mandates", "payouts", "refunds",
                                 "billing_requests", "creditors", "brand_new"]), json_value),
            "action": st.one_of(st.sampled_from(["confirmed", "failed", "created",
                                                 "bounced_payout"]), json_value),
            "links": links,
            "details": st.one_of(st.dictionaries(nasty_text, json_value, max_size=3),
                                 json_value),
            "metadata": json_value,
            "resource_metadata": json_value,
        },
    ),
    json_value,
)


def _encode(document, ensure_ascii: bool) -> bytes:
    text = json.dumps(document, ensure_ascii=ensure_ascii)  # NaN/Infinity allowed on purpose
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate → invalid UTF-8 bytes


event_lists = st.builds(
    _encode,
    st.fixed_dictionaries({"events": st.lists(event, max_size=5)},
                          optional={"meta": json_value}),
    st.booleans(),
)
envelopes = st.one_of(
    event_lists,
    st.builds(_encode, st.one_of(st.fixed_dictionaries({"events": json_value}), json_value),
              st.booleans()),
)
raw_bodies = st.one_of(
    st.binary(max_size=2000),
    st.integers(min_value=1, max_value=12_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=30, max_value=12_000).map(
        lambda n: b'{"events":[' + b'{"x":' * n + b"1" + b"}" * n + b"]}"),
    st.integers(min_value=4200, max_value=6000).map(
        lambda n: b'{"events":[{"id":"EV1","n":' + b"9" * n + b"}]}"),
    st.sampled_from([b"", b"{", b'{"events":[', b'{"events":[]}' + b"\x00",
                     b'\xef\xbb\xbf{"events":[]}', b'{"events":[{"id":"EV1",}]}',
                     json.dumps({"events": [{}] * 1500}).encode()]),
    envelopes.map(lambda body: body[: len(body) // 2]),  # cut short
)
# Six in ten a list of events (each usable or not), two in ten any envelope, two raw bytes.
bodies = st.integers(min_value=0, max_value=9).flatmap(
    lambda n: event_lists if n < 6 else envelopes if n < 8 else raw_bodies)


def _no_5xx(response, allowed):
    assert response.status_code < 500, response.status_code
    assert response.status_code in allowed, response.status_code


def _sweeper_and_admin_still_work(client, superuser):
    class GoneClient:
        def resource_get(self, resource_type, resource_id):
            raise errors.NotFoundError("gone")

    later = timezone.now() + timedelta(hours=1)
    events_retry_due(now=later, client_factory=lambda connection: GoneClient(), limit=10_000)
    client.force_login(superuser)
    changelist = reverse("admin:gocardless_gocardlessevent_changelist")
    for query in ({}, {"processing": "quarantined"}, {"processing": "processed"},
                  {"processing": "failed"}, {"q": "EV"}, {"o": "6"}):
        assert client.get(changelist, query).status_code == 200
    quarantined = list(GoCardlessEvent.objects.filter(outcome=EventOutcome.QUARANTINED)
                       .values_list("pk", flat=True)[:60])
    others = list(GoCardlessEvent.objects.exclude(outcome=EventOutcome.QUARANTINED)
                  .values_list("pk", flat=True)[:20])
    for pk in quarantined + others:
        page = client.get(reverse("admin:gocardless_gocardlessevent_change", args=[pk]))
        assert page.status_code == 200, pk
    deliveries = reverse("admin:gocardless_webhookdelivery_changelist")
    assert client.get(deliveries).status_code == 200
    for pk in WebhookDelivery.objects.values_list("pk", flat=True)[:20]:
        page = client.get(reverse("admin:gocardless_webhookdelivery_change", args=[pk]))
        assert page.status_code == 200, pk
    return len(quarantined)


# --- the fuzz ----------------------------------------------------------------------------------


def test_fuzz_signed_payloads(client, world, superuser):
    statuses: dict[int, int] = {}

    @FUZZ
    @given(body=bodies, endpoint=st.sampled_from(["tenant", "partner"]))
    def one(body, endpoint):
        url, secret = ((world["tenant_url"], SECRET) if endpoint == "tenant"
                       else (world["partner_url"], PARTNER))
        response = post_webhook(client, url, body, sign(body, secret))
        _no_5xx(response, {204, 400})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    one()
    assert sum(statuses.values()) >= EXAMPLES
    # The generator must reach both answers in earnest (a fuzz that only ever hits one path
    # proves little); the exact split differs a little between databases.
    assert statuses.get(204, 0) > EXAMPLES // 4 and statuses.get(400, 0) > EXAMPLES // 20

    # Events come only from signed deliveries answered 204; quarantined ones never queued.
    events = GoCardlessEvent.objects.all()
    assert not events.exclude(delivery__valid=True, delivery__response_status=204).exists()
    quarantined = set(events.filter(outcome=EventOutcome.QUARANTINED)
                      .values_list("pk", flat=True))
    queued = {pk for batch in world["queued"] for pk in batch}
    assert quarantined and queued and not (quarantined & queued)
    assert not events.filter(outcome=EventOutcome.QUARANTINED, processed_at__isnull=True).exists()

    shown = _sweeper_and_admin_still_work(client, superuser)
    assert shown > 0
    assert not GoCardlessEvent.objects.filter(
        outcome=EventOutcome.QUARANTINED, attempts__gt=0).exists()  # never processed
    assert not GoCardlessEvent.objects.filter(processed_at__isnull=True).exclude(
        failed_at__isnull=False).exists()  # the sweeper reached every usable event
    print(f"\nsigned fuzz: {sum(statuses.values())} POSTs, statuses {statuses}, "
          f"{GoCardlessEvent.objects.count()} events stored, {len(quarantined)} quarantined")


def test_fuzz_unsigned_payloads(client, world, superuser):
    statuses: dict[int, int] = {}

    @FUZZ
    @given(
        body=bodies,
        endpoint=st.sampled_from(["tenant", "partner", "unknown"]),
        signature=st.one_of(
            st.none(), st.just(""), st.text(max_size=70),
            st.sampled_from(["wrong-secret", "other-endpoints-key", "upper-case",
                             "prefixed"]),
        ),
    )
    def one(body, endpoint, signature):
        url = world[f"{endpoint}_url"]
        own = SECRET if endpoint == "tenant" else PARTNER
        forged = {
            "wrong-secret": sign(body, "not-the-secret"),
            # Signed, but with the key of the other endpoint: not authentic here.
            "other-endpoints-key": sign(body, PARTNER if endpoint == "tenant" else SECRET),
            "upper-case": sign(body, own).upper(),
            "prefixed": "sha256=" + sign(body, own),
        }.get(signature, signature)
        try:
            response = post_webhook(client, url, body, forged)
        except UnicodeEncodeError:  # the test client cannot send this header at all
            return
        _no_5xx(response, {498, 404})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    one()
    assert sum(statuses.values()) >= EXAMPLES * 0.95
    assert not GoCardlessEvent.objects.exists()  # zero unauthentic rows, none processed
    assert world["queued"] == []
    assert not WebhookDelivery.objects.filter(valid=True).exists()
    assert max(len(bytes(b)) for b in WebhookDelivery.objects.values_list("body", flat=True)
               ) <= 4096
    _sweeper_and_admin_still_work(client, superuser)
    print(f"\nunsigned fuzz: {sum(statuses.values())} POSTs, statuses {statuses}, "
          f"{WebhookDelivery.objects.count()} deliveries logged")


# --- what 150 POSTs of 1 MiB junk cost us ------------------------------------------------------

GROWTH_TABLES = [WebhookDelivery._meta.db_table, IntakeBudget._meta.db_table,
                 GoCardlessEvent._meta.db_table]


def _database_bytes() -> int:
    """PostgreSQL: the tables with their indexes and TOAST (pg_total_relation_size). SQLite:
    the bytes of the rows' payloads (it has no per-table size)."""
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            total = 0
            for table in GROWTH_TABLES:
                cursor.execute("SELECT pg_total_relation_size(%s)", [table])
                total += cursor.fetchone()[0]
            return total
        cursor.execute(
            "SELECT COALESCE(SUM(LENGTH(body) + LENGTH(headers) + LENGTH(error) "
            "+ LENGTH(body_sha256) + LENGTH(source_address) + 64), 0) "
            f"FROM {WebhookDelivery._meta.db_table}"
        )
        deliveries = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) * 64 FROM {IntakeBudget._meta.db_table}")
        return deliveries + cursor.fetchone()[0]


@override_settings(WEBHOOK_MAX_BODY_BYTES=MIB)
def test_150_posts_of_1_mib_junk_grow_the_database_by_less_than_5_mib(client, world):
    rng = random.Random(14)
    urls = [world["tenant_url"], world["partner_url"], world["unknown_url"]]
    before = _database_bytes()
    for n in range(150):
        body = rng.randbytes(MIB)
        response = post_webhook(client, urls[n % 3], body, sign(body, "attacker"))
        assert response.status_code in (498, 404)
    grown = _database_bytes() - before
    assert WebhookDelivery.objects.count() == 150
    assert grown < 5 * MIB, grown
    print(f"\n150 x 1 MiB junk on {db_connection.vendor}: database grew by {grown} bytes")
