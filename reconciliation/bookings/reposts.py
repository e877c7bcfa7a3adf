"""*Re-post* off the request: a person's selection becomes one ``RepostBatch`` per company and
one background task per batch; the task re-posts each booking once (``posting.booking_repost``:
exactly-once, an unknown outcome looked up first, audited only when accepted) and writes its
progress on the batch after every booking.

A batch whose task is lost (no worker running, the worker killed) is never silently stuck: it
shows as waiting or stopped since a given time, and *Run again* queues it again. Bookings the
batch already handled are skipped, and two tasks of one batch never run at once (the second
leaves a batch whose heartbeat is fresh)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.display import local_time_display

from .display import booking_sentence
from .models import Booking, RepostBatch, RepostState
from .posting import OUTCOME_WORDS, booking_repost

logger = logging.getLogger(__name__)

TASK = "reconciliation.bookings.tasks.repost_batch_task"
# A batch not picked up, or without a heartbeat, for this long has lost its task. One
# booking's post takes seconds (Exact's rate limit may hold it up to a minute).
LOST_AFTER = timedelta(minutes=5)
POSTED = ("posted", "found")
EXTRA_WORDS = {
    "gone": "it no longer exists",
    "error": "an unexpected error stopped it (the server log has the details)",
}


def outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome) or EXTRA_WORDS.get(outcome) or outcome.replace("_", " ")


def repost_batches_create(*, bookings, user) -> list[RepostBatch]:
    """One batch per company of the selected ``bookings`` (a queryset the user may re-post),
    each queued as one task once the transaction commits. Nothing is posted here."""
    by_tenant: dict[int, list[int]] = defaultdict(list)
    for pk, tenant_id in bookings.order_by("id").values_list("pk", "tenant_id"):
        by_tenant[tenant_id].append(pk)
    batches = []
    with transaction.atomic():
        for tenant_id, ids in sorted(by_tenant.items()):
            batch = RepostBatch.objects.create(
                tenant_id=tenant_id,
                requested_by=user,
                requested_by_name=user.get_username() if user else "",
                booking_ids=ids,
                total=len(ids),
            )
            _enqueue_on_commit(batch.pk)
            batches.append(batch)
    return batches


def _enqueue_on_commit(batch_pk: int) -> None:
    """Queue the batch's task once the transaction commits. Should the broker be down, the
    batch stays waiting, shows so, and *Run again* queues it later: the person's request (its
    transaction already committed) gets no error page."""

    def send() -> None:
        from django_q.tasks import async_task

        try:
            async_task(TASK, batch_pk, group="bookings.repost")
        except Exception:
            logger.warning("re-post batch %s: could not be queued", batch_pk, exc_info=True)

    transaction.on_commit(send)


def repost_batch_rerun(*, batch: RepostBatch, now=None) -> bool:
    """Queue a lost batch again (its handled bookings are skipped); False when it is not lost
    (finished, or its task is still alive)."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = RepostBatch.objects.select_for_update().get(pk=batch.pk)
        if not batch_lost(batch, now=now):
            return False
        batch.state = RepostState.WAITING
        batch.queued_at = now
        batch.heartbeat_at = None
        batch.runs += 1
        batch.save()
        _enqueue_on_commit(batch.pk)
    return True


def batch_lost(batch: RepostBatch, *, now=None) -> bool:
    """Its task is gone: waiting longer than ``LOST_AFTER`` for a worker, or running without a
    heartbeat for that long."""
    now = now or timezone.now()
    if batch.state == RepostState.WAITING:
        return batch.queued_at < now - LOST_AFTER
    if batch.state == RepostState.RUNNING:
        last = batch.heartbeat_at or batch.started_at or batch.queued_at
        return last < now - LOST_AFTER
    return False


def repost_batch_run(*, batch_pk: int, api=None, now=None) -> str:
    """The task: re-post the batch's bookings not handled yet, one by one, recording each."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = RepostBatch.objects.select_for_update().filter(pk=batch_pk).first()
        if batch is None:
            return "gone"
        if batch.state == RepostState.FINISHED:
            return "finished already"
        if batch.state == RepostState.RUNNING and not batch_lost(batch, now=now):
            return "running elsewhere"
        batch.state = RepostState.RUNNING
        batch.started_at = batch.started_at or now
        batch.heartbeat_at = now
        batch.save(update_fields=["state", "started_at", "heartbeat_at"])
    user = batch.requested_by
    actor = Actor.for_user(user) if user else Actor.system(f"re-post by {batch.requested_by_name}")
    handled = {r["booking"] for r in batch.results}
    for pk in batch.booking_ids:
        if pk in handled:
            continue
        booking = Booking.objects.filter(pk=pk, tenant_id=batch.tenant_id).first()
        if booking is None:
            outcome, what = "gone", f"Booking {pk}"
        else:
            what = booking_sentence(booking)
            try:
                outcome = booking_repost(booking=booking, actor=actor, api=api)
            except Exception:  # one bad booking must not stop the others
                logger.exception("re-post batch %s: booking %s failed", batch_pk, pk)
                outcome = "error"
        _record(batch_pk, pk, what, outcome)
    with transaction.atomic():
        batch = RepostBatch.objects.select_for_update().get(pk=batch_pk)
        batch.state = RepostState.FINISHED
        batch.finished_at = timezone.now()
        batch.heartbeat_at = batch.finished_at
        batch.save(update_fields=["state", "finished_at", "heartbeat_at"])
    return "finished"


def _record(batch_pk: int, booking_pk: int, what: str, outcome: str) -> None:
    with transaction.atomic():
        batch = RepostBatch.objects.select_for_update().get(pk=batch_pk)
        if any(r["booking"] == booking_pk for r in batch.results):
            return  # a second task of a batch thought lost got here first
        posted = outcome in POSTED
        batch.results = [
            *batch.results,
            {
                "booking": booking_pk,
                "what": what,
                "outcome": outcome,
                "words": outcome_words(outcome),
                "posted": posted,
            },
        ]
        batch.done = len(batch.results)
        batch.failed = sum(1 for r in batch.results if not r["posted"])
        batch.heartbeat_at = timezone.now()
        batch.save(update_fields=["results", "done", "failed", "heartbeat_at"])


def batch_status(batch: RepostBatch, *, now=None) -> str:
    """Where the batch is, as one sentence (times in the company's zone)."""
    now = now or timezone.now()
    tenant = batch.tenant

    def when(moment) -> str:
        return local_time_display(moment, tenant)

    posted = batch.done - batch.failed
    if batch.state == RepostState.FINISHED:
        return (
            f"Finished {when(batch.finished_at)}: {posted} of {batch.total} re-posted, "
            f"{batch.failed} not re-posted."
        )
    if batch.state == RepostState.WAITING:
        if batch_lost(batch, now=now):
            return (
                f"Waiting for a worker since {when(batch.queued_at)}: no worker has picked it "
                "up (is the background worker running?). Run it again once it is."
            )
        return f"Waiting for a worker since {when(batch.queued_at)}."
    last = batch.heartbeat_at or batch.started_at or batch.queued_at
    if batch_lost(batch, now=now):
        return (
            f"Stopped at {batch.done} of {batch.total} since {when(last)}: its worker was lost. "
            "Run it again to re-post the rest."
        )
    return f"Re-posting: {batch.done} of {batch.total} handled, {batch.failed} not re-posted."


def batch_progress(batch: RepostBatch, *, now=None) -> dict:
    """The JSON mlc/progress.js reads."""
    now = now or timezone.now()
    return {
        "done": batch.state == RepostState.FINISHED or batch_lost(batch, now=now),
        "fields": {
            "status": batch_status(batch, now=now),
            "progress": f"{batch.done} of {batch.total}",
            "failed": str(batch.failed),
        },
        "value": batch.done,
        "max": batch.total,
    }
