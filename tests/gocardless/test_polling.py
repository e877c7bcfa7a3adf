"""Polling alone (webhooks off in the simulator) brings the mirror to GoCardless's state."""

import pytest

from gocardless.client import GoCardlessClient
from gocardless.models import GoCardlessEvent, Mandate, Payment, Payout
from gocardless.polling import events_poll, events_poll_all
from tests.gocardless.conftest import sim_connection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _poll_settings(settings):
    # The simulator's clock is in March 2026; look back without a limit on the first run.
    settings.GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS = 0
    settings.GOCARDLESS_POLL_PAGE_SIZE = 3  # several pages per run


@pytest.fixture
def sim(gocardless_simulator):
    gocardless_simulator.set_webhook_url("http://127.0.0.1:9/unused")
    gocardless_simulator.set_webhooks_enabled(False)
    return gocardless_simulator


@pytest.fixture
def api(sim):
    return GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)


def _mirror_matches(sim):
    for model, kind in ((Payment, "payments"), (Mandate, "mandates"), (Payout, "payouts")):
        truth = {r["id"]: r["status"] for r in sim.resource(kind)}
        mirrored = dict(model.objects.values_list("gocardless_id", "status"))
        if kind == "mandates":
            # Seeded mandates emit no events; the mirror holds those events talk about.
            truth = {k: v for k, v in truth.items() if k in mirrored}
        assert mirrored == truth, kind


def _world(sim, api):
    mandates = sim.seed(mandates=[{"scheme": "sepa_core"}, {"scheme": "bacs"}])["mandates"]
    payments = [
        api.payment_create(params={"amount": 1000 + n, "currency": cur,
                                   "links": {"mandate": mandates[n % 2]}},
                           idempotency_key=f"poll-{n}")["id"]
        for n, cur in enumerate(["EUR", "GBP", "EUR", "GBP"])
    ]
    return mandates, payments


def test_polling_alone_heals_a_day_of_missed_webhooks(sim, api):
    connection = sim_connection(sim)
    mandates, payments = _world(sim, api)
    sim.advance(days=1)
    assert sim.webhook_log() == []  # nothing was delivered

    result = events_poll(connection=connection)
    assert result["seen"] == len(sim.events()) and result.get("failed", 0) == 0
    _mirror_matches(sim)
    connection.refresh_from_db()
    newest = sim.events()[-1]
    assert connection.events_cursor_id == newest["id"]

    # A day (and more) of missed webhooks: the next run reads only from the cursor on.
    sim.run_scenario("payment_failed", payments[0])
    sim.run_scenario("mandate_cancelled", mandates[1])
    sim.advance(days=14)
    before = GoCardlessEvent.objects.count()
    result = events_poll(connection=connection)
    assert result.get("failed", 0) == 0
    assert GoCardlessEvent.objects.count() - before == len(sim.events()) - before
    assert result["seen"] < len(sim.events())  # started from the cursor, not from scratch
    _mirror_matches(sim)
    assert Payment.objects.get(gocardless_id=payments[0]).status == "failed"
    assert Mandate.objects.get(gocardless_id=mandates[1]).status == "cancelled"

    # Nothing new: one page, nothing queued.
    assert events_poll(connection=connection)["queued"] == 0


def test_poll_all_covers_every_connected_tenant_and_survives_one_failure(sim, api):
    good = sim_connection(sim)
    broken = sim_connection(sim, access_token="revoked", organisation_id="ORBROKEN")
    _world(sim, api)
    results = events_poll_all()
    assert results[good.tenant_id]["seen"] == len(sim.events())
    assert "error" in results[broken.tenant_id]
    _mirror_matches(sim)
