"""Rate limiting and injected faults, seen through the official SDK where it matters."""

import gocardless_pro
import pytest
import requests
from gocardless_pro import errors as gc_errors

from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

HEADERS = {"Authorization": f"Bearer {SIM_ACCESS_TOKEN}", "GoCardless-Version": "2015-07-06"}


def test_rate_limit_headers_and_429(gocardless_simulator):
    sim = gocardless_simulator
    sim.set_rate_limit(3)
    responses = [requests.get(sim.url + "/creditors", headers=HEADERS, timeout=5)
                 for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in responses)
    assert responses[0].headers["RateLimit-Reset"] == "Mon, 02 Mar 2026 10:01:00 GMT"
    assert responses[3].json() == {"error": {
        "message": "Rate limit exceeded",
        "documentation_url": "https://developer.gocardless.com/api-reference#rate_limit_exceeded",
        "type": "invalid_api_usage", "request_id": responses[3].json()["error"]["request_id"],
        "code": 429,
        "errors": [{"reason": "rate_limit_exceeded", "message": "Rate limit exceeded"}]}}
    # Other tokens have their own budget; the next simulated minute starts afresh.
    other = requests.get(sim.url + "/creditors", timeout=5,
                         headers={**HEADERS, "Authorization": "Bearer sim-other-token"})
    assert other.status_code == 200
    sim.clock.advance(seconds=60)
    assert requests.get(sim.url + "/creditors", headers=HEADERS, timeout=5).status_code == 200


def test_sdk_sees_rate_limit(gocardless_simulator, gocardless_sdk):
    gocardless_sdk.creditors.list()
    assert gocardless_sdk._api_client.rate_limit.limit == 1000
    assert gocardless_sdk._api_client.rate_limit.remaining == 999
    gocardless_simulator.inject("rate_limit")
    with pytest.raises(gc_errors.RateLimitError):
        gocardless_sdk.creditors.list()


def test_injected_500_is_a_gocardless_error(gocardless_simulator, gocardless_sdk):
    gocardless_simulator.inject("error_500", count=2, path="/payments")
    for _ in range(2):
        with pytest.raises(gc_errors.GoCardlessInternalError):
            gocardless_sdk.payments.list()
    assert gocardless_sdk.creditors.list().records  # other paths unaffected
    assert gocardless_sdk.payments.list().records == []


def test_html_502_is_retried_by_the_sdk_with_the_same_key(gocardless_simulator,
                                                          gocardless_sdk):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.inject("html_502", method="POST", path="/payments")
    payment = gocardless_sdk.payments.create(
        params={"amount": 1000, "currency": "GBP", "links": {"mandate": mandate}},
        headers={"Idempotency-Key": "inv-502"})
    assert payment.id.startswith("PM")
    assert sim.call_counts()["POST /payments"] == {"201": 1, "502": 1}
    assert len(sim.resource("payments")) == 1
    # The key stored with the payment is the one we passed.
    again = requests.post(sim.url + "/payments", timeout=5,
                          headers={**HEADERS, "Idempotency-Key": "inv-502"},
                          json={"payments": {"amount": 1000, "currency": "GBP",
                                             "links": {"mandate": mandate}}})
    assert again.status_code == 409
    assert again.json()["error"]["errors"][0]["links"]["conflicting_resource_id"] == payment.id


def test_dropped_response_then_conflict_returns_the_created_payment(gocardless_simulator,
                                                                    gocardless_sdk):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.inject("drop_response", method="POST", path="/payments")
    payment = gocardless_sdk.payments.create(
        params={"amount": 1000, "currency": "GBP", "links": {"mandate": mandate}},
        headers={"Idempotency-Key": "inv-drop"})
    [stored] = sim.resource("payments")
    assert payment.id == stored["id"]
    counts = sim.call_counts()
    assert counts["POST /payments"] == {"201": 1, "409": 1}
    assert counts["GET /payments/{id}"] == {"200": 1}


def test_timeout_is_not_processed_and_retried(gocardless_simulator):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.inject("timeout", seconds=0.3, method="POST", path="/payments")
    client = gocardless_pro.Client(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=0.1)
    payment = client.payments.create(params={"amount": 1000, "currency": "GBP",
                                             "links": {"mandate": mandate}})
    assert [p["id"] for p in sim.resource("payments")] == [payment.id]


def test_latency_applies_to_every_call(gocardless_simulator, gocardless_sdk):
    gocardless_simulator.inject("latency", ms=150)
    with pytest.raises(requests.Timeout):
        requests.get(gocardless_simulator.url + "/creditors", headers=HEADERS, timeout=0.05)
    gocardless_simulator.inject("latency", ms=0)
    assert gocardless_sdk.creditors.get("CR000SIM").id == "CR000SIM"


def test_unknown_fault_kind(gocardless_simulator):
    with pytest.raises(ValueError):
        gocardless_simulator.inject("meteor")
