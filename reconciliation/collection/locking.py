"""One live collection run per tenant at a time, across every cluster and machine.

The database holds the lock, so it works however many django-q2 clusters run:

- a partial unique constraint allows one ``CollectionRun(kind=live, state=running)`` per
  tenant: a second run's INSERT fails, whatever the timing;
- a run whose process died leaves that row behind. On PostgreSQL the live run also holds a
  session advisory lock, which the server releases the moment the dead process's connection
  goes: whoever gets the advisory lock knows any ``running`` row is abandoned. SQLite (one
  machine, the embedded default) has no advisory locks; there a row whose heartbeat is older
  than ``COLLECTION_RUN_LEASE_SECONDS`` is taken as abandoned.

A run queued from the admin (*Approve*, *Collect now*) is stored ``queued`` in the request and
holds the tenant's place under the same constraint; the task that carries it out takes it
over (``live_run_take_queued``: ``queued`` to ``running`` in one conditional UPDATE, after
the advisory lock on PostgreSQL), so a task delivered twice starts it once.

Even without this lock nothing could be charged twice (attempt keys are unique per tenant and
GoCardless answers a repeated ``Idempotency-Key`` with the payment it already made); the lock
keeps two runs from doing the same work and from interleaving their counts.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from reconciliation.collection.models import CollectionRun, RunKind, RunState

# First key of the two-int advisory lock space: "collection run" (the tenant id is the second).
_ADVISORY_CLASS = 0x6D6C6331  # "mlc1"


def _lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "COLLECTION_RUN_LEASE_SECONDS", 300))


def _advisory(sql: str, tenant_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(sql, [_ADVISORY_CLASS, tenant_id])
        return bool(cursor.fetchone()[0])


def _abandon(run: CollectionRun, why: str) -> None:
    updated = CollectionRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
        state=RunState.ABANDONED, finished_at=timezone.now(), error=why
    )
    if updated:
        audit_record(
            actor=Actor.system("collection"),
            action="collection.run_abandoned",
            tenant=run.tenant,
            obj=run,
            message=why,
        )


def live_run_acquire(*, run: CollectionRun) -> bool:
    """Make the unsaved live ``run`` the tenant's running run; False if another one is."""
    tenant = run.tenant
    postgres = connection.vendor == "postgresql"
    if postgres and not _advisory("SELECT pg_try_advisory_lock(%s, %s)", tenant.pk):
        return False
    try:
        return _take_over(run, postgres=postgres)
    except BaseException:
        # Never keep the session lock of a run that did not start: with persistent
        # connections it would refuse this tenant's runs until the connection closes.
        if postgres:
            live_run_release(run=run)
        raise


def _take_over(run: CollectionRun, *, postgres: bool) -> bool:
    tenant = run.tenant
    stale = CollectionRun.objects.filter(
        tenant=tenant, kind=RunKind.LIVE, state=RunState.RUNNING
    ).first()
    if stale is not None:
        if postgres:
            _abandon(stale, "its process ended without finishing (advisory lock released)")
        elif stale.heartbeat_at and stale.heartbeat_at < timezone.now() - _lease():
            _abandon(stale, "no heartbeat within the lease; its process is presumed dead")
        else:
            return False
    run.state, run.heartbeat_at = RunState.RUNNING, timezone.now()
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        if postgres:
            live_run_release(run=run)
        return False
    return True


def live_run_take_queued(*, run: CollectionRun) -> bool:
    """Make the stored queued live ``run`` running; False if it is not queued any more (a
    second delivery of its task) or, on PostgreSQL, another process holds the tenant's lock
    at this moment (the run stays queued; ``runs.queued_runs_resume`` hands it out again)."""
    postgres = connection.vendor == "postgresql"
    if postgres and not _advisory("SELECT pg_try_advisory_lock(%s, %s)", run.tenant_id):
        return False
    now = timezone.now()
    try:
        taken = CollectionRun.objects.filter(
            pk=run.pk, kind=RunKind.LIVE, state=RunState.QUEUED
        ).update(state=RunState.RUNNING, heartbeat_at=now)
    except BaseException:
        if postgres:
            live_run_release(run=run)
        raise
    if not taken:
        if postgres:
            live_run_release(run=run)
        return False
    run.state, run.heartbeat_at = RunState.RUNNING, now
    return True


def live_run_is_dead(*, run: CollectionRun, now=None) -> bool:
    """Whether the process carrying out the running ``run`` is gone (killed, out of memory, a
    lost machine): on PostgreSQL nobody holds the tenant's advisory lock (the server drops it
    with the dead process's connection); on SQLite no heartbeat within the lease."""
    if connection.vendor == "postgresql":
        if not _advisory("SELECT pg_try_advisory_lock(%s, %s)", run.tenant_id):
            return False
        _advisory("SELECT pg_advisory_unlock(%s, %s)", run.tenant_id)
        return True
    now = now or timezone.now()
    return run.heartbeat_at is None or run.heartbeat_at < now - _lease()


def live_run_abandon(*, run: CollectionRun, why: str) -> None:
    _abandon(run, why)


def live_run_heartbeat(*, run: CollectionRun) -> None:
    run.heartbeat_at = timezone.now()
    CollectionRun.objects.filter(pk=run.pk).update(heartbeat_at=run.heartbeat_at)


def live_run_release(*, run: CollectionRun) -> None:
    if connection.vendor == "postgresql":
        _advisory("SELECT pg_advisory_unlock(%s, %s)", run.tenant_id)
