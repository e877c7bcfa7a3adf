"""Subscriptions to GoCardless domain signals: each money event becomes a Booking.

Receivers run inside the event-processing transaction (gocardless/signals.py), so a booking
exists if and only if the event's mirror change is committed; the post to Exact is queued
after commit. They never call Exact and never raise for data that is merely "not ours".
Which signal reaches which receiver (and in what order) is config/wiring.py's table.
"""

from __future__ import annotations

from . import services


def on_payment_confirmed(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.receipt_book(tenant=tenant, payment=instance, event=event, on="confirmed")


def on_payment_paid_out(sender, *, tenant, instance, event, previous_status, **kwargs):
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

