"""The event store's INSERT (gocardless/events_store.py): on PostgreSQL one statement that
takes the batch as a single jsonb parameter, elsewhere Django's bulk_create. Both must store
exactly the same rows; events a concurrent delivery stored first are skipped by the INSERT
and read back, never stored twice; the pks come back in the batch's order."""

from __future__ import annotations

import types
from datetime import UTC, datetime

import pytest
import time_machine

import gocardless.events_store as store
from gocardless.events_store import event_fields, events_store
from gocardless.models import EventOutcome, EventSource, GoCardlessEvent, WebhookDelivery
from tests.factories import TenantFactory
from tests.gocardless.conftest import fixture_event

pytestmark = pytest.mark.django_db

COMPARED = [f.name for f in GoCardlessEvent._meta.concrete_fields
            if f.name not in ("id", "tenant", "delivery", "received_at")]


def _batch(tag: str) -> list:
    """Every kind of row the intake writes: plain events of several resources, one filed
    under another resource, times with microseconds and without, non-ASCII text, a
    duplicate within the batch, and unusable events that are quarantined."""
    return [
        fixture_event("payments__confirmed", id=f"EV{tag}1"),
        fixture_event("mandates__cancelled", id=f"EV{tag}2"),
        fixture_event("payouts__paid", id=f"EV{tag}3"),
        fixture_event("subscriptions__created", id=f"EV{tag}4"),
        {"id": f"EV{tag}5", "created_at": "2026-03-06T09:00:00.123456+01:00",
         "resource_type": "creditors", "action": "bounced_payout",
         "links": {"creditor": "CR1", "payout": "PO1"},
         "details": {"description": "Zoë's € payout bounced \u2603", "amount": 12.5}},
        {"id": f"EV{tag}6", "resource_type": "payments", "action": "created",
         "links": {"payment": "PM6"}},  # no created_at, no details
        fixture_event("payments__confirmed", id=f"EV{tag}1"),  # again in the same batch
        {"id": f"EV{tag}7", "created_at": "yesterday", "resource_type": "payments",
         "action": "paid_out", "links": {"payment": "PM7"}},  # quarantined under its id
        ["not", "an", "object"],  # quarantined under a digest
    ]


def _rows(tenant) -> list[dict]:
    rows = GoCardlessEvent.objects.filter(tenant=tenant).order_by("id")
    return [{name: row[name] for name in COMPARED} | {"received": row["received_at"] is not None}
            for row in rows.values(*COMPARED, "received_at")]


def _delivery(tenant) -> WebhookDelivery:
    return WebhookDelivery.objects.create(tenant=tenant, body=b"{}", valid=True,
                                          response_status=204)


@pytest.mark.postgres
def test_postgresql_stores_the_same_rows_as_bulk_create(monkeypatch):
    fast, orm = TenantFactory(), TenantFactory()
    fast_delivery, orm_delivery = _delivery(fast), _delivery(orm)
    for tenant, delivery in ((fast, fast_delivery), (orm, orm_delivery)):
        if tenant is orm:  # the portable path, as on SQLite
            monkeypatch.setattr(store, "db_connection", types.SimpleNamespace(vendor="other"))
        # Quarantined events are marked processed "now": the same now for both paths.
        with time_machine.travel(datetime(2026, 3, 6, 10, 0, 0, 654321, tzinfo=UTC), tick=False):
            events_store(tenant=tenant, events=_batch("A"), source=EventSource.WEBHOOK,
                         delivery=delivery)
            events_store(tenant=tenant, events=_batch("B"), source=EventSource.POLL)
    assert _rows(fast) == _rows(orm)
    assert len(_rows(fast)) == 15  # 8 a batch; the digest-named one is the same in both
    quarantined = GoCardlessEvent.objects.filter(tenant=fast, outcome=EventOutcome.QUARANTINED)
    assert quarantined.count() == 3
    assert {e.processed_at for e in quarantined} == {
        datetime(2026, 3, 6, 10, 0, 0, 654321, tzinfo=UTC)}
    bounced = GoCardlessEvent.objects.get(tenant=fast, event_id="EVA5")
    assert (bounced.resource_type, bounced.resource_id) == ("payouts", "PO1")
    assert bounced.created_at == datetime(2026, 3, 6, 8, 0, 0, 123456, tzinfo=UTC)
    assert bounced.details["description"] == "Zoë's € payout bounced \u2603"
    assert set(GoCardlessEvent.objects.filter(tenant=fast, event_id__startswith="EVA")
               .values_list("delivery", flat=True)) == {fast_delivery.pk}


def test_pending_pks_come_back_in_the_batch_order():
    tenant = TenantFactory()
    events = [fixture_event("payments__confirmed", id=f"EVO{n}", links={"payment": f"PM{n}"})
              for n in (3, 1, 2, 0)]
    pks = events_store(tenant=tenant, events=events, source=EventSource.WEBHOOK)
    by_pk = dict(GoCardlessEvent.objects.filter(pk__in=pks).values_list("pk", "event_id"))
    assert [by_pk[pk] for pk in pks] == ["EVO3", "EVO1", "EVO2", "EVO0"]


def test_events_a_concurrent_delivery_stored_first_are_read_back_not_stored_twice(monkeypatch):
    tenant = TenantFactory()
    events = [fixture_event("payments__confirmed", id=f"EVR{n}", links={"payment": f"PM{n}"})
              for n in range(4)]
    insert = store._rows_insert

    def other_delivery_first(**kwargs):
        # Between our lookup and our INSERT, another delivery stores two of the events; one
        # of them is processed already.
        GoCardlessEvent.objects.bulk_create([
            GoCardlessEvent(tenant=tenant, source=EventSource.WEBHOOK, **event_fields(event))
            for event in events[:2]
        ])
        GoCardlessEvent.objects.filter(event_id="EVR0").update(
            processed_at=datetime(2026, 3, 6, tzinfo=UTC))
        return insert(**kwargs)

    monkeypatch.setattr(store, "_rows_insert", other_delivery_first)
    pks = events_store(tenant=tenant, events=events, source=EventSource.WEBHOOK)
    stored = dict(GoCardlessEvent.objects.filter(tenant=tenant).values_list("event_id", "pk"))
    assert sorted(stored) == ["EVR0", "EVR1", "EVR2", "EVR3"]
    assert sorted(pks) == sorted(stored[e] for e in ("EVR1", "EVR2", "EVR3"))
