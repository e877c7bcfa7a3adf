"""A preview: what a run would collect and why not the rest, stored; nothing is sent.

In *review* mode the preview waits for approval (``approval.py``), and it supersedes the
older previews it covers: only the newest view of an invoice may be approved. The live run
that carries out an approval holds itself to the preview with ``plans_restrict_to_preview``.

*Collect now* in review mode queues the preview (``preview_queue``: stored ``queued`` at once,
one per tenant) and the task evaluates it (``preview_build_queued``): evaluating a large
administration takes longer than a page load should.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.calendars import tenant_today
from core.queue import enqueue_on_commit
from reconciliation.collection.charge_dates import earliest_charge_date
from reconciliation.collection.models import (
    CollectionItem,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
    SkipReason,
)
from reconciliation.collection.run_records import RunRefused, run_actor, run_count, run_items
from reconciliation.collection.selection import Plan, selection_evaluate
from tenants.models import CollectionMode


def _older_previews_supersede(run: CollectionRun) -> None:
    """An older preview of the same invoices shows a stale world: only the newest may be
    approved. A preview of a few invoices (a webhook's new invoice, a changed one) leaves
    the full daily preview awaiting; overlapping approvals cannot double-charge (the second
    finds the first's attempts in flight)."""
    covered = set(run.only_receivables)
    older = CollectionRun.objects.filter(
        tenant=run.tenant, kind=RunKind.PREVIEW, state=RunState.AWAITING_APPROVAL
    ).exclude(pk=run.pk)
    stale = [
        p.pk
        for p in older.only("pk", "only_receivables")
        if not covered or (p.only_receivables and set(p.only_receivables) <= covered)
    ]
    CollectionRun.objects.filter(pk__in=stale).update(state=RunState.SUPERSEDED)


def _preview_store(*, run: CollectionRun, plans: list[Plan], awaiting: bool, actor) -> None:
    """Counts, lines, state and the audit entry of an evaluated preview (in a transaction)."""
    run.state = RunState.AWAITING_APPROVAL if awaiting else RunState.COMPLETED
    run.finished_at = timezone.now()
    run_count(run, plans)
    run.save()
    CollectionItem.objects.bulk_create(run_items(run, plans), batch_size=500)
    if awaiting:
        _older_previews_supersede(run)
    audit_record(
        actor=actor,
        action="collection.preview_created",
        tenant=run.tenant,
        obj=run,
        after={"to_collect": run.to_collect, "skipped": run.skipped, "totals": run.totals},
        message=f"Preview: {run.to_collect} to collect, {run.skipped} not",
    )


def run_preview(
    *, tenant, trigger: str, user=None, only_receivables: list | None = None
) -> CollectionRun:
    """Store what a run would collect and why not the rest; nothing is sent anywhere."""
    today = tenant_today(tenant)
    plans = selection_evaluate(tenant=tenant, today=today, only_receivables=only_receivables)
    awaiting = tenant.collection_mode == CollectionMode.REVIEW
    with transaction.atomic():
        run = CollectionRun(
            tenant=tenant,
            kind=RunKind.PREVIEW,
            trigger=trigger,
            triggered_by=user,
            as_of=today,
            only_receivables=[str(x) for x in only_receivables or []],
        )
        _preview_store(run=run, plans=plans, awaiting=awaiting, actor=run_actor(user, trigger))
    return run


def preview_queue(*, tenant, trigger: str, user=None) -> CollectionRun:
    """Store a preview ``queued`` and queue its task (after the transaction commits).
    ``RunRefused`` while another preview of the tenant is queued (a second click)."""
    run = CollectionRun(
        tenant=tenant,
        kind=RunKind.PREVIEW,
        trigger=trigger,
        triggered_by=user,
        as_of=tenant_today(tenant),
        state=RunState.QUEUED,
        heartbeat_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        queued = CollectionRun.objects.filter(
            tenant=tenant, kind=RunKind.PREVIEW, state=RunState.QUEUED
        ).first()
        which = f"preview #{queued.pk}" if queued is not None else "a preview"
        raise RunRefused(
            f"{tenant}: {which} is already being prepared; nothing new was started."
        ) from None
    enqueue_on_commit("reconciliation.collection.tasks.queued_run_task", run.pk, group="collection")
    return run


def preview_build_queued(*, run: CollectionRun) -> bool:
    """The task's half of a queued preview: evaluate and store it. False when it was not
    queued any more (its task delivered twice); evaluating twice stores it once."""
    tenant = run.tenant
    today = tenant_today(tenant)
    try:
        plans = selection_evaluate(tenant=tenant, today=today)
    except Exception as exc:
        CollectionRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(
            state=RunState.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    with transaction.atomic():
        locked = CollectionRun.objects.select_for_update().select_related("tenant").get(pk=run.pk)
        if locked.state != RunState.QUEUED:
            return False
        locked.as_of = today
        mode = locked.tenant.collection_mode
        if not locked.tenant.is_active or mode == CollectionMode.OFF:
            locked.state, locked.finished_at = RunState.FAILED, timezone.now()
            locked.error = f"Collection was switched off for {locked.tenant} before it was ready"
            locked.save()
        else:
            actor = run_actor(locked.triggered_by, locked.trigger)
            _preview_store(
                run=locked, plans=plans, awaiting=mode == CollectionMode.REVIEW, actor=actor
            )
    run.refresh_from_db()
    return True


# --- holding a live run to an approved preview ----------------------------------------------


def preview_collect_ids(preview: CollectionRun) -> set:
    """The receivables the preview would collect."""
    return set(
        preview.items.filter(decision=Decision.COLLECT).values_list(
            "receivable_exact_id", flat=True
        )
    )


def plans_restrict_to_preview(*, plans: list[Plan], preview: CollectionRun, today) -> None:
    """Keep only what the approved preview showed, unchanged; mark everything else."""
    shown = {
        item.receivable_exact_id: item
        for item in preview.items.filter(decision=Decision.COLLECT).select_related(None)
    }
    for plan in plans:
        if plan.decision != Decision.COLLECT:
            continue
        item = shown.get(plan.receivable_exact_id)
        if item is None:
            plan.skip(SkipReason.NOT_IN_PREVIEW)
            continue
        changed = [
            name
            for name, now, then in (
                ("amount", plan.amount, item.amount),
                ("currency", plan.currency, item.currency),
                ("mandate", plan.mandate_gocardless_id, item.mandate_gocardless_id),
                ("instalments", plan.parts, item.parts),
                ("due date", plan.due_date, item.due_date),
            )
            if now != then
        ]
        # Never before the mandate's next possible charge date as the mirror knows it now.
        earliest = plan.earliest_charge_date or earliest_charge_date(
            scheme=plan.scheme, today=today, next_possible=None
        )
        if item.charge_date is None or item.charge_date < earliest:
            changed.append("charge date can no longer be met")
        if changed:
            plan.skip(SkipReason.CHANGED_SINCE_PREVIEW, ", ".join(changed))
        else:
            plan.charge_date = item.charge_date  # exactly what was shown
