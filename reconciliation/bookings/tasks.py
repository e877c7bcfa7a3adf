"""django-q2 tasks: thin wrappers around the posting services."""

from __future__ import annotations

import logging

from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def booking_post_enqueue(*, booking_pk: int) -> None:
    """Queue one booking's post (called after the event transaction commits). Should the
    broker be down, the booking stays pending and the sweeper posts it."""
    try:
        async_task("reconciliation.bookings.tasks.booking_post_task", booking_pk)
    except Exception:
        logger.warning(
            "booking %s: could not queue its post; the sweeper will", booking_pk, exc_info=True
        )


def booking_post_task(booking_pk: int) -> str:
    from .posting import booking_post

    try:
        return booking_post(booking_pk=booking_pk)
    except Exception:
        # The sweeper retries; a task must not leave the booking in an unknown state.
        logger.exception("booking %s: post task failed", booking_pk)
        return "error"


def bookings_sweep_task() -> dict:
    from .posting import bookings_sweep

    return bookings_sweep()
