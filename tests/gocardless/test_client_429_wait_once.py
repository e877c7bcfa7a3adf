"""A 429 that says "none left, reset at T" is waited for once: the client waits for T, then
retries; it does not wait for T a second time because the 429's headers still say none are
left (found by the chaos month, tests/chaos: every refused call cost two waits)."""

from __future__ import annotations

from gocardless.client import GoCardlessClient
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN, SIM_START


def test_a_429_with_none_remaining_costs_one_wait(gocardless_simulator):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{"scheme": "bacs", "status": "active"}])["mandates"][0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        sim.faults.chaos_off()  # the window has reset: the retry is answered

    # Every call refused with GoCardless' 429 (RateLimit-Remaining: 0, reset next minute).
    sim.faults.chaos(seed=1, rate=1.0, kinds=("rate_limit",), burst=1)
    client = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=2,
                              sleep=sleep, now=lambda: SIM_START)
    assert client.mandate_get(mandate)["id"] == mandate
    assert len(sleeps) == 1
    assert sim.call_counts()["GET /mandates/{id}"] == {"429": 1, "200": 1}
