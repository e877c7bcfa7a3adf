"""Property: whatever the order and however many duplicates, the mirror ends where
GoCardless (the simulator) is.

One simulator for the module (starting servers is the slow part); every example resets it
and builds a mandate through the billing-request flow plus a payment, so both have real
event histories, with a scenario drawn by hypothesis on top.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gocardless.client import GoCardlessClient
from gocardless.event_processing import events_process
from gocardless.events_store import events_store
from gocardless.models import EventSource, GoCardlessEvent, Mandate, Payment
from simulators.gocardless import SimClock, Simulator
from tests.gocardless.conftest import SignalLog, sim_connection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN, SIM_START, SIM_WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

PAYMENT_SCENARIOS = [None, "payment_failed", "payment_charged_back",
                     "payment_late_failure_settled"]
MANDATE_SCENARIOS = [None, "mandate_cancelled", "mandate_expired", "mandate_transferred"]


@pytest.fixture(scope="module")
def module_sim():
    sim = Simulator(access_tokens=(SIM_ACCESS_TOKEN,), webhook_secret=SIM_WEBHOOK_SECRET,
                    clock=SimClock(SIM_START, frozen=True)).start()
    yield sim
    sim.stop()


def _history(sim, payment_scenario, mandate_scenario, days):
    sim.reset()
    api = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)
    request = api.billing_request_create(
        params={"mandate_request": {"currency": "GBP"}}, idempotency_key="br")
    flow = api.billing_request_flow_create(
        params={"redirect_uri": "https://example.test/done",
                "links": {"billing_request": request["id"]}}, idempotency_key="brf")
    mandate = sim.complete_billing_request_flow(flow["id"], given_name="Ada",
                                                family_name="Lovelace", email="ada@example.test")
    sim.advance(days=4)
    payment = api.payment_create(
        params={"amount": 4200, "currency": "GBP", "links": {"mandate": mandate["id"]},
                "metadata": {"exact_invoice": "INV-P"}}, idempotency_key="pm")["id"]
    if payment_scenario:  # the scenarios start from a fresh (pending_submission) payment
        sim.run_scenario(payment_scenario, payment)
    sim.advance(days=days)
    if mandate_scenario:
        sim.run_scenario(mandate_scenario, mandate["id"])
    sim.advance(days=1)
    events = [e for e in sim.events() if e["resource_type"] in ("payments", "mandates")
              and (e["links"].get("payment") == payment
                   or e["links"].get("mandate") == mandate["id"])]
    return payment, mandate["id"], events


# Drawn independently of the history (whose length varies with the calendar), then mapped
# onto it, so hypothesis sees the same shape of data on every run.
ORDERINGS = st.fixed_dictionaries({
    "keys": st.lists(st.integers(0, 10**6), min_size=64, max_size=64),
    "duplicates": st.lists(st.integers(0, 63), max_size=16),
    "cuts": st.sets(st.integers(1, 80), max_size=4),
})


def deliveries(events, ordering):
    """The events in a random order, some more than once, cut into random batches."""
    stream = [e for _, e in sorted(zip(ordering["keys"], events, strict=False),
                                   key=lambda pair: pair[0])]
    for n, index in enumerate(ordering["duplicates"]):
        stream.insert((n * 7) % (len(stream) + 1), events[index % len(events)])
    batches, start = [], 0
    for cut in [*sorted(c for c in ordering["cuts"] if c < len(stream)), len(stream)]:
        if cut > start:
            batches.append(stream[start:cut])
            start = cut
    return batches


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(ordering=ORDERINGS,
       payment_scenario=st.sampled_from(PAYMENT_SCENARIOS),
       mandate_scenario=st.sampled_from(MANDATE_SCENARIOS),
       days=st.integers(0, 12))
def test_any_order_with_duplicates_ends_in_the_simulators_state(
    module_sim, ordering, payment_scenario, mandate_scenario, days
):
    # Every example gets a fresh tenant (nothing is deleted: other apps link to mirrors), and
    # no organisation id: one organisation belongs to one tenant.
    payment_id, mandate_id, events = _history(module_sim, payment_scenario, mandate_scenario, days)
    connection = sim_connection(module_sim, organisation_id="")
    log = SignalLog()
    try:
        for batch in deliveries(events, ordering):
            pks = events_store(tenant=connection.tenant, events=batch,
                               source=EventSource.WEBHOOK)
            assert events_process(event_pks=pks).get("failed", 0) == 0
    finally:
        log.disconnect()

    payment = Payment.objects.get(tenant=connection.tenant, gocardless_id=payment_id)
    mandate = Mandate.objects.get(tenant=connection.tenant, gocardless_id=mandate_id)
    assert payment.raw == module_sim.resource("payments", payment_id)
    assert payment.status == module_sim.resource("payments", payment_id)["status"]
    assert mandate.raw == module_sim.resource("mandates", mandate_id)
    assert GoCardlessEvent.objects.filter(tenant=connection.tenant).count() == len(
        {e["id"] for e in events})
    # No status was signalled twice in a row for the same resource (duplicates are silent).
    for gid in (payment_id, mandate_id):
        calls = [(c[0], c[2], c[3]) for c in log.calls if c[1] == gid]
        assert len(calls) == len(set(calls))
