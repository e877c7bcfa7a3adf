"""Event storage and processing: the one pipeline for webhooks, polling and reprocessing.

Storage (``events_store``) is idempotent: one row per (tenant, event id), enforced by a unique
constraint, so duplicate deliveries and polling overlap cost nothing.

Processing (``events_process``) never trusts the event body for state. For each event, under
a row lock on the event (``select_for_update(skip_locked=True)``: of five workers handed the
same event, one takes it and the others skip), it locks the mirror row of the resource,
re-fetches the resource from GoCardless and applies its CURRENT state. Order and duplicates
therefore do not matter. Signals and audit entries follow the mirror's status changes (see
gocardless/signals.py). A failure rolls back that event's changes and is stored on the event
(error, attempts, next_attempt_at with exponential backoff); ``events_retry_due`` (the sweeper)
picks it up again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gocardless import errors, signals
from gocardless.client import GoCardlessClient
from gocardless.mirrors import (
    MIRROR_MODELS,
    mirror_apply,
    mirror_lock,
    payout_items_replace,
)
from gocardless.models import (
    ConnectionStatus,
    EventOutcome,
    EventSource,
    GoCardlessConnection,
    GoCardlessEvent,
)
from reconciliation.audit import Actor, audit_record

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
# What we mirror from events (customer bank accounts are fetched on demand only).
PROCESSED_TYPES = {"payments", "mandates", "payouts", "refunds", "billing_requests", "customers"}
# Status changes of these are audited (money, and the mandates that allow collecting it).
AUDITED_TYPES = {"payments", "payouts", "refunds", "mandates"}


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
        async_task("gocardless.tasks.events_process_task", pks, group="gocardless-events")

    same_database = Conf.ORM == transaction.get_connection().alias and not Conf.SYNC
    if same_database and transaction.get_connection().in_atomic_block:
        enqueue()
    else:
        transaction.on_commit(enqueue)


def _backoff(attempts: int) -> timedelta:
    base = settings.GOCARDLESS_EVENT_RETRY_BASE_SECONDS
    seconds = min(base * (2 ** max(attempts - 1, 0)), settings.GOCARDLESS_EVENT_RETRY_MAX_SECONDS)
    return timedelta(seconds=seconds)


def _actor(event: GoCardlessEvent) -> Actor:
    if event.source == EventSource.POLL:
        return Actor.schedule("gocardless.events_poll")
    return Actor.webhook("gocardless")


def _send(signal, event: GoCardlessEvent, obj, previous: str) -> None:
    signal.send(
        sender=type(obj), tenant=event.tenant, instance=obj, event=event, previous_status=previous
    )


def _status_signals(event: GoCardlessEvent, obj, previous: str) -> None:
    rtype, status = event.resource_type, obj.status
    if previous == status:
        return
    if (
        rtype == "payments"
        and status in signals.IMPLIES_CONFIRMED
        and previous not in signals.CONFIRMED_OR_LATER
    ):
        _send(signals.payment_confirmed, event, obj, previous)
    signal = signals.STATUS_SIGNALS.get((rtype, status))
    if signal is not None:
        _send(signal, event, obj, previous)


def _action_signal(event: GoCardlessEvent, obj, previous: str) -> None:
    signal = signals.ACTION_SIGNALS.get((event.resource_type, event.action))
    if signal is not None:
        _send(signal, event, obj, previous)


def _audit(event: GoCardlessEvent, obj, previous: str) -> None:
    if event.resource_type not in AUDITED_TYPES or previous == obj.status:
        return
    after = {"status": obj.status}
    for name in ("amount", "currency"):
        if hasattr(obj, name):
            after[name] = getattr(obj, name)
    audit_record(
        actor=_actor(event),
        action=f"{obj._meta.model_name}.status_changed",
        tenant=event.tenant,
        obj=obj,
        before={"status": previous},
        after=after,
        message=f"GoCardless {obj.gocardless_id}: event {event.event_id} "
        f"({event.resource_type}.{event.action})",
    )


def _database_now() -> datetime:
    """The database's clock, the one ``GoCardlessEvent.received_at`` comes from. On
    PostgreSQL it is the transaction's start: never later than the GETs that follow, so
    "fetched after this event arrived" is decided conservatively."""
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "sqlite":
            cursor.execute("SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')")
            return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        return cursor.fetchone()[0]


def _apply_group(
    group: list[GoCardlessEvent], client: GoCardlessClient, *, started, force: bool
) -> list[str]:
    """Apply the events of ONE resource (oldest first); returns an outcome per event.

    One lock on the mirror, at most one GET: the current state covers every event that was
    stored before the fetch started.
    """
    first = group[0]
    rtype, rid = first.resource_type, first.resource_id
    if rtype not in PROCESSED_TYPES or rtype not in MIRROR_MODELS or not rid:
        return [EventOutcome.IGNORED] * len(group)
    # Lock first, then fetch: whoever holds the lock applies the freshest state.
    obj = mirror_lock(tenant=first.tenant, resource_type=rtype, gocardless_id=rid)
    previous = obj.status
    outcomes = [EventOutcome.CURRENT] * len(group)
    # Events stored before the mirror's last fetch started are already reflected in it
    # (redeliveries, polling overlap). Both times are database times: no clock skew.
    stale = [
        i for i, e in enumerate(group)
        if force or not obj.fetched_at or obj.fetched_at <= e.received_at
    ]
    cause = None
    if stale:
        try:
            data = client.resource_get(rtype, rid)
        except errors.NotFoundError:
            if not obj.raw:
                obj.delete()  # the placeholder we just made
            return [EventOutcome.GONE] * len(group)
        obj.fetched_at = started
        previous = mirror_apply(obj=obj, resource_type=rtype, data=data)
        if rtype == "payouts" and obj.status == "paid":
            payout_items_replace(payout=obj, items=list(client.payout_items_iter(rid)))
        outcomes[stale[0]] = EventOutcome.APPLIED
        # The status change is attributed to the event that names it, else the newest one.
        cause = next((group[i] for i in stale if group[i].action == obj.status),
                     group[stale[-1]])
    # In event order: the status change at the event that caused it, facts that are not
    # statuses once per event (e.g. refund_created before refund_paid).
    for event in group:
        if event is cause:
            _status_signals(cause, obj, previous)
            _audit(cause, obj, previous)
        _action_signal(event, obj, previous)
    return outcomes


def _connection(tenant_id: int, cache: dict) -> GoCardlessConnection | None:
    if tenant_id not in cache:
        cache[tenant_id] = (
            GoCardlessConnection.objects.select_related("tenant").filter(tenant_id=tenant_id).first()
        )
    return cache[tenant_id]


def _client(connection: GoCardlessConnection, cache: dict, factory) -> GoCardlessClient:
    key = ("client", connection.pk)
    if key not in cache:
        cache[key] = factory(connection)
    return cache[key]


def _default_client(connection: GoCardlessConnection) -> GoCardlessClient:
    # No auth hook: a hook's write would roll back with the group's savepoint. A 401/403 is
    # handled by the processor, outside it.
    return GoCardlessClient.for_connection(connection, on_auth_error=None)


def _group_key(event: GoCardlessEvent):
    if event.resource_type in PROCESSED_TYPES and event.resource_id:
        return (event.tenant_id, event.resource_type, event.resource_id)
    return (event.tenant_id, "", event.pk)


def _process_chunk(pks: list[int], *, cache: dict, factory, force: bool, counts: dict) -> None:
    """One transaction: lock the chunk's events (skipping those another worker holds),
    apply them resource by resource, each resource in its own savepoint, then write every
    event's outcome in one UPDATE."""
    now = timezone.now()
    with transaction.atomic():
        events = list(
            GoCardlessEvent.objects.select_for_update(skip_locked=True)
            .filter(pk__in=pks, processed_at__isnull=True)
            .order_by("created_at", "pk")
        )
        if len(events) < len(pks):  # processed already, or another worker holds them now
            counts["skipped"] = counts.get("skipped", 0) + len(pks) - len(events)
        if not events:
            return
        started = _database_now()
        groups: dict = {}
        for event in events:
            groups.setdefault(_group_key(event), []).append(event)
        for group in groups.values():
            connection = _connection(group[0].tenant_id, cache)
            for event in group:
                event.attempts += 1
                if connection is not None:
                    event.tenant = connection.tenant
            try:
                if connection is None or connection.status != ConnectionStatus.CONNECTED:
                    raise errors.AuthError("GoCardless connection is not connected")
                with transaction.atomic():
                    outcomes = _apply_group(group, _client(connection, cache, factory),
                                            started=started, force=force)
            except Exception as exc:
                _group_failed(group, exc, connection=connection, now=now)
                counts["failed"] = counts.get("failed", 0) + len(group)
                continue
            for event, outcome in zip(group, outcomes, strict=True):
                event.processed_at, event.outcome = now, outcome
                event.error, event.next_attempt_at = "", None
                counts[str(outcome)] = counts.get(str(outcome), 0) + 1
        # Few distinct outcomes per chunk: one plain UPDATE each (bulk_update's CASE per row
        # costs more CPU than the processing itself).
        fields = ("attempts", "processed_at", "outcome", "error", "failed_at", "next_attempt_at")
        same: dict[tuple, list[int]] = {}
        for event in events:
            same.setdefault(tuple(getattr(event, f) for f in fields), []).append(event.pk)
        for values, event_pks in same.items():
            GoCardlessEvent.objects.filter(pk__in=event_pks).update(**dict(zip(fields, values,
                                                                             strict=True)))


def _group_failed(group, exc: Exception, *, connection, now) -> None:
    if isinstance(exc, errors.AuthError) and connection is not None and (
        connection.status == ConnectionStatus.CONNECTED
    ):
        from gocardless.connect import connection_mark_needs_reauth

        connection_mark_needs_reauth(connection=connection, reason=str(exc))
    error = f"{type(exc).__name__}: {exc}"[:2000]
    for event in group:
        event.failed_at, event.error = now, error
        gave_up = event.attempts >= settings.GOCARDLESS_EVENT_MAX_ATTEMPTS
        event.next_attempt_at = None if gave_up else now + _backoff(event.attempts)
        logger.warning(
            "gocardless event %s (tenant %s) failed, attempt %s%s: %s",
            event.event_id, event.tenant_id, event.attempts,
            " (giving up)" if gave_up else "", error,
        )


def events_process(
    *, event_pks: list[int], client_factory=None, force: bool = False, chunk_size: int = 100
) -> dict[str, int]:
    """Process events; returns counts per outcome ("applied", "current", "ignored", "gone",
    "failed", "skipped").

    Chunks of ``chunk_size`` events are one transaction each (one commit per chunk, not per
    event); inside, events are applied oldest first and grouped by resource. ``force``
    re-fetches even when the mirror is newer than the event (reprocessing).
    """
    pks = list(dict.fromkeys(event_pks))
    counts: dict[str, int] = {}
    cache: dict = {}
    factory = client_factory or _default_client
    for start in range(0, len(pks), chunk_size):
        _process_chunk(pks[start:start + chunk_size], cache=cache, factory=factory,
                       force=force, counts=counts)
    return counts


def event_process(*, event_pk: int, client_factory=None, force: bool = False) -> dict:
    """One event (admin, tests)."""
    return events_process(event_pks=[event_pk], client_factory=client_factory, force=force)


def events_retry_due(*, now=None, limit: int = 500, client_factory=None) -> dict[str, int]:
    """The sweeper: failed events whose backoff has passed, and events the queue lost."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.GOCARDLESS_EVENT_STALE_SECONDS)
    from django.db.models import Q

    due = (
        GoCardlessEvent.objects.filter(processed_at__isnull=True)
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(failed_at__isnull=True, received_at__lte=stale)
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return events_process(event_pks=list(due), client_factory=client_factory)


def events_reprocess(*, event_pks: list[int], actor: Actor, client_factory=None) -> dict:
    """Run selected events through the processor again (admin action, replay command).

    Re-fetching makes this safe: an unchanged resource changes no status and sends no signal.
    """
    events = list(GoCardlessEvent.objects.filter(pk__in=list(event_pks)).select_related("tenant"))
    with transaction.atomic():
        for event in events:
            audit_record(
                actor=actor,
                action="gocardlessevent.reprocess_requested",
                tenant=event.tenant,
                obj=event,
                before={"processed_at": event.processed_at and event.processed_at.isoformat(),
                        "attempts": event.attempts},
                message=f"event {event.event_id}",
            )
        GoCardlessEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            processed_at=None, outcome="", next_attempt_at=None
        )
    return events_process(event_pks=[e.pk for e in events], client_factory=client_factory,
                          force=True)
