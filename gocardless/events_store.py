"""Storing GoCardless events (webhooks, polling) and queueing their processing.

Storage (``events_store``) is idempotent: one row per (tenant, event id), enforced by a unique
constraint, so duplicate deliveries and polling overlap cost nothing. Processing is
``event_processing.py``; this module is on the webhook's request path and stays small.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from gocardless.models import GoCardlessEvent

# resource_type → the key in ``links`` naming the resource the event is about.
RESOURCE_LINK = {
    "payments": "payment",
    "mandates": "mandate",
    "payouts": "payout",
    "refunds": "refund",
    "billing_requests": "billing_request",
    "customers": "customer",
    "creditors": "creditor",
    "subscriptions": "subscription",
    "instalment_schedules": "instalment_schedule",
}
# Events GoCardless files under another resource than the one they change: a bounced
# payout is a ``creditors`` event whose ``links.payout`` names the payout (API notes, event
# catalogue). We store it under the payout, so processing re-fetches the payout, its status
# becomes ``bounced`` and the ``payout_bounced`` signal fires like any status change.
FILED_UNDER = {("creditors", "bounced_payout"): "payouts"}


class MalformedEvent(ValueError):
    pass


def event_fields(event: dict) -> dict:
    """Columns for one event from the API/webhook JSON; raises MalformedEvent."""
    if not isinstance(event, dict):
        raise MalformedEvent("event is not an object")
    event_id, resource_type = event.get("id"), event.get("resource_type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 40:
        raise MalformedEvent("event without a valid id")
    if not isinstance(resource_type, str) or not isinstance(event.get("action"), str):
        raise MalformedEvent(f"event {event_id} without resource_type/action")
    links = event.get("links") if isinstance(event.get("links"), dict) else {}
    details = event.get("details") if isinstance(event.get("details"), dict) else {}
    created = event.get("created_at")
    filed_under = FILED_UNDER.get((resource_type, event["action"]))
    if filed_under and links.get(RESOURCE_LINK[filed_under]):
        resource_type = filed_under  # the raw JSON keeps what GoCardless said
    return {
        "event_id": event_id,
        "resource_type": resource_type[:50],
        "action": event["action"][:60],
        "resource_id": str(links.get(RESOURCE_LINK.get(resource_type, ""), ""))[:40],
        "links": links,
        "details": details,
        "raw": event,
        "created_at": parse_datetime(created) if isinstance(created, str) else None,
    }


def events_store(*, tenant, events: list[dict], source: str, delivery=None) -> list[int]:
    """Store events once per (tenant, event id); returns the pks of those not yet processed
    (new ones, and earlier ones still waiting, which polling must not skip).

    This is on the webhook's request path, so it costs two statements: a lookup of the batch's
    ids through the unique (tenant, event_id) index, then one INSERT of the new rows, whose pks
    the database returns. A concurrent delivery of the same events makes the INSERT collide;
    then the rows are stored ignoring conflicts and read back.
    """
    fields: dict[str, dict] = {}
    for event in events:
        row = event_fields(event)
        fields.setdefault(row["event_id"], row)  # the same event twice in one batch: once
    if not fields:
        return []
    existing = GoCardlessEvent.objects.filter(tenant=tenant, event_id__in=list(fields))
    pending = []
    for event_id, pk, processed_at in existing.values_list("event_id", "pk", "processed_at"):
        fields.pop(event_id)
        if processed_at is None:
            pending.append(pk)
    rows = [
        GoCardlessEvent(tenant=tenant, delivery=delivery, source=source, **row)
        for row in fields.values()
    ]
    if not rows:
        return pending
    try:
        with transaction.atomic():
            created = GoCardlessEvent.objects.bulk_create(rows)
        if all(row.pk for row in created):
            return pending + [row.pk for row in created]
    except IntegrityError:
        pass  # lost a race with another delivery of the same events
    GoCardlessEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        GoCardlessEvent.objects.filter(
            tenant=tenant, event_id__in=[*fields, *(r.event_id for r in rows)]
        )
        .filter(processed_at__isnull=True)
        .values_list("pk", flat=True)
    )


def events_queue(*, event_pks: list[int]) -> None:
    """Queue processing of a batch (one task per batch) so that it runs after the surrounding
    transaction commits.

    With django-q2's ORM broker on our own database, the task row is written INSIDE the
    transaction: it becomes visible at the same commit as the events (no extra commit on the
    request path, and no window where events are committed but the task is lost). With Redis,
    or in sync mode, the task is sent from ``on_commit``. Either way the sweeper picks up
    anything a lost task left behind.
    """
    if not event_pks:
        return
    pks = list(event_pks)
    from django_q.conf import Conf
    from django_q.tasks import async_task

    def enqueue():
        # save=False: a successful batch leaves no django-q result row. Its outcome is on the
        # events, and saving it made the cluster's monitor lock and load up to Q_SAVE_LIMIT
        # earlier results per task to prune them. A failed task is still saved.
        async_task("gocardless.tasks.events_process_task", pks, group="gocardless-events",
                   save=False)

    same_database = Conf.ORM == transaction.get_connection().alias and not Conf.SYNC
    if same_database and transaction.get_connection().in_atomic_block:
        enqueue()
    else:
        transaction.on_commit(enqueue)
