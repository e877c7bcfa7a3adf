"""config/wiring.py is the one place cross-app signals are connected, in a fixed order.

Run with ``-s`` to see the whole wiring (signal → handlers, in the order they run).
"""

import weakref

from django.dispatch.dispatcher import _make_id

from config.wiring import WIRING, signal_name, wired_signals, wiring_connect, wiring_describe

# The order the apps' ready() hooks produced before the registry (INSTALLED_APPS: customers,
# collection, bookings), printed from each signal's receivers and kept: customers before
# collection on a stopped mandate and a finished sync, collection before bookings on a payment.
COLLECTION = "reconciliation.collection.receivers"
BOOKINGS = "reconciliation.bookings.receivers"
CUSTOMERS = "reconciliation.customers.receivers"
EXPECTED = {
    "gocardless.payment_confirmed": [f"{COLLECTION}.on_payment_changed [Payment]",
                                     f"{BOOKINGS}.on_payment_confirmed [Payment]"],
    "gocardless.payment_paid_out": [f"{COLLECTION}.on_payment_changed [Payment]",
                                    f"{BOOKINGS}.on_payment_paid_out [Payment]"],
    "gocardless.payment_failed": [f"{COLLECTION}.on_payment_changed [Payment]",
                                  f"{BOOKINGS}.on_payment_reversed [Payment]"],
    "gocardless.payment_charged_back": [f"{COLLECTION}.on_payment_changed [Payment]",
                                        f"{BOOKINGS}.on_payment_reversed [Payment]"],
    "gocardless.payment_cancelled": [f"{COLLECTION}.on_payment_changed [Payment]"],
    "gocardless.payment_late_failure_settled": [],
    "gocardless.mandate_active": [f"{CUSTOMERS}.on_mandate_usable [Mandate]"],
    "gocardless.mandate_reinstated": [f"{CUSTOMERS}.on_mandate_usable [Mandate]"],
    "gocardless.mandate_cancelled": [f"{CUSTOMERS}.on_mandate_stopped [Mandate]",
                                     f"{COLLECTION}.on_mandate_stopped [Mandate]"],
    "gocardless.mandate_failed": [f"{CUSTOMERS}.on_mandate_stopped [Mandate]",
                                  f"{COLLECTION}.on_mandate_stopped [Mandate]"],
    "gocardless.mandate_expired": [f"{CUSTOMERS}.on_mandate_stopped [Mandate]",
                                   f"{COLLECTION}.on_mandate_stopped [Mandate]"],
    "gocardless.mandate_blocked": [f"{CUSTOMERS}.on_mandate_stopped [Mandate]",
                                   f"{COLLECTION}.on_mandate_stopped [Mandate]"],
    "gocardless.mandate_replaced": [f"{CUSTOMERS}.on_mandate_replaced [Mandate]"],
    "gocardless.mandate_transferred": [f"{CUSTOMERS}.on_mandate_transferred [Mandate]"],
    "gocardless.billing_request_fulfilled": [
        f"{CUSTOMERS}.on_billing_request_fulfilled [BillingRequest]"],
    "gocardless.payout_paid": [f"{BOOKINGS}.on_payout_paid [Payout]"],
    "gocardless.payout_bounced": [f"{BOOKINGS}.on_payout_bounced [Payout]"],
    "gocardless.refund_created": [],
    "gocardless.refund_paid": [f"{BOOKINGS}.on_refund_paid [Refund]"],
    "gocardless.refund_settled": [f"{BOOKINGS}.on_refund_paid [Refund]"],
    "gocardless.refund_failed": [f"{BOOKINGS}.on_refund_returned [Refund]"],
    "gocardless.refund_bounced": [f"{BOOKINGS}.on_refund_returned [Refund]"],
    "gocardless.refund_cancelled": [],
    "gocardless.refund_funds_returned": [f"{BOOKINGS}.on_refund_returned [Refund]"],
    "customers.collection_stopped": [],
    "customers.collection_resumed": [],
    "post_save(exact.SyncRun)": [f"{CUSTOMERS}.on_sync_run_saved [SyncRun]",
                                 f"{COLLECTION}.on_sync_run_saved [SyncRun]",
                                 f"{BOOKINGS}.on_sync_run_saved [SyncRun]"],
}


def _live(signal, sender) -> list[tuple]:
    """(lookup key, handler) of what is connected to ``signal`` right now, in call order;
    for a signal owned for one sender only, the receivers connected for that sender."""
    out = []
    for key, ref, *_ in signal.receivers:
        if sender is not None and key[1] != _make_id(sender):
            continue
        handler = ref() if isinstance(ref, weakref.ReferenceType) else ref
        out.append((key, handler))
    return out


def test_print_the_wiring_and_nothing_is_connected_any_other_way():
    print()
    for name, handlers in wiring_describe().items():
        print(f"{name:45} -> {', '.join(handlers) or '(no handler)'}")
    registry: dict[str, list[tuple]] = {name: [] for name in wired_signals()}
    for signal, sender, handler, uid in WIRING:
        registry[signal_name(signal, sender)].append(((uid, _make_id(sender)), handler))
    for name, (signal, sender) in wired_signals().items():
        assert _live(signal, sender) == registry[name], (
            f"{name}: connected {_live(signal, sender)}, config/wiring.py says {registry[name]}"
        )


def test_the_order_of_the_wiring_is_the_expected_one():
    assert wiring_describe() == EXPECTED


def test_every_domain_signal_is_in_the_registry_and_each_row_is_unique():
    from gocardless import signals

    sent = {*signals.STATUS_SIGNALS.values(), *signals.ACTION_SIGNALS.values()}
    owned = {signal for signal, _sender in wired_signals().values()}
    assert len(sent) == 24 and sent <= owned
    uids = [uid for *_, uid in WIRING]
    assert len(uids) == len(set(uids))


def test_connecting_again_changes_nothing():
    before = {name: _live(signal, sender) for name, (signal, sender) in wired_signals().items()}
    wiring_connect()
    after = {name: _live(signal, sender) for name, (signal, sender) in wired_signals().items()}
    assert after == before
