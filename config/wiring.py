"""The one registry of signals that cross apps, and the handlers that receive them, in order.

Every GoCardless domain signal (gocardless/signals.py), the Exact sync-run ``post_save`` and
the customers app's ``collection_stopped`` / ``collection_resumed`` are connected here and
nowhere else: ``wiring_connect()`` runs once, from ``ConfigAppConfig.ready()``. The handlers
are the thin functions in each app's ``receivers.py``; they call that app's services.
``tests/test_wiring.py`` prints this wiring and fails when a handler reaches one of these
signals any other way, or when the order below changes.

Order matters. Handlers of one signal run in the order of their rows, inside the sender's
transaction (GoCardless: the event-processing savepoint of that resource; a handler that
raises rolls the resource back and the event is retried). The order is the one the apps'
``ready()`` hooks produced before this registry existed (INSTALLED_APPS: customers, then
collection, then bookings):

- a stopped mandate: customers first (the link stops and ``collection_stopped`` is sent), then
  collection (the customer's in-flight attempts);
- a payment: collection first (the attempt's state), then bookings (the receipt or reversal);
- a finished Exact sync: customers first (push account changes), then collection (check
  in-flight payments, collect new invoices).

config is the top layer: it may import every app, and no app imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models.signals import post_save
from django.dispatch import Signal

from exact.models import SyncRun
from gocardless import signals as gc
from gocardless.models import BillingRequest, Mandate, Payment, Payout, Refund
from reconciliation.bookings import receivers as bookings
from reconciliation.collection import receivers as collection
from reconciliation.customers import receivers as customers
from reconciliation.customers import signals as customer_signals

# (signal, sender, handler, dispatch uid), connected in this order.
WIRING: list[tuple[Signal, type, Callable, str]] = [
    # --- payments --------------------------------------------------------------------------
    (gc.payment_confirmed, Payment, collection.on_payment_changed,
     "collection.payment_changed.payment_confirmed"),
    (gc.payment_confirmed, Payment, bookings.on_payment_confirmed,
     "bookings.payment_confirmed.payment_confirmed"),
    (gc.payment_paid_out, Payment, collection.on_payment_changed,
     "collection.payment_changed.payment_paid_out"),
    (gc.payment_paid_out, Payment, bookings.on_payment_paid_out,
     "bookings.payment_paid_out.payment_paid_out"),
    (gc.payment_failed, Payment, collection.on_payment_changed,
     "collection.payment_changed.payment_failed"),
    (gc.payment_failed, Payment, bookings.on_payment_reversed,
     "bookings.payment_reversed.payment_failed"),
    (gc.payment_charged_back, Payment, collection.on_payment_changed,
     "collection.payment_changed.payment_charged_back"),
    (gc.payment_charged_back, Payment, bookings.on_payment_reversed,
     "bookings.payment_reversed.payment_charged_back"),
    (gc.payment_cancelled, Payment, collection.on_payment_changed,
     "collection.payment_changed.payment_cancelled"),
    # --- mandates --------------------------------------------------------------------------
    (gc.mandate_active, Mandate, customers.on_mandate_usable,
     "customers.mandate_usable.mandate_active"),
    (gc.mandate_reinstated, Mandate, customers.on_mandate_usable,
     "customers.mandate_usable.mandate_reinstated"),
    (gc.mandate_cancelled, Mandate, customers.on_mandate_stopped,
     "customers.mandate_stopped.mandate_cancelled"),
    (gc.mandate_cancelled, Mandate, collection.on_mandate_stopped,
     "collection.mandate_stopped.mandate_cancelled"),
    (gc.mandate_failed, Mandate, customers.on_mandate_stopped,
     "customers.mandate_stopped.mandate_failed"),
    (gc.mandate_failed, Mandate, collection.on_mandate_stopped,
     "collection.mandate_stopped.mandate_failed"),
    (gc.mandate_expired, Mandate, customers.on_mandate_stopped,
     "customers.mandate_stopped.mandate_expired"),
    (gc.mandate_expired, Mandate, collection.on_mandate_stopped,
     "collection.mandate_stopped.mandate_expired"),
    (gc.mandate_blocked, Mandate, customers.on_mandate_stopped,
     "customers.mandate_stopped.mandate_blocked"),
    (gc.mandate_blocked, Mandate, collection.on_mandate_stopped,
     "collection.mandate_stopped.mandate_blocked"),
    (gc.mandate_replaced, Mandate, customers.on_mandate_replaced,
     "customers.mandate_replaced.mandate_replaced"),
    (gc.mandate_transferred, Mandate, customers.on_mandate_transferred,
     "customers.mandate_transferred.mandate_transferred"),
    (gc.billing_request_fulfilled, BillingRequest, customers.on_billing_request_fulfilled,
     "customers.billing_request_fulfilled.billing_request_fulfilled"),
    # --- payouts ---------------------------------------------------------------------------
    (gc.payout_paid, Payout, bookings.on_payout_paid, "bookings.payout_paid.payout_paid"),
    (gc.payout_bounced, Payout, bookings.on_payout_bounced,
     "bookings.payout_bounced.payout_bounced"),
    # --- refunds ---------------------------------------------------------------------------
    (gc.refund_paid, Refund, bookings.on_refund_paid, "bookings.refund_paid.refund_paid"),
    # Settled = deducted from a payout: the money left even if "paid" is seen late.
    (gc.refund_settled, Refund, bookings.on_refund_paid, "bookings.refund_paid.refund_settled"),
    (gc.refund_failed, Refund, bookings.on_refund_returned,
     "bookings.refund_returned.refund_failed"),
    (gc.refund_bounced, Refund, bookings.on_refund_returned,
     "bookings.refund_returned.refund_bounced"),
    (gc.refund_funds_returned, Refund, bookings.on_refund_returned,
     "bookings.refund_returned.refund_funds_returned"),
    # --- Exact: a finished sync run ---------------------------------------------------------
    (post_save, SyncRun, customers.on_sync_run_saved, "customers.sync_run_saved"),
    (post_save, SyncRun, collection.on_sync_run_saved, "collection.sync_run_saved"),
    (post_save, SyncRun, bookings.on_sync_run_saved, "bookings.sync_run_saved"),
]

# Sent, with no handler today (listed so that one connected elsewhere is noticed):
# gc.payment_late_failure_settled, gc.refund_created, gc.refund_cancelled, and the customers
# app's collection_stopped / collection_resumed (the collection engine reads the link's state
# when it selects, and its own mandate handler above flags in-flight attempts).


def wired_signals() -> dict[str, tuple[Signal, type | None]]:
    """Every signal this registry owns, by name, with the one sender it owns it for (None: any
    sender). A handler of these may be connected only through ``WIRING``."""
    owned: dict[str, tuple[Signal, type | None]] = {
        f"gocardless.{name}": (signal, None)
        for name, signal in vars(gc).items()
        if isinstance(signal, Signal)
    }
    for name in ("collection_stopped", "collection_resumed"):
        owned[f"customers.{name}"] = (getattr(customer_signals, name), None)
    # post_save is Django's, sent for every model; only SyncRun's is a cross-app signal.
    owned["post_save(exact.SyncRun)"] = (post_save, SyncRun)
    return owned


def signal_name(signal: Signal, sender: type | None = None) -> str:
    for name, (owned, owned_sender) in wired_signals().items():
        if owned is signal and owned_sender in (None, sender):
            return name
    raise LookupError(f"{signal!r} (sender {sender!r}) is not in config/wiring.py")


def wiring_connect() -> None:
    """Connect every row of ``WIRING``, in order (idempotent: each row has a dispatch uid)."""
    for signal, sender, handler, uid in WIRING:
        signal.connect(handler, sender=sender, dispatch_uid=uid)


def wiring_describe() -> dict[str, list[str]]:
    """Signal name → its handlers (``module.function [sender]``), in the order they run."""
    described: dict[str, list[str]] = {name: [] for name in wired_signals()}
    for signal, sender, handler, _uid in WIRING:
        described[signal_name(signal, sender)].append(
            f"{handler.__module__}.{handler.__qualname__} [{sender.__name__}]"
        )
    return described
