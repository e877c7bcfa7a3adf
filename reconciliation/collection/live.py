"""A live run: the one place payments are created, safely against crashes and repeats.

``run_live`` (auto mode, *Retry now*, and the approval of a preview) holds the tenant's
live-run lock (``locking.py``) and, only while the copy of Exact is current
(``freshness.py``):

1. resubmits the attempts a crashed run left *pending* (same keys, so GoCardless answers
   with any payment it already made), each on a charge date it still accepts;
2. evaluates the open invoices (held to the approved preview, if any) and stores the lines;
3. for each line to collect, writes the attempt before sending its payment
   (``submission.py``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from django.utils import timezone

from core.audit import Actor, audit_record
from core.calendars import tenant_today
from gocardless.models import Mandate
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
)
from reconciliation.collection.previews import plans_restrict_to_preview, preview_collect_ids
from reconciliation.collection.run_records import RunRefused, run_actor, run_count, run_items
from reconciliation.collection.selection import Plan, selection_evaluate
from reconciliation.collection.submission import attempt_redate, attempt_submit, attempts_write

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 25  # payments between heartbeats of a live run


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
    CollectionItem.objects.bulk_create(run_items(run, plans), batch_size=500)
    run.save(update_fields=["evaluated", "to_collect", "skipped", "totals"])
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
    today = tenant_today(tenant)
    actor = run_actor(user, trigger)
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
        client = _client_for_run(tenant=tenant, client=client)
        tally = _Tally(run)
        _resume_pending(tenant=tenant, today=today, client=client, actor=actor, tally=tally)
        plans = _plans_store(
            run=run, preview=preview, today=today, only_receivables=only_receivables
        )
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
