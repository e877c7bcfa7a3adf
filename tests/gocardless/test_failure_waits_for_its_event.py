"""A payment's failure is signalled with the event that says it (and why), whatever order the
events reach us in. When another event of the payment is processed first and its refetch
already shows "failed" or "charged_back", the status is mirrored and audited at once, but the
failure signal waits for the failure's own event: deciding without ``details.cause`` made a
retryable failure (insufficient funds) a case for a person and booked the reversal on another
event's date (found by the chaos month, docs/chaos.md)."""

from __future__ import annotations

import pytest

from gocardless import signals
from gocardless.event_processing import events_process
from gocardless.events_store import events_store
from gocardless.models import EventSource, Payment
from tests.gocardless.test_processing import _money_audits, _pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(gocardless_simulator):
    return gocardless_simulator


@pytest.fixture
def connection(sim):
    from tests.gocardless.conftest import sim_connection

    return sim_connection(sim)


@pytest.fixture
def api(sim):
    from gocardless.client import GoCardlessClient
    from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

    return GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)


@pytest.fixture
def mandate_id(sim):
    return sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]


@pytest.fixture
def failures():
    """(signal, the event's action, its cause) for every failure signal sent."""
    seen: list[tuple[str, str, str]] = []
    connected = []
    for name in ("payment_failed", "payment_charged_back"):
        def receiver(sender, _name=name, **kwargs):
            event = kwargs["event"]
            seen.append((_name, event.action, (event.details or {}).get("cause", "")))

        getattr(signals, name).connect(receiver, weak=False)
        connected.append((getattr(signals, name), receiver))
    yield seen
    for signal, receiver in connected:
        signal.disconnect(receiver)


def _process(sim, connection, actions):
    events = [e for e in sim.events() if e["action"] in actions]
    pks = events_store(tenant=connection.tenant, events=events, source=EventSource.WEBHOOK)
    return events_process(event_pks=pks)


def test_a_failure_seen_first_through_another_event_waits_for_its_own(
    sim, connection, api, mandate_id, failures, signal_log
):
    payment_id = _pay(api, mandate_id)
    sim.fail_payment(payment_id, "insufficient_funds")
    # The "submitted" webhook comes first; its refetch shows the payment failed already.
    _process(sim, connection, {"created", "submitted"})
    payment = Payment.objects.get(gocardless_id=payment_id)
    assert payment.status == "failed"  # mirrored and audited at once ...
    assert _money_audits().filter(object_id=str(payment.pk)).exists()
    assert failures == []  # ... but not decided without its cause
    # The failure's own event (delayed, or recovered by polling) sends it, with the cause.
    _process(sim, connection, {"failed"})
    assert failures == [("payment_failed", "failed", "insufficient_funds")]
    assert signal_log.names(payment_id).count("payment_failed") == 1


def test_in_order_the_failure_is_signalled_once_with_its_event(
    sim, connection, api, mandate_id, failures, signal_log
):
    payment_id = _pay(api, mandate_id)
    sim.fail_payment(payment_id, "insufficient_funds")
    _process(sim, connection, {"created", "submitted", "failed"})
    assert failures == [("payment_failed", "failed", "insufficient_funds")]
    assert signal_log.names(payment_id).count("payment_failed") == 1


def test_a_chargeback_seen_first_still_confirms_at_once_and_reverses_with_its_event(
    sim, connection, api, mandate_id, failures, signal_log
):
    payment_id = _pay(api, mandate_id)
    sim.advance(days=14)  # collected and paid out
    sim.run_scenario("payment_charged_back", payment_id)
    # Only the creation's webhook has come; its refetch shows the chargeback already: the
    # money was collected on the way (confirmed now), the chargeback waits for its event.
    _process(sim, connection, {"created"})
    assert Payment.objects.get(gocardless_id=payment_id).status == "charged_back"
    assert signal_log.names(payment_id) == ["payment_confirmed"]
    assert failures == []
    _process(sim, connection, {"charged_back"})
    assert [f[:2] for f in failures] == [("payment_charged_back", "charged_back")]
    assert signal_log.names(payment_id) == ["payment_confirmed", "payment_charged_back"]
