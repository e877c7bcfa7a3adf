"""What the events of ONE resource do: re-fetch it, apply its current state to its locked
mirror row in memory, decide the signals and the audit entry, then write.

Two ways to write, the same rows either way (tests/gocardless/test_performance_shape.py):
- a resource that sends signals (or a payout with its items) is written on its own,
  in a savepoint, and its signals are sent there: their receivers see every earlier write,
  and a receiver that raises rolls back this resource only;
- resources with nothing to send are written together: one statement per mirror model and
  one for their audit entries.
Which way is decided by what happened to the resource, never by who listens to its signals:
the signals are sent whether or not anything is connected to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction

from core.audit import AuditEntry, audit_entries_create, audit_entry_build
from gocardless import errors, signals
from gocardless.actors import actor_for_event
from gocardless.client import GoCardlessClient
from gocardless.mirrors import mirror_set, mirrors_save, payout_items_replace
from gocardless.models import EventOutcome, GoCardlessEvent, Mirror, PayoutItemsState

logger = logging.getLogger(__name__)

# Status changes of these are audited (money, and the mandates that allow collecting it).
AUDITED_TYPES = {"payments", "payouts", "refunds", "mandates", "subscriptions",
                 "instalment_schedules"}


@dataclass
class AppliedResource:
    """One resource's events, fetched and applied in memory, not yet written."""

    group: list[GoCardlessEvent]
    outcomes: list[str]
    obj: Mirror | None = None
    changed: bool = False  # re-fetched: the row must be written
    items: list[dict] | None = None  # a payout's items, to replace
    audit: AuditEntry | None = None
    sends: list = field(default_factory=list)  # (signal, event, previous) in event order

    @property
    def isolated(self) -> bool:
        """Written on its own, in a savepoint, right away (see the module docstring)."""
        return self.items is not None or bool(self.sends)


def _signals(
    event: GoCardlessEvent, obj, previous: str, *, status: bool, hold_status: bool = False
) -> list:
    """The signals ``event`` sends: for its status change (when it caused one) and for its
    action. ``hold_status``: the status is a failure whose event (its cause) has not reached
    us: its signal is sent when that event is processed (the ``elif``), not now."""
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
        if signal is not None and not hold_status:
            out.append(signal)
    elif rtype == "payments" and current in signals.CAUSED_STATUSES and event.action == current:
        # The failure's own event, after the status reached us with another event of the
        # payment: the signal held back then goes now, with the cause.
        out.append(signals.STATUS_SIGNALS[(rtype, current)])
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


def resource_apply(
    *, group: list[GoCardlessEvent], client: GoCardlessClient, obj: Mirror | None,
    started, force: bool,
) -> AppliedResource:
    """Apply the events of ONE resource (oldest first) to its locked mirror row, in memory.

    At most one GET (plus a paid payout's items): the current state covers every event that
    was stored before the fetch started. Nothing is written here; a failure raises before
    anything changed.
    """
    first = group[0]
    rtype, rid = first.resource_type, first.resource_id
    if obj is None:
        return AppliedResource(group, [EventOutcome.IGNORED] * len(group))
    previous = obj.status
    applied = AppliedResource(group, [EventOutcome.CURRENT] * len(group), obj)
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
            return AppliedResource(group, [EventOutcome.GONE] * len(group), obj)
        items = None
        if rtype == "payouts" and _items_wanted(obj, data, force=force):
            items = _payout_items_fetch(obj, client=client, started=started)
        obj.fetched_at = started
        previous = mirror_set(obj=obj, resource_type=rtype, data=data)
        applied.changed, applied.items = True, items
        applied.outcomes[stale[0]] = EventOutcome.APPLIED
        # The status change is attributed to the event that names it, else the newest one.
        naming = next((group[i] for i in stale if group[i].action == obj.status), None)
        cause = naming or group[stale[-1]]
        applied.audit = _audit_entry(cause, obj, previous)
        # A payment failed or charged back before the event saying so (and why) reached us:
        # deciding now would go without the cause (a retryable failure handed to a person, a
        # reversal booked on another event's date; found by the chaos month, docs/chaos.md).
        hold = (naming is None and rtype == "payments" and previous != obj.status
                and obj.status in signals.CAUSED_STATUSES)
    else:
        hold = False
    # In event order: the status change at the event that caused it, facts that are not
    # statuses once per event (e.g. refund_created before refund_paid).
    for event in group:
        for signal in _signals(event, obj, previous, status=event is cause, hold_status=hold):
            applied.sends.append((signal, event, previous))
    return applied


def _items_wanted(payout, data: dict, *, force: bool) -> bool:
    """A payout's items are fetched when it is first seen, whatever its status: GoCardless
    keeps them for six months only (410 Gone after that), and a payout may be first seen
    late (a backlog, a new connection, a replay). Fetched again once it is paid (its lines
    are final then), never again once GoCardless said they are gone (unless forced)."""
    state = payout.items_state
    if state == PayoutItemsState.UNAVAILABLE:
        return force
    return state == PayoutItemsState.NOT_FETCHED or data.get("status") == "paid" or force


def _payout_items_fetch(payout, *, client: GoCardlessClient, started) -> list[dict] | None:
    """The payout's items, and its ``items_state`` set (not saved); None when GoCardless
    answers 410 Gone: then the payout says its lines are unavailable, unless an earlier fetch
    already has them (those stay, they never change once fetched)."""
    payout.items_checked_at = started
    try:
        items = list(client.payout_items_iter(payout.gocardless_id))
    except errors.GoneError:
        if payout.items_state != PayoutItemsState.FETCHED:
            payout.items_state = PayoutItemsState.UNAVAILABLE
        logger.info("gocardless payout %s: items gone (410)", payout.gocardless_id)
        return None
    payout.items_state = PayoutItemsState.FETCHED
    return items


def resource_write(*, applied: AppliedResource) -> None:
    """Write one resource now (inside the caller's savepoint) and send its signals."""
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


def resources_write_together(
    *, batch: list[AppliedResource],
) -> list[tuple[AppliedResource, Exception]]:
    """Write resources with nothing to send together: one statement per mirror model and one
    for the audit entries. Should that fail (one bad row), each is written on its own
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
                resource_write(applied=applied)
        except Exception as exc:
            failures.append((applied, exc))
    return failures
