"""Subscriptions to GoCardless domain signals: each money event becomes a Booking.

Receivers run inside the event-processing transaction (gocardless/signals.py), so a booking
exists if and only if the event's mirror change is committed; the post to Exact is queued
after commit. They never call Exact and never raise for data that is merely "not ours".
Which signal reaches which receiver (and in what order) is config/wiring.py's table.
"""

from __future__ import annotations

import logging

from . import plan_bookings, services

logger = logging.getLogger(__name__)


def on_payment_confirmed(sender, *, tenant, instance, event, previous_status, **kwargs):
    # A subscription / instalment payment is matched to its invoice first (no-op for ours).
    plan_bookings.plan_payment_seen(tenant=tenant, payment=instance, event=event)
    services.receipt_book(tenant=tenant, payment=instance, event=event, on="confirmed")


def on_payment_paid_out(sender, *, tenant, instance, event, previous_status, **kwargs):
    plan_bookings.plan_payment_seen(tenant=tenant, payment=instance, event=event)
    services.receipt_book(tenant=tenant, payment=instance, event=event, on="paid_out")


def on_payment_reversed(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.reversal_book(tenant=tenant, payment=instance, event=event)


def on_payout_paid(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.payout_book(tenant=tenant, payout=instance, event=event)


def on_payout_bounced(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.payout_bounce_book(tenant=tenant, payout=instance, event=event)


def on_refund_paid(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.refund_book(tenant=tenant, refund=instance, event=event)


def on_refund_returned(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.refund_return_book(tenant=tenant, refund=instance, event=event)



def on_sync_run_saved(sender, *, instance, created, **kwargs):
    """An Exact receivables sync finished: plan payments waiting for their invoice may find
    it now (queued after commit; the sync must never fail because of us)."""
    try:
        if created or instance.finished_at is None or instance.error:
            return
        if instance.entity != "receivables" or not (instance.created or instance.updated):
            return
        from core.queue import enqueue_on_commit

        enqueue_on_commit(
            "reconciliation.bookings.tasks.plan_payments_match_task",
            instance.tenant_id,
            group="bookings",
        )
    except Exception:
        logger.exception("could not queue plan payment matching for sync run %s", instance.pk)
