"""Running stored events through the processor again: the admin's *Reprocess selected
events* and ``manage.py gocardless_events`` (replay by id, the failed ones, or by type).

Safe to repeat. A replay re-fetches each resource (``force``) and applies its current state;
status signals fire only when the mirror's status really changes, so an event whose change is
applied already sends none, writes no money audit entry and books nothing. A fact that is not
a status (a refund settled, a mandate replaced) is signalled again for the replayed event; its
receivers are idempotent (a booking exists once per key).
"""

from __future__ import annotations

from django.db import transaction

from core.audit import Actor, audit_record
from gocardless.event_processing import events_process
from gocardless.events_store import RESOURCE_LINK
from gocardless.models import EventOutcome, GoCardlessEvent


class ReplayError(ValueError):
    """A replay selection that names nothing replayable (unknown ids, an unknown type)."""


def events_replay_select(
    *, event_ids: list[str] | None = None, failed: bool = False, event_type: str = "",
    tenant=None,
) -> list[GoCardlessEvent]:
    """The stored events one replay is about, oldest first: by GoCardless event id (each must
    exist, in ``tenant`` when given), the failed ones (not processed, with an error: waiting
    for their retry or given up), or every event of a type (``payments`` or
    ``payments.confirmed``). Exactly one of the three.

    Events of an inactive tenant are not replayed: processing leaves them waiting until the
    tenant is activated, and a replay would take them off the sweeper's retry schedule.
    Quarantined events (unusable as received, payload.py) are never replayed.
    """
    if sum((bool(event_ids), failed, bool(event_type))) != 1:
        raise ReplayError("choose one of: event ids, the failed events, an event type")
    events = GoCardlessEvent.objects.select_related("tenant").order_by("created_at", "pk")
    if tenant is not None:
        events = events.filter(tenant=tenant)
    if event_ids:
        return _events_by_id(events, event_ids=event_ids)
    if failed:
        events = events.filter(processed_at__isnull=True, failed_at__isnull=False)
    else:
        events = events.filter(**_type_filter(event_type))
    return list(events.filter(tenant__is_active=True).exclude(outcome=EventOutcome.QUARANTINED))


def _events_by_id(events, *, event_ids: list[str]) -> list[GoCardlessEvent]:
    wanted = list(dict.fromkeys(event_ids))
    found = list(events.filter(event_id__in=wanted))
    unknown = sorted(set(wanted) - {e.event_id for e in found})
    if unknown:
        raise ReplayError(f"no stored GoCardless event {', '.join(unknown)}")
    quarantined = sorted({e.event_id for e in found if e.outcome == EventOutcome.QUARANTINED})
    if quarantined:
        raise ReplayError(
            f"event {', '.join(quarantined)} is quarantined (unusable as received; see its "
            "error in the admin) and is never processed"
        )
    waiting = sorted({e.event_id for e in found if not e.tenant.is_active})
    if waiting:
        raise ReplayError(
            f"event {', '.join(waiting)} belongs to an inactive tenant: it is processed once "
            "the tenant is activated again"
        )
    return found


def _type_filter(event_type: str) -> dict:
    resource_type, dot, action = event_type.partition(".")
    if resource_type not in RESOURCE_LINK or (dot and not action):
        raise ReplayError(
            f"unknown event type {event_type!r}: use a resource type "
            f"({', '.join(sorted(RESOURCE_LINK))}), optionally with .action "
            "(e.g. payments.confirmed)"
        )
    return {"resource_type": resource_type, **({"action": action} if action else {})}


def events_reprocess(*, event_pks: list[int], actor: Actor, client_factory=None) -> dict:
    """Run selected events through the processor again (admin action, replay command), with
    a forced re-fetch; each request is audited. Safe to repeat (see the module docstring).
    Quarantined events are left out (counted as "quarantined")."""
    selected = GoCardlessEvent.objects.filter(pk__in=list(event_pks))
    quarantined = selected.filter(outcome=EventOutcome.QUARANTINED).count()
    events = list(selected.exclude(outcome=EventOutcome.QUARANTINED).select_related("tenant"))
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
    counts = events_process(event_pks=[e.pk for e in events], client_factory=client_factory,
                            force=True)
    if quarantined:
        counts["quarantined"] = quarantined
    return counts
