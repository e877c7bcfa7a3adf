"""Who an event-driven change is audited as: the one answer for every receiver.

A GoCardless event reaches us by webhook or by the polling job; the audit trail names which
(``Actor.webhook("gocardless")`` or ``Actor.schedule("gocardless.events_poll")``). Work done
without an event (a resync, an admin action's follow-up) is the system's, under a label the
caller names."""

from __future__ import annotations

from core.audit import Actor
from gocardless.models import EventSource

POLL_ACTOR_LABEL = "gocardless.events_poll"


def actor_for_event(event, *, without_event: str = "system") -> Actor:
    """The actor of a change caused by ``event`` (a GoCardlessEvent or None)."""
    if event is None:
        return Actor.system(without_event)
    if getattr(event, "source", "") == EventSource.POLL:
        return Actor.schedule(POLL_ACTOR_LABEL)
    return Actor.webhook("gocardless")
