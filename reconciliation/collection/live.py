"""A live run: the one place payments are created, safely against crashes and repeats.

``run_live`` (auto mode, *Retry now*, and the approval of a preview) holds the tenant's
live-run lock (``locking.py``) and, only while the copy of Exact is current
(``freshness.py``):

1. resubmits the attempts a crashed run left *pending* (same keys, so GoCardless answers
   with any payment it already made), each on a charge date it still accepts;
2. evaluates the open invoices (held to the approved preview, if any) and stores the lines;
3. for each line to collect, writes the attempt before sending its payment
   (``submission.py``).

*Approve* and *Collect now* do not run it in the admin's request: ``live_run_queue`` stores
the run ``queued`` (holding the tenant's one place for a live run, so a second click is
refused) and queues ``tasks.queued_run_task``, which carries it out with
``live_run_execute_queued``. As it goes the run stores what it has sent (``planned``,
``submitted``, ``errors``, ``submitted_totals``) for the run page's progress.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.calendars import tenant_today
from core.queue import enqueue_on_commit
from gocardless.models import Mandate
from reconciliation.collection.freshness import exact_copy_problem
from reconciliation.collection.locking import (
    live_run_acquire,
    live_run_heartbeat,
    live_run_release,
    live_run_take_queued,
)
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
)
from reconciliation.collection.previews import plans_restrict_to_preview, preview_collect_ids
from reconciliation.collection.run_records import RunRefused, run_actor, run_count, run_items
from reconciliation.collection.selection import Plan, selection_evaluate
from reconciliation.collection.submission import attempt_redate, attempt_submit, attempts_write
from tenants.models import CollectionMode

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 25  # payments between heartbeats of a live run
PROGRESS_EVERY_NS = 1_000_000_000  # at least once a second the run page sees the counts move
# The task that carries out a queued run (queued by dotted path: tasks import services).
QUEUED_RUN_TASK = "reconciliation.collection.tasks.queued_run_task"


class _Tally:
    """What a live run sent: counted on the run as it goes, stored (with a heartbeat) every
    few payments or every second, whichever comes first, for the run page's progress."""

    def __init__(self, run: CollectionRun) -> None:
        self.run, self.sent = run, 0
        self.totals: dict[str, Decimal] = defaultdict(Decimal)
        self._saved = time.monotonic_ns()

    def add(self, attempt: CollectionAttempt, state: str) -> None:
        self.sent += 1
        if state in (AttemptState.SUBMITTED, AttemptState.CONFIRMED, AttemptState.PAID_OUT):
            self.run.submitted += 1
            self.totals[attempt.currency] += attempt.amount
        else:
            self.run.errors += 1
        self.run.submitted_totals = {c: str(t) for c, t in sorted(self.totals.items())}
        if (
            self.sent % HEARTBEAT_EVERY == 0
            or time.monotonic_ns() - self._saved >= PROGRESS_EVERY_NS
        ):
            self.save()

    def save(self) -> None:
        """The counts so far, and a heartbeat."""
        live_run_heartbeat(run=self.run)
        CollectionRun.objects.filter(pk=self.run.pk).update(
            planned=self.run.planned,
            submitted=self.run.submitted,
            errors=self.run.errors,
            submitted_totals=self.run.submitted_totals,
        )
        self._saved = time.monotonic_ns()


def _client_for_run(*, tenant, client):
    """The GoCardless client, once it is safe to send: raises ``RunRefused`` otherwise."""
    # Imported when called: a test that replaces it at its home sees every use.
    from reconciliation.customers.config import gocardless_client_for

    # Before anything is sent, pending attempts included: they were decided on a copy of
    # Exact that must still be current when their payment goes out.
    stale = exact_copy_problem(tenant=tenant)
    if stale:
        raise RunRefused(f"Not collecting: {stale}")
    client = client or gocardless_client_for(tenant=tenant)
    if client is None:
        raise RunRefused("GoCardless is not connected")
    return client


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
    tally.run.planned = len(pending)
    if pending:
        tally.save()
    for attempt in pending:
        attempt_redate(
            attempt=attempt,
            mandate=mandates.get(attempt.mandate_gocardless_id),
            today=today,
            actor=actor,
        )
        tally.add(attempt, attempt_submit(attempt=attempt, client=client, actor=actor))


def _plans_store(*, run: CollectionRun, preview, today, only_receivables) -> list[Plan]:
    """Evaluate (held to the approved preview, if any) and store the run's lines."""
    plans = selection_evaluate(
        tenant=run.tenant,
        today=today,
        only_receivables=only_receivables,
        previewed=preview_collect_ids(preview) if preview is not None else None,
    )
    if preview is not None:
        plans_restrict_to_preview(plans=plans, preview=preview, today=today)
    run_count(run, plans)
    run.planned += sum(p.parts for p in plans if p.decision == Decision.COLLECT)
    CollectionItem.objects.bulk_create(run_items(run, plans), batch_size=500)
    run.save(update_fields=["as_of", "evaluated", "to_collect", "skipped", "totals", "planned"])
    return plans


def _plans_send(*, run: CollectionRun, plans: list[Plan], client, actor: Actor, tally) -> None:
    for plan in plans:
        if plan.decision != Decision.COLLECT:
            continue
        for attempt in attempts_write(tenant=run.tenant, run=run, plan=plan, actor=actor):
            tally.add(attempt, attempt_submit(attempt=attempt, client=client, actor=actor))


def _run_finish(*, run: CollectionRun, actor: Actor) -> None:
    """Whatever happened: store the outcome, let go of the lock, audit it."""
    run.finished_at = timezone.now()
    run.save()
    live_run_release(run=run)
    audit_record(
        actor=actor,
        action="collection.run_finished",
        tenant=run.tenant,
        obj=run,
        after={
            "state": run.state,
            "submitted": run.submitted,
            "errors": run.errors,
            "submitted_totals": run.submitted_totals,
        },
        message=run.error or f"{run.submitted} payments created",
    )


def _live_run_new(*, tenant, trigger, user, preview, only_receivables) -> CollectionRun:
    return CollectionRun(
        tenant=tenant,
        kind=RunKind.LIVE,
        trigger=trigger,
        triggered_by=user,
        as_of=tenant_today(tenant),
        preview=preview,
        only_receivables=[str(x) for x in only_receivables or []],
    )


def _live_execute(*, run: CollectionRun, client) -> CollectionRun:
    """Carry out the running ``run`` (the tenant's lock is held): resume, evaluate, send."""
    tenant, preview = run.tenant, run.preview
    today = run.as_of = tenant_today(tenant)  # a queued run may start on a later day
    actor = run_actor(run.triggered_by, run.trigger)
    try:
        client = _client_for_run(tenant=tenant, client=client)
        tally = _Tally(run)
        _resume_pending(tenant=tenant, today=today, client=client, actor=actor, tally=tally)
        plans = _plans_store(
            run=run, preview=preview, today=today, only_receivables=run.only_receivables or None
        )
        tally.save()
        _plans_send(run=run, plans=plans, client=client, actor=actor, tally=tally)
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
        _run_finish(run=run, actor=actor)
    return run


def run_live(
    *,
    tenant,
    trigger: str,
    user=None,
    preview: CollectionRun | None = None,
    only_receivables: list | None = None,
    client=None,
) -> CollectionRun:
    """Collect now, in this process. Returns the run; a refused run (another is active) is
    stored as such."""
    run = _live_run_new(
        tenant=tenant,
        trigger=trigger,
        user=user,
        preview=preview,
        only_receivables=only_receivables,
    )
    if not live_run_acquire(run=run):
        run.state, run.finished_at = RunState.REFUSED, timezone.now()
        run.error = "another live run of this tenant is active"
        run.save()
        return run
    return _live_execute(run=run, client=client)


def live_run_active(tenant) -> CollectionRun | None:
    """The tenant's queued or running live run, if any."""
    return (
        CollectionRun.objects.filter(
            tenant=tenant, kind=RunKind.LIVE, state__in=(RunState.QUEUED, RunState.RUNNING)
        )
        .order_by("pk")
        .first()
    )


def live_run_queue(
    *,
    tenant,
    trigger: str,
    user=None,
    preview: CollectionRun | None = None,
    only_receivables: list | None = None,
) -> CollectionRun:
    """Store a live run ``queued`` (the tenant's one live run) and queue its task once the
    transaction commits. Raises ``RunRefused`` when another live run is queued or running
    (the partial unique constraint decides, whatever the timing of two clicks), and at once
    when it could not send now (Exact's copy stale, GoCardless not connected): the task
    checks again before it sends."""
    _client_for_run(tenant=tenant, client=None)
    run = _live_run_new(
        tenant=tenant,
        trigger=trigger,
        user=user,
        preview=preview,
        only_receivables=only_receivables,
    )
    run.state, run.heartbeat_at = RunState.QUEUED, timezone.now()
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        active = live_run_active(tenant)
        which = f"live run #{active.pk}" if active is not None else "another live run"
        state = active.get_state_display().split(" (")[0].lower() if active else "active"
        raise RunRefused(
            f"{tenant}: {which} is {state}; nothing new was started (wait until it has finished)."
        ) from None
    audit_record(
        actor=run_actor(user, trigger),
        action="collection.run_queued",
        tenant=tenant,
        obj=run,
        after={"kind": run.kind, "trigger": run.trigger, "preview": run.preview_id},
        message=f"Live run #{run.pk} queued",
    )
    enqueue_on_commit(QUEUED_RUN_TASK, run.pk, group="collection")
    return run


def live_run_execute_queued(*, run: CollectionRun, client=None) -> bool:
    """The task's half of a queued live run: take it over and carry it out. False when it
    was not queued any more (its task delivered twice, or already resumed)."""
    if not live_run_take_queued(run=run):
        return False
    tenant = run.tenant
    tenant.refresh_from_db(fields=["is_active", "collection_mode"])
    if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
        # Switched off between the click and the workers: nothing is sent.
        run.state = RunState.FAILED
        run.error = f"Collection was switched off for {tenant} before the run started"
        _run_finish(run=run, actor=run_actor(run.triggered_by, run.trigger))
        return True
    _live_execute(run=run, client=client)
    return True
