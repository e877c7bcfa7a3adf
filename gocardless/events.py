"""Event storage and processing: the one pipeline for webhooks, polling and reprocessing.

Storage (``events_store``) is idempotent: one row per (tenant, event id), enforced by a unique
constraint, so duplicate deliveries and polling overlap cost nothing.

Processing (``events_process``) never trusts the event body for state. Under a row lock on
the events (``select_for_update(skip_locked=True)``: of five workers handed the same event,
one takes it and the others skip), it locks the mirror rows of their resources, re-fetches
each resource from GoCardless and applies its CURRENT state. Order and duplicates therefore
do not matter. Signals and audit entries follow the mirror's status changes (see
gocardless/signals.py). A failure leaves that resource's mirror unchanged and is stored on its
events (error, attempts, next_attempt_at with exponential backoff); ``events_retry_due`` (the
sweeper) picks them up again.

Cost: a chunk of events is a fixed handful of statements, whatever the number of resources in
it (the mirrors and audit entries of resources whose signals have no receivers are written
together); see "Performance" in docs/gocardless.md and tests/gocardless/test_performance_shape.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import (
    Actor,
    AuditEntry,
    audit_entries_create,
    audit_entry_build,
    audit_record,
)
from gocardless import errors, signals
from gocardless.actors import actor_for_event
from gocardless.client import GoCardlessClient
from gocardless.connection_status import connection_mark_needs_reauth
from gocardless.mirrors import (
    MIRROR_MODELS,
    mirror_set,
    mirrors_lock,
    mirrors_save,
    payout_items_replace,
)
from gocardless.models import (
    ConnectionStatus,
    EventOutcome,
    GoCardlessConnection,
    GoCardlessEvent,
    Mirror,
)
from tenants.activity import of_active_tenants
from tenants.alerts import (
    ALERT_LOOKBACK,
    ALERT_REPEAT_AFTER,
    admin_url,
    alert_new_objects_by_tenant,
)

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


def _backoff(attempts: int) -> timedelta:
    base = settings.GOCARDLESS_EVENT_RETRY_BASE_SECONDS
    seconds = min(base * (2 ** max(attempts - 1, 0)), settings.GOCARDLESS_EVENT_RETRY_MAX_SECONDS)
    return timedelta(seconds=seconds)


def _signals(event: GoCardlessEvent, obj, previous: str, *, status: bool) -> list:
    """The signals ``event`` sends: for its status change (when it caused one) and for its
    action."""
    out = []
    rtype, current = event.resource_type, obj.status
    if status and previous != current:
        if (
            rtype == "payments"
            and current in signals.IMPLIES_CONFIRMED
            and previous not in signals.CONFIRMED_OR_LATER
        ):
            out.append(signals.payment_confirmed)
        signal = signals.STATUS_SIGNALS.get((rtype, current))
        if signal is not None:
            out.append(signal)
    signal = signals.ACTION_SIGNALS.get((rtype, event.action))
    if signal is not None:
        out.append(signal)
    return out


def _audit_entry(event: GoCardlessEvent, obj, previous: str) -> AuditEntry | None:
    """The audit entry of a money status change, unsaved (written in bulk or one by one)."""
    if event.resource_type not in AUDITED_TYPES or previous == obj.status:
        return None
    after = {"status": obj.status}
    for name in ("amount", "currency"):
        if hasattr(obj, name):
            after[name] = getattr(obj, name)
    return audit_entry_build(
        actor=actor_for_event(event),
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


@dataclass
class _Applied:
    """One resource group, fetched and applied in memory, not yet written."""

    group: list[GoCardlessEvent]
    outcomes: list[str]
    obj: Mirror | None = None
    changed: bool = False  # re-fetched: the row must be written
    items: list[dict] | None = None  # a paid payout's items, to replace
    audit: AuditEntry | None = None
    sends: list = field(default_factory=list)  # (signal, event, previous) in event order

    @property
    def isolated(self) -> bool:
        """Written on its own, in a savepoint, right away: its signal receivers run inside
        (their failure rolls back this resource's change only) and see every earlier write.
        Without receivers, the write joins the chunk's bulk write."""
        return self.items is not None or any(
            signal.has_listeners(type(self.obj)) for signal, _, _ in self.sends
        )


def _apply_group(
    group: list[GoCardlessEvent], client: GoCardlessClient, obj: Mirror | None, *,
    started, force: bool,
) -> _Applied:
    """Apply the events of ONE resource (oldest first) to its locked mirror row, in memory.

    At most one GET (plus a paid payout's items): the current state covers every event that
    was stored before the fetch started. Nothing is written here; a failure raises before
    anything changed.
    """
    first = group[0]
    rtype, rid = first.resource_type, first.resource_id
    if obj is None:
        return _Applied(group, [EventOutcome.IGNORED] * len(group))
    previous = obj.status
    applied = _Applied(group, [EventOutcome.CURRENT] * len(group), obj)
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
            return _Applied(group, [EventOutcome.GONE] * len(group), obj)
        items = None
        if rtype == "payouts" and data.get("status") == "paid":
            items = list(client.payout_items_iter(rid))
        obj.fetched_at = started
        previous = mirror_set(obj=obj, resource_type=rtype, data=data)
        applied.changed, applied.items = True, items
        applied.outcomes[stale[0]] = EventOutcome.APPLIED
        # The status change is attributed to the event that names it, else the newest one.
        cause = next((group[i] for i in stale if group[i].action == obj.status),
                     group[stale[-1]])
        applied.audit = _audit_entry(cause, obj, previous)
    # In event order: the status change at the event that caused it, facts that are not
    # statuses once per event (e.g. refund_created before refund_paid).
    for event in group:
        for signal in _signals(event, obj, previous, status=event is cause):
            applied.sends.append((signal, event, previous))
    return applied


def _write(applied: _Applied) -> None:
    """Write one group now (inside the caller's savepoint) and send its signals."""
    obj = applied.obj
    if applied.changed:
        obj.save()
        if applied.items is not None:
            payout_items_replace(payout=obj, items=applied.items)
    if applied.audit is not None:
        applied.audit.save()
    for signal, event, previous in applied.sends:
        signal.send(sender=type(obj), tenant=event.tenant, instance=obj, event=event,
                    previous_status=previous)


def _write_many(batch: list[_Applied]) -> list[tuple[_Applied, Exception]]:
    """Write groups without receivers together: one statement per mirror model and one for
    the audit entries. Should that fail (one bad row), each group is written on its own
    instead, so only the bad one fails; returns those failures."""
    if not batch:
        return []
    try:
        with transaction.atomic():
            mirrors_save([a.obj for a in batch if a.changed])
            audits = [a.audit for a in batch if a.audit is not None]
            if audits:
                audit_entries_create(audits)
        return []
    except Exception:
        logger.warning("bulk write of %s resources failed; writing each on its own", len(batch),
                       exc_info=True)
    failures = []
    for applied in batch:
        if applied.audit is not None:
            applied.audit.pk = None
            applied.audit._state.adding = True
        try:
            with transaction.atomic():
                _write(applied)
        except Exception as exc:
            failures.append((applied, exc))
    return failures


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
    # No auth hook: the processor handles a 401/403 itself (``_group_failed``), once per
    # resource, outside any resource's savepoint.
    return GoCardlessClient.for_connection(connection, on_auth_error=None)


def _group_key(event: GoCardlessEvent):
    if event.resource_type in PROCESSED_TYPES and event.resource_id:
        return (event.tenant_id, event.resource_type, event.resource_id)
    return (event.tenant_id, "", event.pk)


def _lock_mirrors(groups: list[list[GoCardlessEvent]]) -> tuple[dict, set]:
    """Lock (creating placeholders where new) the mirror rows of the groups, per tenant and
    resource type at once; returns them by group key, and the keys whose rows are new."""
    wanted: dict[tuple, list[str]] = {}
    tenants = {}
    for group in groups:
        first = group[0]
        if first.resource_type in MIRROR_MODELS:
            wanted.setdefault((first.tenant_id, first.resource_type), []).append(
                first.resource_id)
            tenants[first.tenant_id] = first.tenant
    rows, created = {}, set()
    for (tenant_id, rtype), ids in wanted.items():
        found, new = mirrors_lock(tenant=tenants[tenant_id], resource_type=rtype,
                                  gocardless_ids=ids)
        rows.update(((tenant_id, rtype, gid), obj) for gid, obj in found.items())
        created.update((tenant_id, rtype, gid) for gid in new)
    return rows, created


def _process_chunk(pks: list[int], *, cache: dict, factory, force: bool, counts: dict) -> None:
    """One transaction: lock the chunk's events (skipping those another worker holds) and the
    mirror rows they are about, fetch and apply them resource by resource, write the mirrors
    and audit entries together (a resource whose signals have receivers is written on its
    own, in a savepoint), then write every event's outcome with one UPDATE per outcome."""
    now = timezone.now()
    with transaction.atomic():
        # An inactive tenant's events wait, untouched, until it is activated again
        # (tenants/activity.py): processing them would call GoCardless for it.
        events = list(
            of_active_tenants(
                GoCardlessEvent.objects.select_for_update(skip_locked=True, of=("self",))
            )
            .filter(pk__in=pks, processed_at__isnull=True)
            .order_by("created_at", "pk")
        )
        if len(events) < len(pks):  # processed already, held by another worker, or waiting
            counts["skipped"] = counts.get("skipped", 0) + len(pks) - len(events)
        if not events:
            return
        started = _database_now()
        groups: dict = {}
        for event in events:
            groups.setdefault(_group_key(event), []).append(event)
        usable = []
        for key, group in groups.items():
            connection = _connection(group[0].tenant_id, cache)
            for event in group:
                event.attempts += 1
                if connection is not None:
                    event.tenant = connection.tenant
            if key[1] and connection is not None and (
                connection.status == ConnectionStatus.CONNECTED
            ):
                usable.append(group)
        # Lock first, then fetch: whoever holds the lock applies the freshest state.
        mirrors, created = _lock_mirrors(usable)
        done: list[_Applied] = []
        batch: list[_Applied] = []
        failures: set[int] = set()  # id() of the groups that failed
        drop: list[Mirror] = []  # placeholders of resources that failed or are gone

        def fail(group, exc):
            # Right away: a 401 marks the connection, and the tenant's remaining resources
            # then fail without calling GoCardless.
            failures.add(id(group))
            key = _group_key(group[0])
            if key in created:
                drop.append(mirrors[key])
            _group_failed(group, exc, connection=_connection(group[0].tenant_id, cache),
                          now=now)
            counts["failed"] = counts.get("failed", 0) + len(group)

        def flush():
            for applied, exc in _write_many(batch):
                fail(applied.group, exc)
            batch.clear()

        for key, group in groups.items():
            connection = _connection(group[0].tenant_id, cache)
            obj = mirrors.get(key)
            try:
                if connection is None or connection.status != ConnectionStatus.CONNECTED:
                    raise errors.AuthError("GoCardless connection is not connected")
                applied = _apply_group(group, _client(connection, cache, factory), obj,
                                       started=started, force=force)
            except Exception as exc:
                fail(group, exc)
                continue
            done.append(applied)
            if applied.outcomes[0] == EventOutcome.GONE:
                if not obj.raw:
                    drop.append(obj)
            elif obj is not None and applied.isolated:
                flush()  # its receivers see every earlier write
                try:
                    with transaction.atomic():
                        _write(applied)
                except Exception as exc:
                    fail(group, exc)
            elif obj is not None:
                batch.append(applied)
        flush()
        for obj in drop:
            obj.delete()
        for applied in done:
            if id(applied.group) in failures:
                continue
            for event, outcome in zip(applied.group, applied.outcomes, strict=True):
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
        of_active_tenants(GoCardlessEvent.objects.filter(processed_at__isnull=True))
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(failed_at__isnull=True, received_at__lte=stale)
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    counts = events_process(event_pks=list(due), client_factory=client_factory)
    try:
        events_gave_up_alert(now=now)
    except Exception:  # the alert is retried by the next sweep; processing went through
        logger.exception("gocardless: alerting about events that gave up failed")
    return counts


def events_gave_up_alert(*, now=None) -> int:
    """E-mail each active tenant's administrators the events that gave up after
    ``GOCARDLESS_EVENT_MAX_ATTEMPTS`` and were not e-mailed yet (tenants/alerts.py): at most
    one e-mail per tenant per ``ALERT_REPEAT_AFTER``, each event listed once. The sweeper
    calls it, so events that gave up in webhook-queued processing are covered too."""
    now = now or timezone.now()
    gave_up = of_active_tenants(
        GoCardlessEvent.objects.filter(
            processed_at__isnull=True,
            next_attempt_at__isnull=True,
            failed_at__gte=now - ALERT_LOOKBACK,
            attempts__gte=settings.GOCARDLESS_EVENT_MAX_ATTEMPTS,
        )
    )
    return alert_new_objects_by_tenant(
        candidates=gave_up
        .defer("raw", "links", "details")
        .order_by("-failed_at", "-pk"),
        subject=lambda n: f"{n} GoCardless event(s) could not be processed",
        what=(
            f"ml-connector gave up processing these GoCardless events after "
            f"{settings.GOCARDLESS_EVENT_MAX_ATTEMPTS} attempts. Until they are processed, "
            "what ml-connector knows about these payments, mandates or payouts may be out "
            "of date (for example a payment that failed or was paid out), and the collection "
            "attempts and bookings that depend on them are not updated:"
        ),
        line=lambda e: (
            f"{e.event_id}: {e.resource_type}.{e.action} {e.resource_id} — {e.error[:200]}"
        ),
        todo=(
            "check the error of each event (a GoCardless connection that needs "
            "reconnecting is e-mailed separately); once the cause is fixed, select the "
            'events in the admin list below and run "Reprocess selected events".'
        ),
        link=admin_url(
            "admin:gocardless_gocardlessevent_changelist", query="processing=failed"
        ),
        quiet_since=now - ALERT_REPEAT_AFTER,
        kind="gocardlessevent.gave_up",
    )


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
