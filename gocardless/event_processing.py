"""Processing stored events: the one pipeline for webhooks, polling, the sweeper and replays.

Processing (``events_process``) never trusts the event body for state. Under a row lock on
the events (``select_for_update(skip_locked=True)``: of five workers handed the same event,
one takes it and the others skip), it locks the mirror rows of their resources, re-fetches
each resource from GoCardless and applies its CURRENT state (event_apply.py). Order and
duplicates therefore do not matter. Signals and audit entries follow the mirror's status
changes (see gocardless/signals.py). A failure leaves that resource's mirror unchanged and is
stored on its events (error, attempts, next_attempt_at with exponential backoff); the sweeper
(events_sweep.py) picks them up again.

Cost: a chunk of events is a fixed handful of statements, whatever the number of resources in
it (the mirrors and audit entries of resources with no signals to send are written
together); see "Performance" in docs/gocardless.md and tests/gocardless/test_performance_shape.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DataError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from gocardless import errors
from gocardless.client import GoCardlessClient
from gocardless.connection_status import connection_mark_needs_reauth
from gocardless.event_apply import (
    AppliedResource,
    resource_apply,
    resource_write,
    resources_write_together,
)
from gocardless.mirrors import MIRROR_MODELS, instalment_schedules_upcoming, mirrors_lock
from gocardless.models import (
    ConnectionStatus,
    EventOutcome,
    GoCardlessConnection,
    GoCardlessEvent,
    InstalmentSchedule,
    Mirror,
    Payment,
)
from tenants.activity import of_active_tenants

logger = logging.getLogger(__name__)

# What we mirror from events (customer bank accounts are fetched on demand only).
PROCESSED_TYPES = {"payments", "mandates", "payouts", "refunds", "billing_requests", "customers",
                   "subscriptions", "instalment_schedules"}
# The event columns processing changes, written back with one UPDATE per distinct outcome.
EVENT_FIELDS = ("attempts", "processed_at", "outcome", "error", "failed_at", "next_attempt_at")


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
        chunk = pks[start:start + chunk_size]
        try:
            _process_chunk(chunk, cache=cache, factory=factory, force=force, counts=counts)
        except Exception as exc:
            # Something no resource's own handling caught (a row the database cannot hand
            # back, a bug): one event must not stall the others, nor, through the sweeper,
            # every tenant's. Each event goes again on its own; those that still fail are
            # set aside (events_set_aside).
            logger.exception("gocardless: a chunk of %d events failed; one by one now",
                             len(chunk))
            _process_one_by_one(chunk, cache=cache, factory=factory, force=force,
                                counts=counts, first_error=exc)
    return counts


def _process_one_by_one(pks, *, cache, factory, force, counts, first_error) -> None:
    if len(pks) == 1:
        events_set_aside(event_pks=pks, exc=first_error)
        _count(counts, "failed")
        return
    for pk in pks:
        try:
            _process_chunk([pk], cache=cache, factory=factory, force=force, counts=counts)
        except Exception as exc:
            logger.exception("gocardless: event %s cannot be processed", pk)
            events_set_aside(event_pks=[pk], exc=exc)
            _count(counts, "failed")


def events_set_aside(*, event_pks: list[int], exc: Exception) -> None:
    """Events whose processing raised outside any resource's handling. One the database
    cannot even hand back (DataError: e.g. a timestamp stored before intake checked them,
    which no longer fits a Python datetime) is quarantined: never processed again, its
    unreadable timestamp cleared so that the admin can show it. Any other error counts as a
    failed attempt with backoff, so that the sweeper tries again later and gives up in the
    end. Written with UPDATEs that never read the rows."""
    now = timezone.now()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    events = GoCardlessEvent.objects.filter(pk__in=event_pks, processed_at__isnull=True)
    if isinstance(exc, DataError):
        events.update(processed_at=now, outcome=EventOutcome.QUARANTINED, created_at=None,
                      error=f"quarantined: the stored event cannot be read ({error})"[:2000])
        return
    for pk, attempts in events.values_list("pk", "attempts"):
        attempts += 1
        gave_up = attempts >= settings.GOCARDLESS_EVENT_MAX_ATTEMPTS
        GoCardlessEvent.objects.filter(pk=pk).update(
            attempts=attempts, failed_at=now, error=error,
            next_attempt_at=None if gave_up else now + _backoff(attempts),
        )


def event_process(*, event_pk: int, client_factory=None, force: bool = False) -> dict:
    """One event (admin, tests)."""
    return events_process(event_pks=[event_pk], client_factory=client_factory, force=force)


def _count(counts: dict, key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def _process_chunk(pks: list[int], *, cache: dict, factory, force: bool, counts: dict) -> None:
    """One transaction: lock the chunk's events (skipping those another worker holds) and the
    mirror rows they are about, fetch and apply them resource by resource, write the mirrors
    and audit entries (together, or one resource at a time in a savepoint where signals are
    sent), then write every event's outcome with one UPDATE per outcome."""
    now = timezone.now()
    with transaction.atomic():
        events = _events_lock(pks, counts=counts)
        if not events:
            return
        started = _database_now()
        groups: dict = {}
        for event in events:
            groups.setdefault(_group_key(event), []).append(event)
        fetchable = _groups_attempt(groups, cache=cache)
        # Lock first, then fetch: whoever holds the lock applies the freshest state.
        mirrors, created = _lock_mirrors(fetchable)
        chunk = _ChunkWrite(mirrors=mirrors, created=created, cache=cache, now=now,
                            counts=counts)
        for key, group in groups.items():
            connection = _connection(group[0].tenant_id, cache)
            obj = mirrors.get(key)
            try:
                if connection is None or connection.status != ConnectionStatus.CONNECTED:
                    raise errors.AuthError("GoCardless connection is not connected")
                applied = resource_apply(group=group, client=_client(connection, cache, factory),
                                         obj=obj, started=started, force=force)
            except Exception as exc:
                chunk.fail(group, exc)
                continue
            chunk.add(applied)
        chunk.finish()
        _outcomes_set(chunk, now=now, counts=counts)
        _events_save(events)


def _events_lock(pks: list[int], *, counts: dict) -> list[GoCardlessEvent]:
    """The chunk's unprocessed events, locked, oldest first. An inactive tenant's events wait,
    untouched, until it is activated again (tenants/activity.py): processing them would call
    GoCardless for it."""
    events = list(
        of_active_tenants(
            GoCardlessEvent.objects.select_for_update(skip_locked=True, of=("self",))
        )
        .filter(pk__in=pks, processed_at__isnull=True)
        .order_by("created_at", "pk")
    )
    if len(events) < len(pks):  # processed already, held by another worker, or waiting
        _count(counts, "skipped", len(pks) - len(events))
    return events


def _groups_attempt(groups: dict, *, cache: dict) -> list[list[GoCardlessEvent]]:
    """Count an attempt on every event, give each its tenant (from the connection, read once
    per tenant); returns the groups of mirrored resources whose connection may be called."""
    fetchable = []
    for key, group in groups.items():
        connection = _connection(group[0].tenant_id, cache)
        for event in group:
            event.attempts += 1
            if connection is not None:
                event.tenant = connection.tenant
        if key[1] and connection is not None and (
            connection.status == ConnectionStatus.CONNECTED
        ):
            fetchable.append(group)
    return fetchable


class _ChunkWrite:
    """The writes of one chunk, in event order: resources with nothing to send wait in a batch
    written together; a resource that sends signals first flushes that batch (its receivers
    see every earlier write), then is written on its own in a savepoint. A failure is stored
    on the resource's events right away: a 401 marks the connection, and the tenant's
    remaining resources then fail without calling GoCardless."""

    def __init__(self, *, mirrors: dict, created: set, cache: dict, now, counts: dict):
        self.mirrors, self.created, self.cache = mirrors, created, cache
        self.now, self.counts = now, counts
        self.done: list[AppliedResource] = []
        self.batch: list[AppliedResource] = []
        self.failures: set[int] = set()  # id() of the groups that failed
        self.drop: list[Mirror] = []  # placeholders of resources that failed or are gone

    def fail(self, group: list[GoCardlessEvent], exc: Exception) -> None:
        self.failures.add(id(group))
        key = _group_key(group[0])
        if key in self.created:
            self.drop.append(self.mirrors[key])
        _group_failed(group, exc, connection=_connection(group[0].tenant_id, self.cache),
                      now=self.now)
        _count(self.counts, "failed", len(group))

    def flush(self) -> None:
        for applied, exc in resources_write_together(batch=self.batch):
            self.fail(applied.group, exc)
        self.batch.clear()

    def add(self, applied: AppliedResource) -> None:
        self.done.append(applied)
        obj = applied.obj
        if applied.outcomes[0] == EventOutcome.GONE:
            if not obj.raw:
                self.drop.append(obj)
        elif obj is not None and applied.isolated:
            self.flush()
            try:
                with transaction.atomic():
                    resource_write(applied=applied)
            except Exception as exc:
                self.fail(applied.group, exc)
        elif obj is not None:
            self.batch.append(applied)

    def finish(self) -> None:
        self.flush()
        for obj in self.drop:
            obj.delete()
        self.schedules_upcoming()

    def schedules_upcoming(self) -> None:
        """The instalment schedules whose payments (or themselves) changed in this chunk get
        their upcoming payments derived again (mirrors.instalment_schedules_upcoming). Derived
        data: should that fail, the chunk's writes stand and the next change derives it."""
        touched: dict[int, set[str]] = {}
        for applied in self.succeeded():
            obj = applied.obj
            if not applied.changed or obj is None:
                continue
            if isinstance(obj, InstalmentSchedule):
                touched.setdefault(obj.tenant_id, set()).add(obj.gocardless_id)
            elif isinstance(obj, Payment) and obj.instalment_schedule_id:
                touched.setdefault(obj.tenant_id, set()).add(obj.instalment_schedule_id)
        for tenant_id, schedule_ids in touched.items():
            try:
                with transaction.atomic():
                    instalment_schedules_upcoming(tenant_id=tenant_id, schedule_ids=schedule_ids)
            except Exception:
                logger.exception("gocardless: upcoming payments of instalment schedules %s "
                                 "(tenant %s) not derived", sorted(schedule_ids), tenant_id)

    def succeeded(self) -> list[AppliedResource]:
        return [a for a in self.done if id(a.group) not in self.failures]


def _outcomes_set(chunk: _ChunkWrite, *, now, counts: dict) -> None:
    for applied in chunk.succeeded():
        for event, outcome in zip(applied.group, applied.outcomes, strict=True):
            event.processed_at, event.outcome = now, outcome
            event.error, event.next_attempt_at = "", None
            _count(counts, str(outcome))


def _events_save(events: list[GoCardlessEvent]) -> None:
    """Few distinct outcomes per chunk: one plain UPDATE each (bulk_update's CASE per row costs
    more CPU than the processing itself)."""
    same: dict[tuple, list[int]] = {}
    for event in events:
        same.setdefault(tuple(getattr(event, f) for f in EVENT_FIELDS), []).append(event.pk)
    for values, event_pks in same.items():
        GoCardlessEvent.objects.filter(pk__in=event_pks).update(
            **dict(zip(EVENT_FIELDS, values, strict=True))
        )


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


def _backoff(attempts: int) -> timedelta:
    base = settings.GOCARDLESS_EVENT_RETRY_BASE_SECONDS
    seconds = min(base * (2 ** max(attempts - 1, 0)), settings.GOCARDLESS_EVENT_RETRY_MAX_SECONDS)
    return timedelta(seconds=seconds)


def database_now() -> datetime:
    """The database's clock, the one ``GoCardlessEvent.received_at`` comes from. On
    PostgreSQL it is the transaction's start: never later than the GETs that follow, so
    "fetched after this event arrived" is decided conservatively."""
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "sqlite":
            cursor.execute("SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')")
            return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        return cursor.fetchone()[0]


_database_now = database_now


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
