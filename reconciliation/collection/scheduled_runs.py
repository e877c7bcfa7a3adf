"""The scheduled run of one slot of a tenant's schedule, started once however many sweeps
ask (``schedules.slots_due_for_run`` decides which slots are due; ``schedule_slots`` what a
slot is).

The run is stored ``queued`` with its slot and carried out by the task workers, like
*Collect now*'s (``runs.queued_run_execute``; a lost task is handed out again by
``runs.queued_runs_resume``). The unique constraint ``collection_one_run_per_slot`` decides
whether it may be stored, not a look beforehand: two clusters sweeping at the same moment, or
a late sweep after the run has already finished, get ``RunRefused`` ("already started for
this slot"), never a second run.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.display import local_time_display
from core.queue import enqueue_on_commit
from reconciliation.collection.live import QUEUED_RUN_TASK
from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from reconciliation.collection.run_records import RunRefused, run_actor
from reconciliation.collection.schedules import slots_due_for_run
from tenants.models import CollectionMode

# Kept on the refused run: the slot stays free and the next sweep tries again.
BUSY = "another run of this tenant was queued or running; the next sweep tries again"


def slot_run(*, tenant, slot_at: dt.datetime) -> CollectionRun | None:
    """The run that holds the slot (not refused, not failed), if any."""
    return (
        CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE, slot_at=slot_at)
        .exclude(state__in=(RunState.REFUSED, RunState.FAILED))
        .order_by("pk")
        .first()
    )


def scheduled_run_start(*, tenant, slot_at: dt.datetime) -> CollectionRun:
    """Store and queue the run of the slot ``slot_at``. ``RunRefused``: collection is off,
    or the slot already has its run. When the tenant's live run (or a queued preview) is
    active instead, the run is stored *refused* and returned: that leaves the slot free for
    the next sweep, as the daily run always did."""
    if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
        raise RunRefused(f"Collection is off for {tenant}")
    now = timezone.now()
    run = CollectionRun(
        tenant=tenant,
        kind=RunKind.PREVIEW if tenant.collection_mode == CollectionMode.REVIEW else RunKind.LIVE,
        trigger=RunTrigger.SCHEDULE,
        as_of=slot_at.astimezone(tenant.zone).date(),
        slot_at=slot_at,
        state=RunState.QUEUED,
        heartbeat_at=now,
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        # Which constraint refused it: the slot's (another sweep won) or the tenant's one
        # live run / one queued preview (a person's Collect now or Approve is under way).
        taken = slot_run(tenant=tenant, slot_at=slot_at)
        if taken is not None:
            raise RunRefused(
                f"{tenant}: the scheduled run for {local_time_display(slot_at, tenant)} was "
                f"already started for this slot (run #{taken.pk}); nothing new was started."
            ) from None
        run.pk, run.state, run.finished_at = None, RunState.REFUSED, now
        run.heartbeat_at, run.error = None, BUSY
        run.save()
        return run
    audit_record(
        actor=run_actor(None, RunTrigger.SCHEDULE),
        action="collection.run_queued",
        tenant=tenant,
        obj=run,
        after={"kind": run.kind, "trigger": run.trigger, "slot": slot_at.isoformat()},
        message=f"Scheduled run #{run.pk} queued for {local_time_display(slot_at, tenant)}",
    )
    enqueue_on_commit(QUEUED_RUN_TASK, run.pk, group="collection")
    return run


def scheduled_runs_start(*, now: dt.datetime | None = None) -> list[str]:
    """The sweep: the run of every due slot (``schedules.slots_due_for_run``), each said in
    one line; a slot another cluster's sweep started is said as refused, not an error."""
    said = []
    for tenant, slot in slots_due_for_run(now=now):
        try:
            run = scheduled_run_start(tenant=tenant, slot_at=slot.at)
        except RunRefused as exc:
            said.append(str(exc))
        else:
            said.append(f"{tenant}: scheduled run #{run.pk} {run.get_state_display().lower()}")
    return said
