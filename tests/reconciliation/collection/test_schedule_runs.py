"""The sweep starts one run per slot of a tenant's schedule (schedules.slots_due_for_run,
scheduled_runs.scheduled_run_start): a second sweep, a late one, a direct second start are
refused by the database's unique constraint, not by a look beforehand; a run refused because
another live run was active leaves the slot due. The clock is pinned (time-machine)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from core.audit import AuditEntry
from reconciliation.collection import tasks
from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from reconciliation.collection.runs import RunRefused
from reconciliation.collection.scheduled_runs import (
    BUSY,
    scheduled_run_start,
    scheduled_runs_start,
)
from reconciliation.collection.schedules import slots_due_for_run
from tenants.models import CollectionMode, ScheduleKind
from tests.reconciliation.collection.conftest import tenants_due_for_run
from tests.reconciliation.collection.factories import CollectionRunFactory

UTC = dt.UTC
# Monday 15 March 2027, 06:00 in Amsterdam (CET).
SLOT = dt.datetime(2027, 3, 15, 5, 0, tzinfo=UTC)


@pytest.fixture
def tenant(tenant_a):
    tenant_a.time_zone = "Europe/Amsterdam"
    tenant_a.currencies = ["EUR"]
    tenant_a.collection_mode = CollectionMode.AUTO
    tenant_a.collection_hour = 6
    tenant_a.save()
    return tenant_a


def scheduled_runs(tenant):
    return CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE)


def test_one_run_per_slot_whatever_the_sweeps(tenant):
    with time_machine.travel(SLOT, tick=False):
        assert slots_due_for_run(now=SLOT - dt.timedelta(seconds=1)) == []
        [(due_tenant, slot)] = slots_due_for_run(now=SLOT)
        assert due_tenant == tenant and slot.at == SLOT
        said = scheduled_runs_start(now=SLOT)
    run = scheduled_runs(tenant).get()
    assert said == [f"{tenant}: scheduled run #{run.pk} queued (waiting for the task workers)"]
    assert (run.kind, run.state, run.slot_at, run.as_of) == (
        RunKind.LIVE, RunState.QUEUED, SLOT, dt.date(2027, 3, 15)
    )
    entry = AuditEntry.objects.get(action="collection.run_queued", object_id=run.pk)
    assert "queued for Mon 15 Mar 2027, 06:00 CET" in entry.message
    # A second sweep, or one delayed until the evening, finds the slot taken: nothing new.
    for late in (SLOT, SLOT + dt.timedelta(hours=15)):
        assert scheduled_runs_start(now=late) == []
    # Two clusters that both decided the slot was due: the database refuses the second.
    with pytest.raises(RunRefused, match=f"already started for this slot \\(run #{run.pk}\\)"):
        scheduled_run_start(tenant=tenant, slot_at=SLOT)
    # ... also once the first run has finished.
    CollectionRun.objects.filter(pk=run.pk).update(state=RunState.COMPLETED)
    with pytest.raises(RunRefused, match="already started for this slot"):
        scheduled_run_start(tenant=tenant, slot_at=SLOT)
    assert scheduled_runs(tenant).count() == 1
    # The next day's slot is a new one.
    tomorrow = SLOT + dt.timedelta(days=1)
    assert tenants_due_for_run(now=tomorrow) == [tenant]


def test_a_failed_or_refused_run_leaves_the_slot_due(tenant):
    first = scheduled_run_start(tenant=tenant, slot_at=SLOT)
    CollectionRun.objects.filter(pk=first.pk).update(state=RunState.FAILED)
    assert tenants_due_for_run(now=SLOT + dt.timedelta(minutes=15)) == [tenant]
    again = scheduled_run_start(tenant=tenant, slot_at=SLOT)
    assert again.state == RunState.QUEUED and again.pk != first.pk


def test_an_abandoned_run_leaves_the_slot_to_its_resumer_and_then_due_again(tenant):
    """Found by the chaos month: the slot's run was killed half-way (abandoned), the run
    resuming it failed (Exact had to be reconnected), and the abandoned run still counted
    as the slot's run: the day's invoices waited two weeks for the next slot."""
    first = scheduled_run_start(tenant=tenant, slot_at=SLOT)
    CollectionRun.objects.filter(pk=first.pk).update(state=RunState.ABANDONED)
    later = SLOT + dt.timedelta(minutes=15)
    # The run resuming it (runs.dead_runs_resume: same trigger and day, no slot) counts
    # while it is queued, running or done ...
    resumer = CollectionRunFactory(tenant=tenant, kind=RunKind.LIVE, trigger=RunTrigger.SCHEDULE,
                                   state=RunState.QUEUED, as_of=SLOT.date())
    for state in (RunState.QUEUED, RunState.RUNNING, RunState.COMPLETED):
        CollectionRun.objects.filter(pk=resumer.pk).update(state=state)
        assert tenants_due_for_run(now=later) == []
    # ... and when it fails too, the slot is due again: the next sweep starts it.
    CollectionRun.objects.filter(pk=resumer.pk).update(state=RunState.FAILED)
    assert tenants_due_for_run(now=later) == [tenant]
    again = scheduled_run_start(tenant=tenant, slot_at=SLOT)  # the database allows it
    assert again.state == RunState.QUEUED and again.pk != first.pk
    assert tenants_due_for_run(now=later) == []


def test_a_live_run_under_way_stores_the_scheduled_run_refused(tenant, operator_of_a):
    busy = CollectionRun.objects.create(
        tenant=tenant, kind=RunKind.LIVE, trigger=RunTrigger.USER, state=RunState.RUNNING,
        as_of=dt.date(2027, 3, 15),
    )
    run = scheduled_run_start(tenant=tenant, slot_at=SLOT)
    assert (run.state, run.error, run.slot_at) == (RunState.REFUSED, BUSY, SLOT)
    # The slot is still due: the next sweep, once the other run has finished, starts it.
    assert tenants_due_for_run(now=SLOT + dt.timedelta(minutes=15)) == [tenant]
    CollectionRun.objects.filter(pk=busy.pk).update(state=RunState.COMPLETED)
    assert scheduled_run_start(tenant=tenant, slot_at=SLOT).state == RunState.QUEUED


def test_review_mode_queues_a_preview_and_off_starts_nothing(tenant):
    tenant.collection_mode = CollectionMode.REVIEW
    tenant.save()
    assert scheduled_run_start(tenant=tenant, slot_at=SLOT).kind == RunKind.PREVIEW
    tenant.collection_mode = CollectionMode.OFF
    tenant.save()
    assert slots_due_for_run(now=SLOT + dt.timedelta(days=1)) == []
    with pytest.raises(RunRefused, match="Collection is off"):
        scheduled_run_start(tenant=tenant, slot_at=SLOT + dt.timedelta(days=1))


def test_a_sweep_delayed_past_the_next_slot_starts_that_slot_once(tenant):
    tenant.schedule_kind = ScheduleKind.MONTH_DAYS
    tenant.schedule_month_days = [1, 2]
    tenant.save()
    # Mon 1 and Tue 2 March 2027, 06:00 CET; the sweeps were down all of the 1st.
    second = dt.datetime(2027, 3, 2, 5, 0, tzinfo=UTC)
    assert scheduled_runs_start(now=second + dt.timedelta(hours=3)) != []
    assert scheduled_runs_start(now=second + dt.timedelta(hours=3)) == []
    assert list(scheduled_runs(tenant).values_list("slot_at", flat=True)) == [second]
    # Not a chosen day: nothing due.
    assert tenants_due_for_run(now=dt.datetime(2027, 3, 3, 9, tzinfo=UTC)) == []


def test_a_run_from_before_slots_counts_for_its_day(tenant):
    CollectionRun.objects.create(
        tenant=tenant, kind=RunKind.LIVE, trigger=RunTrigger.SCHEDULE,
        state=RunState.COMPLETED, as_of=dt.date(2027, 3, 15),
    )
    assert tenants_due_for_run(now=SLOT) == []


def test_the_sweep_task_carries_the_run_out(collection_world_factory, q_sync, run_on_commit):
    with time_machine.travel(SLOT + dt.timedelta(minutes=3), tick=False):
        world = collection_world_factory(customers=3, collection_hour=6)
        with run_on_commit():
            said = tasks.runs_due_task()
        run = CollectionRun.objects.get(trigger=RunTrigger.SCHEDULE)
        assert said == [f"{world.tenant}: scheduled run #{run.pk} queued (waiting for the task "
                        "workers)"]
        assert (run.state, run.submitted, run.slot_at) == (RunState.COMPLETED, 3, SLOT)
        world.assert_one_payment_per_invoice()
        with run_on_commit():
            assert tasks.runs_due_task() == []
    assert CollectionRun.objects.filter(trigger=RunTrigger.SCHEDULE).count() == 1
