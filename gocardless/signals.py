"""Typed domain signals: what happened to the money, not which raw event said so.

``reconciliation/`` subscribes to these (not to raw events). Every signal is sent with
``sender`` = the mirror model class and keyword arguments:

- ``tenant``: the Tenant;
- ``instance``: the mirror row (Payment, Mandate, Payout, Refund, BillingRequest) AFTER the
  change, holding GoCardless's current state;
- ``event``: the GoCardlessEvent being processed (its ``action``/``details`` say why);
- ``previous_status``: the mirror's status before ("" when first seen).

Status signals are sent only when the mirror's status actually changes, so a duplicate or
replayed event never re-signals. A few facts are not statuses (a late failure settled, a
mandate replaced/transferred/reinstated, a refund failed/settled): those are sent once per
event id, which processing guarantees. Receivers run inside the processing transaction: if a
receiver raises, the mirror change rolls back, the event is marked failed and retried later,
and the signal is sent again then.
"""

from django.dispatch import Signal

payment_confirmed = Signal()
payment_failed = Signal()
payment_charged_back = Signal()
payment_paid_out = Signal()
payment_cancelled = Signal()
payment_late_failure_settled = Signal()

mandate_active = Signal()
mandate_cancelled = Signal()
mandate_failed = Signal()
mandate_expired = Signal()
mandate_replaced = Signal()
mandate_transferred = Signal()
mandate_reinstated = Signal()
mandate_blocked = Signal()

payout_paid = Signal()
payout_bounced = Signal()

refund_created = Signal()
refund_paid = Signal()
refund_failed = Signal()
refund_settled = Signal()
refund_bounced = Signal()
refund_cancelled = Signal()
refund_funds_returned = Signal()

billing_request_fulfilled = Signal()

# (resource_type, new status) → signal, sent when the mirror's status changes to it.
STATUS_SIGNALS = {
    ("payments", "confirmed"): payment_confirmed,
    ("payments", "failed"): payment_failed,
    ("payments", "charged_back"): payment_charged_back,
    ("payments", "paid_out"): payment_paid_out,
    ("payments", "cancelled"): payment_cancelled,
    ("mandates", "active"): mandate_active,
    ("mandates", "cancelled"): mandate_cancelled,
    ("mandates", "failed"): mandate_failed,
    ("mandates", "expired"): mandate_expired,
    ("mandates", "blocked"): mandate_blocked,
    ("payouts", "paid"): payout_paid,
    ("payouts", "bounced"): payout_bounced,
    ("refunds", "paid"): refund_paid,
    ("refunds", "bounced"): refund_bounced,
    ("refunds", "cancelled"): refund_cancelled,
    ("refunds", "funds_returned"): refund_funds_returned,
    ("billing_requests", "fulfilled"): billing_request_fulfilled,
}

# (resource_type, event action) → signal, sent once per event (not a status change).
ACTION_SIGNALS = {
    ("payments", "late_failure_settled"): payment_late_failure_settled,
    ("mandates", "replaced"): mandate_replaced,
    ("mandates", "transferred"): mandate_transferred,
    ("mandates", "reinstated"): mandate_reinstated,
    ("refunds", "created"): refund_created,
    ("refunds", "failed"): refund_failed,
    ("refunds", "refund_settled"): refund_settled,
}

# Re-fetching gives the CURRENT state, so a payment may jump from "submitted" straight to
# "paid_out" when the confirmed event is processed late. Money was collected on the way:
# these statuses imply that payment_confirmed must have been sent first.
IMPLIES_CONFIRMED = {"paid_out", "charged_back"}
CONFIRMED_OR_LATER = {"confirmed", "paid_out", "charged_back"}

# Statuses whose reason only their own event carries (``details.cause``: why the payment
# failed or was charged back; the failure rules and the reversal booking need it). When a
# refetch for another event shows one first (webhooks late or out of order), its signal waits
# for the event that says it (event_apply.py).
CAUSED_STATUSES = {"failed", "charged_back"}
