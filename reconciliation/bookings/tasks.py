"""django-q2 tasks: thin wrappers around the posting services. Queued by dotted path
(services.booking_post_enqueue, schedules.py), so nothing imports this module but the
worker."""

from __future__ import annotations

import logging

from core.audit import Actor

from . import company_posting, plan_bookings, reposts
from .models import Booking

logger = logging.getLogger(__name__)


def booking_post_task(booking_pk: int) -> dict | str:
    """Queued per booking by its receiver (services.booking_post_enqueue): runs the turn of
    the booking's company (company_posting.py), which posts this booking and the company's
    other due ones; when the company's turn runs elsewhere, it posts its own booking beside
    it (never sleeping on Exact's minute)."""
    try:
        tenant_id = Booking.objects.values_list("tenant_id", flat=True).get(pk=booking_pk)
        return company_posting.bookings_company_post(tenant_id=tenant_id, booking_pk=booking_pk)
    except Exception:
        # The sweeper retries; a task must not leave the booking in an unknown state.
        logger.exception("booking %s: post task failed", booking_pk)
        return "error"


def bookings_company_post_task(tenant_id: int) -> dict | str:
    """One company's turn, handed out by the sweep or queued by the company's last turn."""
    try:
        return company_posting.bookings_company_post(tenant_id=tenant_id)
    except Exception:
        logger.exception("bookings: company %s's turn failed", tenant_id)
        return "error"


def bookings_sweep_task() -> dict:
    """Every minute: one turn queued per company with due bookings (round robin)."""
    return company_posting.bookings_hand_out()


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
