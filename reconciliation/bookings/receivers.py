"""Subscriptions to GoCardless domain signals: each money event becomes a Booking.

Receivers run inside the event-processing transaction (gocardless/signals.py), so a booking
exists if and only if the event's mirror change is committed; the post to Exact is queued
after commit. They never call Exact and never raise for data that is merely "not ours".
"""

from __future__ import annotations

from gocardless import signals
from gocardless.models import Payment, Payout, Refund

from . import services


def _on_payment_confirmed(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.receipt_book(tenant=tenant, payment=instance, event=event, on="confirmed")


def _on_payment_paid_out(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.receipt_book(tenant=tenant, payment=instance, event=event, on="paid_out")


def _on_payment_reversed(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.reversal_book(tenant=tenant, payment=instance, event=event)


def _on_payout_paid(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.payout_book(tenant=tenant, payout=instance, event=event)


def _on_payout_bounced(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.payout_bounce_book(tenant=tenant, payout=instance, event=event)


def _on_refund_paid(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.refund_book(tenant=tenant, refund=instance, event=event)


def _on_refund_returned(sender, *, tenant, instance, event, previous_status, **kwargs):
    services.refund_return_book(tenant=tenant, refund=instance, event=event)


CONNECTIONS = [
    (signals.payment_confirmed, Payment, _on_payment_confirmed),
    (signals.payment_paid_out, Payment, _on_payment_paid_out),
    (signals.payment_failed, Payment, _on_payment_reversed),
    (signals.payment_charged_back, Payment, _on_payment_reversed),
    (signals.payout_paid, Payout, _on_payout_paid),
    (signals.payout_bounced, Payout, _on_payout_bounced),
    (signals.refund_paid, Refund, _on_refund_paid),
    # Settled = deducted from a payout: the money left even if "paid" is seen late.
    (signals.refund_settled, Refund, _on_refund_paid),
    (signals.refund_failed, Refund, _on_refund_returned),
    (signals.refund_bounced, Refund, _on_refund_returned),
    (signals.refund_funds_returned, Refund, _on_refund_returned),
]


def connect() -> None:
    for signal, sender, receiver in CONNECTIONS:
        uid = f"bookings.{receiver.__name__}.{id(signal)}"
        signal.connect(receiver, sender=sender, dispatch_uid=uid)
