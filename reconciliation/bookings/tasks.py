"""django-q2 tasks: thin wrappers around the posting services. Queued by dotted path
(services.booking_post_enqueue, schedules.py), so nothing imports this module but the
worker."""

from __future__ import annotations

import logging

from core.audit import Actor

from . import plan_bookings, posting, reposts

logger = logging.getLogger(__name__)


def booking_post_task(booking_pk: int) -> str:
    try:
        return posting.booking_post(booking_pk=booking_pk)
    except Exception:
        # The sweeper retries; a task must not leave the booking in an unknown state.
        logger.exception("booking %s: post task failed", booking_pk)
        return "error"


def bookings_sweep_task() -> dict:
    return posting.bookings_sweep()


def repost_batch_task(batch_pk: int) -> str:
    """A person's *Re-post* of selected bookings (reposts.py), off the request."""
    return reposts.repost_batch_run(batch_pk=batch_pk)


def plan_payments_match_task(tenant_id: int) -> dict:
    """Match one tenant's waiting plan payments (after an Exact receivables sync)."""
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return {}
    return plan_bookings.plan_payments_match(
        tenant=tenant, actor=Actor.system("plan payment matching")
    )


def plan_payments_sweep_task() -> dict:
    return plan_bookings.plan_payments_sweep()
