"""PostgreSQL: two clusters sweeping at the same moment start one scheduled run per slot.

Each thread has its own database connection (as two django-q2 clusters on two machines
have); both decide, behind a barrier, that the slot is due (neither sees the other's
uncommitted run) and both try to store it: one gets in and the other is refused ("already
started for this slot"), whichever wins the race. While the first run is still queued or
running, the tenant's one-live-run index refuses the second as well; once it has finished,
only ``collection_one_run_per_slot`` stands between a late sweep and a second run (the last
test: without that index it stores two).
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from reconciliation.collection.models import CollectionRun, RunState, RunTrigger
from reconciliation.collection.runs import RunRefused
from reconciliation.collection.scheduled_runs import scheduled_run_start, scheduled_runs_start
from reconciliation.collection.schedules import slots_due_for_run
from tenants.models import CollectionMode, Tenant
from tests.concurrency import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SLOT = dt.datetime(2027, 3, 15, 5, 0, tzinfo=dt.UTC)  # Monday 06:00 in Amsterdam


@pytest.fixture
def tenant(tenant_a):
    tenant_a.time_zone = "Europe/Amsterdam"
    tenant_a.currencies = ["EUR"]
    tenant_a.collection_mode = CollectionMode.AUTO
    tenant_a.collection_hour = 6
    tenant_a.save()
    return tenant_a


def _store_after_both_decided(tenant_pk: int, count: int):
    """Both threads read "due" before either stores its run: the check-then-create race."""
    decided = threading.Barrier(count)

    def work():
        due = slots_due_for_run(now=SLOT)
        decided.wait(timeout=10)
        [(tenant, slot)] = [(t, s) for t, s in due if t.pk == tenant_pk]
        try:
            return scheduled_run_start(tenant=tenant, slot_at=slot.at)
        except RunRefused as exc:
            return str(exc)

    return work


@pytest.mark.parametrize("clusters", [2, 4])
def test_clusters_that_all_decided_the_slot_is_due_start_one_run(tenant, clusters):
    results = at_once(*[_store_after_both_decided(tenant.pk, clusters)] * clusters)
    runs = [r for r in results if isinstance(r, CollectionRun)]
    refused = [r for r in results if isinstance(r, str)]
    assert len(runs) == 1 and len(refused) == clusters - 1, results
    assert all(f"already started for this slot (run #{runs[0].pk})" in r for r in refused)
    stored = CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    assert list(stored.values_list("state", "slot_at")) == [(RunState.QUEUED, SLOT)]


def test_a_sweep_that_decided_before_the_run_finished_is_refused_after(tenant):
    decided, finished = threading.Event(), threading.Event()

    def early_cluster():
        # Stores the slot's run, and its workers carry it out at once.
        decided.wait(timeout=10)
        [(t, slot)] = slots_due_for_run(now=SLOT)
        run = scheduled_run_start(tenant=t, slot_at=slot.at)
        CollectionRun.objects.filter(pk=run.pk).update(state=RunState.COMPLETED)
        finished.set()
        return run

    def late_cluster():
        # Decided "due" before the other stored anything; stores after it has finished.
        [(t, slot)] = slots_due_for_run(now=SLOT)
        decided.set()
        finished.wait(timeout=10)
        try:
            return scheduled_run_start(tenant=t, slot_at=slot.at)
        except RunRefused as exc:
            return str(exc)

    results = at_once(early_cluster, late_cluster)
    [run] = [r for r in results if isinstance(r, CollectionRun)]
    [refused] = [r for r in results if isinstance(r, str)]
    assert f"already started for this slot (run #{run.pk})" in refused
    stored = CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    assert list(stored.values_list("state", flat=True)) == [RunState.COMPLETED]


def test_two_whole_sweeps_at_the_same_moment_start_one_run(tenant):
    said = at_once(*[lambda: scheduled_runs_start(now=SLOT)] * 2)
    lines = sorted(line for lines in said for line in lines)
    stored = CollectionRun.objects.get(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    started = f"{tenant}: scheduled run #{stored.pk} queued (waiting for the task workers)"
    assert started in lines
    # The other sweep either saw the run already (said nothing) or was refused by the index.
    assert all(line == started or "already started for this slot" in line for line in lines)
    assert lines.count(started) == 1
    assert Tenant.objects.get(pk=tenant.pk).collection_runs.count() == 1
