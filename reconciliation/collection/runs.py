"""Collection runs: where a run starts, and the names callers import.

- ``run_start`` (the schedule, an Exact webhook, *Collect now*): the tenant's mode decides —
  *review* stores a preview, *auto* collects at once.
- ``run_preview`` (``previews.py``) evaluates and stores what a run would do. It never calls
  GoCardless. In *review* mode it waits for approval (and supersedes the previous unapproved
  preview).
- ``run_approve`` (``approval.py``) submits exactly the approved preview: a live run
  restricted to the preview's *collect* lines, each collected only if it still evaluates to
  the same amount, currency, mandate and instalments, on the previewed charge date (or, if
  that date can no longer be met, not at all: "changed since the preview" — a fresh preview
  shows it).
- ``run_live`` (``live.py``; auto mode, *Retry now*, and approval) holds the tenant's
  live-run lock, first resubmits attempts a crashed run left *pending* (same keys), then
  writes each attempt before sending its payment.

From the admin, nothing runs in the request: ``run_start_queued`` (*Collect now*) and
``approval_queue`` (*Approve*) store the run ``queued`` and queue ``tasks.queued_run_task``,
which calls ``queued_run_execute``. A queued run whose task never started (lost by the broker,
the workers down) is handed out again by ``queued_runs_resume`` on the 15-minute sweep; a
second delivery is harmless, since only one takes a queued run over.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from core.queue import enqueue_on_commit
from reconciliation.collection.approval import approval_carry_out, approval_queue, run_approve
from reconciliation.collection.live import (
    QUEUED_RUN_TASK,
    live_run_active,
    live_run_execute_queued,
    live_run_queue,
    run_live,
)
from reconciliation.collection.locking import live_run_abandon, live_run_is_dead
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
    RunTrigger,
)
from reconciliation.collection.previews import preview_build_queued, preview_queue, run_preview
from reconciliation.collection.run_records import RunRefused
from tenants.models import CollectionMode

__all__ = [
    "RunRefused",
    "approval_queue",
    "queued_run_execute",
    "queued_runs_resume",
    "run_approve",
    "run_live",
    "run_preview",
    "run_start",
    "run_start_queued",
]

# A run queued longer than this without its task starting it is handed out again.
QUEUED_GRACE = dt.timedelta(minutes=10)
# A payment whose creation had an unknown outcome is sent again after this long.
PENDING_RESEND_AFTER = dt.timedelta(minutes=10)


def _collection_on(tenant) -> None:
    if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
        raise RunRefused(f"Collection is off for {tenant}")


def run_start(*, tenant, trigger: str, user=None, only_receivables=None, client=None):
    """What the schedule, a webhook and *Collect now* call: the tenant's mode decides."""
    _collection_on(tenant)
    if tenant.collection_mode == CollectionMode.REVIEW:
        return run_preview(
            tenant=tenant, trigger=trigger, user=user, only_receivables=only_receivables
        )
    return run_live(
        tenant=tenant,
        trigger=trigger,
        user=user,
        only_receivables=only_receivables,
        client=client,
    )


def run_start_queued(*, tenant, trigger: str, user=None) -> CollectionRun:
    """*Collect now* from the admin: as ``run_start``, but the run is stored ``queued`` and
    carried out by the task workers. ``RunRefused``: collection off, or the tenant's live run
    (auto) or preview (review) is already queued or running."""
    _collection_on(tenant)
    if tenant.collection_mode == CollectionMode.REVIEW:
        return preview_queue(tenant=tenant, trigger=trigger, user=user)
    return live_run_queue(tenant=tenant, trigger=trigger, user=user)


def queued_run_execute(run_id: int, *, client=None) -> str:
    """What ``tasks.queued_run_task`` calls: build the queued preview, or carry out the
    queued live run (an approval's, or Collect now's). Says what happened in one line."""
    run = (
        CollectionRun.objects.select_related("tenant", "preview", "triggered_by")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return f"run {run_id}: no such run"
    if run.kind == RunKind.PREVIEW:
        started = preview_build_queued(run=run)
    elif run.preview_id:
        started = approval_carry_out(live=run, client=client)
    else:
        started = live_run_execute_queued(run=run, client=client)
    if not started:
        run.refresh_from_db()
        return f"run {run.pk}: not queued (it is {run.state}); nothing done"
    return f"run {run.pk}: {run.state}"


def dead_runs_resume(*, now: dt.datetime | None = None) -> list[str]:
    """Live runs whose process died mid-run are marked abandoned and their work is resumed by
    a new queued run (same trigger, same person, same invoices if it was limited to some):
    it first resumes the payments the dead run had written but not confirmed, then selects
    again what is still due; attempt keys and GoCardless' idempotency keys make sure nothing
    is charged twice. Without this a scheduled run killed half-way waited for the next slot
    (found by the chaos month, docs/chaos.md). A run carrying out an approved preview is only
    marked abandoned: what it may collect is what a person approved, so they approve again."""
    now = now or timezone.now()
    said = []
    running = CollectionRun.objects.filter(kind=RunKind.LIVE, state=RunState.RUNNING)
    for run in running.select_related("tenant", "triggered_by").order_by("pk"):
        if not live_run_is_dead(run=run, now=now):
            continue
        then = ("approve the preview again to resume" if run.preview_id
                else "a new run resumes its work")
        live_run_abandon(run=run, why=f"its process ended without finishing; {then}")
        if run.preview_id:
            said.append(f"run {run.pk} died mid-run (an approval): approve again to resume")
            continue
        try:
            resumed = live_run_queue(tenant=run.tenant, trigger=run.trigger,
                                     user=run.triggered_by,
                                     only_receivables=run.only_receivables or None)
        except RunRefused as exc:
            said.append(f"run {run.pk} died mid-run; not resumed now: {exc}")
            continue
        said.append(f"run {run.pk} died mid-run: run {resumed.pk} resumes its work")
    return said


def pending_attempts_resend(*, now: dt.datetime | None = None) -> list[str]:
    """Payments whose creation had an unknown outcome (a timeout, a 5xx, a 429 beyond
    patience) stay *pending*, to be sent again with the same idempotency key. They used to
    wait for the company's next run: with a schedule of days 1 and 15, two weeks (found by the
    chaos month, docs/chaos.md). Now, when such attempts are older than PENDING_RESEND_AFTER
    and no live run of the company is under way, the sweep queues a live run limited to their
    invoices: it resends them (GoCardless answers a repeated key with the payment it made, if
    it made one) and collects nothing else."""
    now = now or timezone.now()
    pending = CollectionAttempt.objects.filter(
        state=AttemptState.PENDING, updated_at__lt=now - PENDING_RESEND_AFTER,
        tenant__is_active=True,
    ).exclude(tenant__collection_mode=CollectionMode.OFF)
    said = []
    for tenant_id in sorted(set(pending.values_list("tenant_id", flat=True))):
        attempts = pending.filter(tenant_id=tenant_id).select_related("tenant")
        tenant = attempts[0].tenant
        if live_run_active(tenant) is not None:
            continue  # that run resumes them itself
        receivables = sorted({str(a.receivable_exact_id) for a in attempts})
        try:
            run = live_run_queue(tenant=tenant, trigger=RunTrigger.RESEND,
                                 only_receivables=receivables)
        except RunRefused as exc:
            said.append(f"{tenant}: pending payments not resent now: {exc}")
            continue
        said.append(f"{tenant}: run {run.pk} resends {len(receivables)} pending payment(s)")
    return said


def queued_runs_resume(*, now: dt.datetime | None = None) -> list[int]:
    """Queued runs whose task has not started them within ``QUEUED_GRACE``: their task is
    queued again (and the clock restarted, so the next sweep waits again)."""
    now = now or timezone.now()
    cutoff = now - QUEUED_GRACE
    stale = CollectionRun.objects.filter(state=RunState.QUEUED).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    resumed = []
    for pk in stale.order_by("pk").values_list("pk", flat=True):
        if CollectionRun.objects.filter(pk=pk, state=RunState.QUEUED).update(heartbeat_at=now):
            enqueue_on_commit(QUEUED_RUN_TASK, pk, group="collection")
            resumed.append(pk)
    return resumed
