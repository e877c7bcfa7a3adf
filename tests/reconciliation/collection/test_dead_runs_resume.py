"""A live run whose process died mid-run (SIGKILL, out of memory, a lost machine) is resumed
by the 15-minute sweep: marked abandoned, and a new queued run of the same trigger finishes
its work, one payment per invoice. Before, a scheduled run killed half-way waited for the
next slot, two weeks later (found by the chaos month, docs/chaos.md).

Dead means: on PostgreSQL nobody holds the tenant's advisory lock; on SQLite no heartbeat
within the lease. A run whose process is alive is left alone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.utils import timezone

from reconciliation.collection import locking
from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from reconciliation.collection.runs import dead_runs_resume, queued_run_execute
from tenants.models import CollectionMode
from tests.reconciliation.collection.factories import CollectionRunFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _running(tenant, *, heartbeat_ago: dt.timedelta, preview=None) -> CollectionRun:
    return CollectionRunFactory(tenant=tenant, kind=RunKind.LIVE, trigger=RunTrigger.SCHEDULE,
                                state=RunState.RUNNING, preview=preview,
                                as_of=timezone.localdate(),
                                heartbeat_at=timezone.now() - heartbeat_ago)


def test_a_dead_run_is_abandoned_and_a_new_run_finishes_its_work(collection_world_factory):
    world = collection_world_factory(customers=4, collection_mode=CollectionMode.AUTO)
    dead = _running(world.tenant, heartbeat_ago=dt.timedelta(hours=1))

    said = dead_runs_resume()

    dead.refresh_from_db()
    assert dead.state == RunState.ABANDONED and "a new run resumes its work" in dead.error
    resumed = CollectionRun.objects.get(state=RunState.QUEUED)
    assert (resumed.trigger, resumed.kind, resumed.slot_at) == (RunTrigger.SCHEDULE,
                                                                RunKind.LIVE, None)
    assert said == [f"run {dead.pk} died mid-run: run {resumed.pk} resumes its work"]
    queued_run_execute(resumed.pk)
    resumed.refresh_from_db()
    assert resumed.state == RunState.COMPLETED, resumed.error
    world.assert_one_payment_per_invoice()
    assert dead_runs_resume() == []  # nothing left to resume


def test_a_run_whose_process_is_alive_is_left_alone(collection_world_factory):
    world = collection_world_factory(customers=1, collection_mode=CollectionMode.AUTO)
    if db_connection.vendor == "postgresql":
        # Its process holds the tenant's advisory lock, however old its heartbeat.
        alive = _running(world.tenant, heartbeat_ago=dt.timedelta(hours=1))
        other = connections.create_connection("default")
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)",
                           [locking._ADVISORY_CLASS, world.tenant.pk])
        try:
            assert dead_runs_resume() == []
        finally:
            other.close()
        assert dead_runs_resume() != []  # its connection is gone: now it is dead
    else:
        alive = _running(world.tenant, heartbeat_ago=dt.timedelta(seconds=30))
        assert dead_runs_resume() == []
        alive.refresh_from_db()
        assert alive.state == RunState.RUNNING


def test_a_dead_approval_run_is_only_abandoned(collection_world_factory):
    world = collection_world_factory(customers=1, collection_mode=CollectionMode.REVIEW)
    preview = CollectionRunFactory(tenant=world.tenant, state=RunState.APPROVED)
    dead = _running(world.tenant, heartbeat_ago=dt.timedelta(hours=1), preview=preview)
    assert dead_runs_resume() == [
        f"run {dead.pk} died mid-run (an approval): approve again to resume"]
    dead.refresh_from_db()
    assert dead.state == RunState.ABANDONED and "approve the preview again" in dead.error
    assert not CollectionRun.objects.filter(state=RunState.QUEUED).exists()
