"""The collection engine's periodic jobs: which tenants it starts, and the daily e-mail of
what needs attention.

One schedule (every 15 minutes) rather than one per tenant: each tenant's own schedule
(every day, chosen weekdays or chosen days of the month, at its local ``collection_hour``:
``schedule_slots``) says which slot is due, and a tenant added, moved to another time zone
or given another schedule needs no schedule change here. Whether a slot has had its run is
read from the runs themselves, and the database decides between two clusters firing the
same schedule: ``scheduled_runs.scheduled_run_start`` stores one run per slot (a unique
constraint), the other sweep is refused ("already started for this slot").
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from core.schedules import schedule_upsert
from reconciliation.collection.models import CollectionRun, RunState, RunTrigger
from reconciliation.collection.schedule_slots import Slot, schedule_slot_due
from tenants.models import CollectionMode, Tenant

SCHEDULE_NAME = "collection.runs_due"
# Hourly; each tenant gets at most one e-mail a day (attention.attention_digests_send).
DIGEST_SCHEDULE_NAME = "collection.attention_digest"


def collection_schedules_ensure() -> list[str]:
    from django_q.models import Schedule

    schedule_upsert(
        name=SCHEDULE_NAME,
        func="reconciliation.collection.tasks.runs_due_task",
        schedule_type=Schedule.MINUTES,
        minutes=15,
    )
    schedule_upsert(
        name=DIGEST_SCHEDULE_NAME,
        func="reconciliation.collection.tasks.attention_digest_task",
        schedule_type=Schedule.MINUTES,
        minutes=60,
    )
    return [SCHEDULE_NAME, DIGEST_SCHEDULE_NAME]


def slots_due_for_run(*, now: dt.datetime | None = None) -> list[tuple[Tenant, Slot]]:
    """Each active, collecting tenant whose schedule has a slot due at ``now`` that has not
    had its run yet, with that slot. A refused, failed or abandoned run leaves its slot due
    (the next sweep tries again). An abandoned run (its process died) is resumed by a new run
    of the same day, which counts while it is queued, running or done; when that one fails
    too (say Exact must be reconnected), the slot is due again, so the day's collection goes
    ahead once the company can collect (found by the chaos month, docs/chaos.md). A scheduled
    run of the slot's local day without a slot (one started before slots were stored) or for
    another slot that day (the hour was changed after it ran) counts too: one scheduled run a
    day at most."""
    now = now or timezone.now()
    due = []
    for tenant in Tenant.objects.filter(is_active=True).exclude(collection_mode=CollectionMode.OFF):
        slot = schedule_slot_due(tenant=tenant, now=now)
        if slot is None:
            continue
        if not slot_has_run(tenant=tenant, slot=slot):
            due.append((tenant, slot))
    return due


def slot_has_run(*, tenant, slot: Slot) -> bool:
    """Whether ``slot`` has had its scheduled run (see ``slots_due_for_run``)."""
    return (
        CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE)
        .filter(Q(slot_at=slot.at) | Q(as_of=slot.day))
        .exclude(state__in=(RunState.REFUSED, RunState.FAILED, RunState.ABANDONED))
        .exists()
    )
