"""Storing GoCardless events (webhooks, polling) and queueing their processing.

Storage (``events_store``) is idempotent: one row per (tenant, event id), enforced by a unique
constraint, so duplicate deliveries and polling overlap cost nothing. An event that cannot be
used (payload.py: wrong types, NUL, an impossible timestamp…) is stored QUARANTINED instead:
with its reason, never processed, shown in the admin; the rest of its batch goes on.
Processing is ``event_processing.py``; this module is on the webhook's request path and
stays small.
"""

from __future__ import annotations

import functools
import json
import logging

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from gocardless.models import EventOutcome, GoCardlessEvent
from gocardless.payload import ID, NAME, created_at_of, event_problem, json_digest, json_safe

logger = logging.getLogger(__name__)

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
    """An event that cannot be stored and processed as it is (its reason is the message)."""


def event_fields(event) -> dict:
    """Columns for one event from the API/webhook JSON; raises MalformedEvent (payload.py
    says what an event must look like)."""
    problem = event_problem(event)
    if problem:
        raise MalformedEvent(problem)
    resource_type, action = event["resource_type"], event["action"]
    links = event.get("links") or {}
    details = event.get("details") or {}
    filed_under = FILED_UNDER.get((resource_type, action))
    if filed_under and links.get(RESOURCE_LINK[filed_under]):
        resource_type = filed_under  # the raw JSON keeps what GoCardless said
    return {
        "event_id": event["id"],
        "resource_type": resource_type,
        "action": action,
        "resource_id": links.get(RESOURCE_LINK.get(resource_type, "")) or "",
        "links": links,
        "details": details,
        "raw": event,
        "created_at": created_at_of(event.get("created_at")),
    }


def event_quarantine_fields(event, *, reason: str, now) -> dict:
    """Columns for an event we cannot use: kept (JSON made safe to store) with its reason,
    marked done so that nothing processes it, visible in the admin. Stored under its own id
    when it has a usable one, else under "~" and a digest of its content (no real id starts
    with "~"), so a redelivery of the same batch stores nothing new."""
    safe = json_safe(event if isinstance(event, dict) else {"event": event})
    usable_id = isinstance(event, dict) and isinstance(event.get("id"), str) and (
        ID.fullmatch(event["id"]))
    names = {}
    for name, size in (("resource_type", 50), ("action", 60)):
        value = event.get(name) if isinstance(event, dict) else None
        names[name] = value if isinstance(value, str) and NAME.fullmatch(value) else ""
        names[name] = names[name][:size]
    try:
        created_at = created_at_of(event.get("created_at")) if isinstance(event, dict) else None
    except ValueError:
        created_at = None
    return {
        "event_id": event["id"] if usable_id else "~" + json_digest(event)[:39],
        **names,
        "resource_id": "",
        "links": {},
        "details": {},
        "raw": safe,
        "created_at": created_at,
        "processed_at": now,
        "outcome": EventOutcome.QUARANTINED,
        "error": f"quarantined: {reason}"[:2000],
    }


def events_store(*, tenant, events: list[dict], source: str, delivery=None) -> list[int]:
    """Store events once per (tenant, event id); returns the pks of those not yet processed
    (new ones, and earlier ones still waiting, which polling must not skip).

    This is on the webhook's request path, so it costs two statements: a lookup of the batch's
    ids through the unique (tenant, event_id) index, then one INSERT of the new rows, whose pks
    the database returns. A concurrent delivery of the same events stores some of them first;
    the INSERT skips those and they are read back.
    """
    fields: dict[str, dict] = {}
    now = timezone.now()
    quarantined = 0
    for event in events:
        try:
            row = event_fields(event)
        except MalformedEvent as exc:
            row = event_quarantine_fields(event, reason=str(exc), now=now)
            quarantined += 1
        fields.setdefault(row["event_id"], row)  # the same event twice in one batch: once
    if quarantined:
        logger.warning("gocardless: %d unusable event(s) quarantined for tenant %s",
                       quarantined, getattr(tenant, "pk", tenant))
    if not fields:
        return []
    existing = GoCardlessEvent.objects.filter(tenant=tenant, event_id__in=list(fields))
    pending = []
    for event_id, pk, processed_at in existing.values_list("event_id", "pk", "processed_at"):
        fields.pop(event_id)
        if processed_at is None:
            pending.append(pk)
    if not fields:
        return pending
    stored = _rows_insert(tenant=tenant, delivery=delivery, source=source, rows=fields)
    pending += [stored[e][0] for e in fields if e in stored and stored[e][1] is None]
    if len(stored) < len(fields):  # lost a race with another delivery of the same events
        pending += GoCardlessEvent.objects.filter(
            tenant=tenant, event_id__in=[e for e in fields if e not in stored],
            processed_at__isnull=True,
        ).values_list("pk", flat=True)
    return pending


def _rows_insert(*, tenant, delivery, source, rows: dict[str, dict]) -> dict[str, tuple]:
    """INSERT ``rows`` (event id -> columns) in one statement, skipping any a concurrent
    delivery stored first; returns event id -> (pk, processed_at) of those this call stored."""
    if db_connection.vendor == "postgresql":
        return _rows_insert_postgresql(tenant=tenant, delivery=delivery, source=source,
                                       rows=rows)
    objects = [
        GoCardlessEvent(tenant=tenant, delivery=delivery, source=source, **row)
        for row in rows.values()
    ]
    try:
        with transaction.atomic():
            created = GoCardlessEvent.objects.bulk_create(objects)
    except IntegrityError:
        GoCardlessEvent.objects.bulk_create(objects, ignore_conflicts=True)
        return {}  # which of them were ours is unknown: the caller reads them all back
    return {row.event_id: (row.pk, row.processed_at) for row in created if row.pk}


# PostgreSQL: the batch travels as ONE jsonb parameter that jsonb_to_recordset turns into rows.
# bulk_create of 50 events binds ~950 parameters: Django compiles each value and psycopg
# splits the 4+ KiB statement again for every request (it caches only shorter ones), ~7.5 ms
# of the web process's CPU per 50-event webhook, about half of the whole request
# (docs/scale.md, "Webhook intake"). The columns and their values are the same either way
# (tests/gocardless/test_events_insert.py compares the rows); ON CONFLICT DO NOTHING replaces
# the savepoint the race needed.
_JSON_COLUMNS = ("links", "details", "raw")
_TEXT_COLUMNS = ("event_id", "resource_type", "action", "resource_id", "outcome", "error")
_TIME_COLUMNS = ("created_at", "processed_at")


@functools.cache
def _insert_sql() -> str:
    column = {f.name: db_connection.ops.quote_name(f.column)
              for f in GoCardlessEvent._meta.concrete_fields}
    given = (*_TEXT_COLUMNS, *_JSON_COLUMNS, *_TIME_COLUMNS)
    types = [f"{name} text" for name in _TEXT_COLUMNS] + [
        f"{name} jsonb" for name in _JSON_COLUMNS] + [
        f"{name} timestamptz" for name in _TIME_COLUMNS]
    return (
        f"INSERT INTO {db_connection.ops.quote_name(GoCardlessEvent._meta.db_table)} "  # noqa: S608 - our names
        f"({column['tenant']}, {column['delivery']}, {column['source']}, {column['attempts']}, "
        f"{', '.join(column[name] for name in given)}) "
        f"SELECT %s, %s, %s, 0, {', '.join(f'r.{name}' for name in given)} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({', '.join(types)}) "
        f"ON CONFLICT ({column['tenant']}, {column['event_id']}) DO NOTHING "
        f"RETURNING {column['id']}, {column['event_id']}, {column['processed_at']}"
    )


def _rows_insert_postgresql(*, tenant, delivery, source, rows: dict[str, dict]) -> dict:
    batch = []
    for row in rows.values():
        item = {name: row.get(name) or "" for name in _TEXT_COLUMNS}
        item.update({name: row[name] for name in _JSON_COLUMNS})
        for name in _TIME_COLUMNS:
            moment = row.get(name)
            item[name] = moment.isoformat() if moment is not None else None
        batch.append(item)
    with db_connection.cursor() as cursor:
        cursor.execute(_insert_sql(), [
            getattr(tenant, "pk", tenant), getattr(delivery, "pk", None), source,
            json.dumps(batch),
        ])
        return {event_id: (pk, processed_at) for pk, event_id, processed_at in cursor.fetchall()}


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
