"""Collection runs: preview, live, and approval of a preview.

- ``run_preview`` evaluates and stores what a run would do. It never calls GoCardless.
  In *review* mode it waits for approval (and supersedes the previous unapproved preview).
- ``run_approve`` submits exactly the approved preview: a live run restricted to the
  preview's *collect* lines, each collected only if it still evaluates to the same amount,
  currency, mandate and instalments, on the previewed charge date (or, if that date can no
  longer be met, not at all: "changed since the preview" — a fresh preview shows it).
- ``run_live`` (auto mode, and approval) holds the tenant's live-run lock, first resubmits
  attempts a crashed run left *pending* (same keys), then writes each attempt before
  sending its payment.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.calendars import tenant_today
from gocardless.models import Mandate
from reconciliation.collection.charge_dates import earliest_charge_date
from reconciliation.collection.freshness import exact_copy_problem
from reconciliation.collection.locking import (
    live_run_acquire,
    live_run_heartbeat,
    live_run_release,
)
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
    RunTrigger,
    SkipReason,
)
from reconciliation.collection.selection import Plan, selection_evaluate
from reconciliation.collection.submission import attempt_redate, attempt_submit, attempts_write
from tenants.models import CollectionMode

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 25  # payments between heartbeats of a live run


class RunRefused(Exception):
    """A request for a run that may not happen now (shown to the user as a message)."""


def _actor(user, trigger: str) -> Actor:
    if user is not None:
        return Actor.for_user(user)
    if trigger == RunTrigger.WEBHOOK:
        return Actor.webhook("exact")
    return Actor.schedule("collection.run")


def _totals(plans: list[Plan]) -> dict[str, str]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for p in plans:
        if p.decision == Decision.COLLECT:
            sums[p.currency] += p.amount
    return {currency: str(total) for currency, total in sorted(sums.items())}


def _items(run: CollectionRun, plans: list[Plan]) -> list[CollectionItem]:
    return [
        CollectionItem(
            run=run,
            tenant_id=run.tenant_id,
            receivable_exact_id=p.receivable_exact_id,
            invoice_number=p.invoice_number,
            account_exact_id=p.account_exact_id,
            account_label=p.account_label,
            due_date=p.due_date,
            currency=p.currency,
            outstanding=p.outstanding,
            amount=p.amount,
            charge_date=p.charge_date,
            mandate_gocardless_id=p.mandate_gocardless_id,
            scheme=p.scheme,
            parts=p.parts,
            decision=p.decision,
            reason=p.reason,
            detail=p.detail,
        )
        for p in plans
    ]


def _count(run: CollectionRun, plans: list[Plan]) -> None:
    run.evaluated = len(plans)
    run.to_collect = sum(1 for p in plans if p.decision == Decision.COLLECT)
    run.skipped = run.evaluated - run.to_collect
    run.totals = _totals(plans)


def run_preview(
    *, tenant, trigger: str, user=None, only_receivables: list | None = None
) -> CollectionRun:
    """Store what a run would collect and why not the rest; nothing is sent anywhere."""
    today = tenant_today(tenant)
    plans = selection_evaluate(tenant=tenant, today=today, only_receivables=only_receivables)
    awaiting = tenant.collection_mode == CollectionMode.REVIEW
    actor = _actor(user, trigger)
    with transaction.atomic():
        run = CollectionRun(
            tenant=tenant,
            kind=RunKind.PREVIEW,
            trigger=trigger,
            triggered_by=user,
            as_of=today,
            only_receivables=[str(x) for x in only_receivables or []],
            state=RunState.AWAITING_APPROVAL if awaiting else RunState.COMPLETED,
            finished_at=timezone.now(),
        )
        _count(run, plans)
        run.save()
        CollectionItem.objects.bulk_create(_items(run, plans), batch_size=500)
        if awaiting:
            # An older preview of the same invoices shows a stale world: only the newest may
            # be approved. A preview of a few invoices (a webhook's new invoice, a changed
            # one) leaves the full daily preview awaiting; overlapping approvals cannot
            # double-charge (the second finds the first's attempts in flight).
            covered = set(run.only_receivables)
            older = CollectionRun.objects.filter(
                tenant=tenant, kind=RunKind.PREVIEW, state=RunState.AWAITING_APPROVAL
            ).exclude(pk=run.pk)
            stale = [
                p.pk
                for p in older.only("pk", "only_receivables")
                if not covered or (p.only_receivables and set(p.only_receivables) <= covered)
            ]
            CollectionRun.objects.filter(pk__in=stale).update(state=RunState.SUPERSEDED)
        audit_record(
            actor=actor,
            action="collection.preview_created",
            tenant=tenant,
            obj=run,
            after={"to_collect": run.to_collect, "skipped": run.skipped, "totals": run.totals},
            message=f"Preview: {run.to_collect} to collect, {run.skipped} not",
        )
    return run


def _restrict_to_preview(plans: list[Plan], preview: CollectionRun, tenant, today) -> None:
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


class _Tally:
    """What a live run sent: counted on the run as it goes, with a heartbeat every few."""

    def __init__(self, run: CollectionRun) -> None:
        self.run, self.sent = run, 0
        self.totals: dict[str, Decimal] = defaultdict(Decimal)

    def add(self, attempt: CollectionAttempt, state: str) -> None:
        self.sent += 1
        if state in (AttemptState.SUBMITTED, AttemptState.CONFIRMED, AttemptState.PAID_OUT):
            self.run.submitted += 1
            self.totals[attempt.currency] += attempt.amount
        else:
            self.run.errors += 1
        if self.sent % HEARTBEAT_EVERY == 0:
            live_run_heartbeat(run=self.run)


def _resume_pending(*, tenant, today, client, actor: Actor, tally: _Tally) -> None:
    """Resubmit attempts a crashed run left pending (same key: GoCardless dedupes), each on a
    charge date GoCardless still accepts (``attempt_redate``)."""
    pending = list(
        CollectionAttempt.objects.filter(tenant=tenant, state=AttemptState.PENDING)
        .select_related("tenant")
        .order_by("id")
    )
    mandates = {
        mandate.gocardless_id: mandate
        for mandate in Mandate.objects.filter(
            tenant=tenant, gocardless_id__in={a.mandate_gocardless_id for a in pending}
        )
    }
    for attempt in pending:
        attempt_redate(
            attempt=attempt,
            mandate=mandates.get(attempt.mandate_gocardless_id),
            today=today,
            actor=actor,
        )
        tally.add(attempt, attempt_submit(attempt=attempt, client=client, actor=actor))


def run_live(
    *,
    tenant,
    trigger: str,
    user=None,
    preview: CollectionRun | None = None,
    only_receivables: list | None = None,
    client=None,
) -> CollectionRun:
    """Collect now. Returns the run; a refused run (another is active) is stored as such."""
    from reconciliation.customers.config import gocardless_client_for

    today = tenant_today(tenant)
    actor = _actor(user, trigger)
    run = CollectionRun(
        tenant=tenant,
        kind=RunKind.LIVE,
        trigger=trigger,
        triggered_by=user,
        as_of=today,
        preview=preview,
        only_receivables=[str(x) for x in only_receivables or []],
    )
    if not live_run_acquire(run=run):
        run.state, run.finished_at = RunState.REFUSED, timezone.now()
        run.error = "another live run of this tenant is active"
        run.save()
        return run
    try:
        # Before anything is sent, pending attempts included: they were decided on a copy of
        # Exact that must still be current when their payment goes out.
        stale = exact_copy_problem(tenant=tenant)
        if stale:
            raise RunRefused(f"Not collecting: {stale}")
        client = client or gocardless_client_for(tenant=tenant)
        if client is None:
            raise RunRefused("GoCardless is not connected")
        tally = _Tally(run)
        _resume_pending(tenant=tenant, today=today, client=client, actor=actor, tally=tally)
        previewed = None
        if preview is not None:
            previewed = set(
                preview.items.filter(decision=Decision.COLLECT).values_list(
                    "receivable_exact_id", flat=True
                )
            )
        plans = selection_evaluate(
            tenant=tenant,
            today=today,
            only_receivables=only_receivables,
            previewed=previewed,
        )
        if preview is not None:
            _restrict_to_preview(plans, preview, tenant, today)
        _count(run, plans)
        CollectionItem.objects.bulk_create(_items(run, plans), batch_size=500)
        run.save(update_fields=["evaluated", "to_collect", "skipped", "totals"])
        for plan in plans:
            if plan.decision != Decision.COLLECT:
                continue
            for attempt in attempts_write(tenant=tenant, run=run, plan=plan, actor=actor):
                tally.add(attempt, attempt_submit(attempt=attempt, client=client, actor=actor))
        run.submitted_totals = {c: str(t) for c, t in sorted(tally.totals.items())}
        run.state = RunState.COMPLETED
    except RunRefused as exc:
        # A condition the person can fix (e.g. GoCardless not connected): said plainly.
        run.state, run.error = RunState.FAILED, str(exc)[:2000]
    except Exception as exc:
        logger.exception("collection run %s failed", run.pk)
        run.state, run.error = RunState.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        run.finished_at = timezone.now()
        run.save()
        live_run_release(run=run)
        audit_record(
            actor=actor,
            action="collection.run_finished",
            tenant=tenant,
            obj=run,
            after={
                "state": run.state,
                "submitted": run.submitted,
                "errors": run.errors,
                "submitted_totals": run.submitted_totals,
            },
            message=run.error or f"{run.submitted} payments created",
        )
    return run


def run_approve(*, preview: CollectionRun, user, client=None) -> CollectionRun:
    """Submit the preview exactly as shown (see the module docstring)."""
    with transaction.atomic():
        locked = CollectionRun.objects.select_for_update().get(pk=preview.pk)
        if locked.kind != RunKind.PREVIEW or locked.state != RunState.AWAITING_APPROVAL:
            raise RunRefused(
                f"Run #{locked.pk} is {locked.get_state_display().lower()}, not awaiting approval"
            )
        tenant = locked.tenant
        if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
            # Switching collection off stops everything, an approval of an older preview too.
            raise RunRefused(f"Collection is off for {tenant}")
        locked.state = RunState.APPROVED
        locked.approved_by, locked.approved_at = user, timezone.now()
        locked.save(update_fields=["state", "approved_by", "approved_at"])
        audit_record(
            actor=Actor.for_user(user),
            action="collection.preview_approved",
            tenant=locked.tenant,
            obj=locked,
            after={"to_collect": locked.to_collect, "totals": locked.totals},
        )
    # The live run evaluates what the preview evaluated (all open invoices, or the preview's
    # own restriction): unchanged lines come out identical, and whatever would be collected
    # now but was not shown is listed as "not in the preview" instead of silently left out.
    live = run_live(
        tenant=locked.tenant,
        trigger=RunTrigger.APPROVAL,
        user=user,
        preview=locked,
        only_receivables=locked.only_receivables or None,
        client=client,
    )
    if live.state in (RunState.REFUSED, RunState.FAILED) and not live.attempts.exists():
        # Nothing was submitted (another live run was active, GoCardless not connected):
        # the approval did not happen, so the preview may be approved again.
        newer = CollectionRun.objects.filter(
            tenant=locked.tenant, kind=RunKind.PREVIEW, pk__gt=locked.pk
        ).exists()
        back = RunState.SUPERSEDED if newer else RunState.AWAITING_APPROVAL
        CollectionRun.objects.filter(pk=locked.pk, state=RunState.APPROVED).update(
            state=back, approved_by=None, approved_at=None
        )
        audit_record(
            actor=Actor.for_user(user),
            action="collection.approval_not_run",
            tenant=locked.tenant,
            obj=locked,
            after={"state": back, "live_run": live.pk},
            message=f"Approval not carried out: {live.error or live.get_state_display()}",
        )
    return live


def run_start(*, tenant, trigger: str, user=None, only_receivables=None, client=None):
    """What the schedule, a webhook and *Collect now* call: the tenant's mode decides."""
    if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
        raise RunRefused(f"Collection is off for {tenant}")
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
