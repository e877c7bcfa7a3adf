"""The HTTP control API under /_control/ and bulk seeding."""

import time

import requests


def control(sim, method, path, body=None):
    response = requests.request(method, f"{sim.url}/_control/{path}", json=body, timeout=5)
    return response.status_code, response.json()


def test_seed_scenario_advance_and_state(gocardless_simulator):
    sim = gocardless_simulator
    status, seeded = control(sim, "POST", "seed", {
        "customers": [{"company_name": "Acme Ltd", "email": "ap@acme.test"}],
        "mandates": [{"scheme": "sepa_core", "status": "active",
                      "metadata": {"exact_account": "7"}}],
    })
    assert status == 201
    assert len(seeded["customers"]) == 2 and len(seeded["mandates"]) == 1
    status, seeded_payment = control(sim, "POST", "seed", {"payments": [
        {"mandate": seeded["mandates"][0], "amount": 2500, "metadata": {"invoice": "9"}}]})
    payment_id = seeded_payment["payments"][0]
    assert control(sim, "GET", f"state/payments/{payment_id}")[1]["payments"]["currency"] == "EUR"

    assert control(sim, "POST", "scenarios/payment_failed", {"resource_id": payment_id})[0] == 200
    payment = control(sim, "GET", f"state/payments/{payment_id}")[1]["payments"]
    assert payment["status"] == "failed"
    status, error = control(sim, "POST", "scenarios/payment_failed", {"resource_id": payment_id})
    assert status == 422 and error["error"]["type"] == "invalid_state"

    status, clock = control(sim, "POST", "advance", {"days": 2})
    assert status == 200 and clock["now"] == "2026-03-04T10:00:00.000Z"
    assert control(sim, "GET", "clock")[1]["today"] == "2026-03-04"
    assert control(sim, "POST", "advance", {"to": "2026-03-10T08:00:00Z"})[1]["today"] == (
        "2026-03-10")
    events = control(sim, "GET", "events")[1]["events"]
    assert [e["action"] for e in events] == ["submitted", "failed"]
    mandates = control(sim, "GET", "state/mandates")[1]["mandates"]
    assert mandates[0]["next_possible_charge_date"] == "2026-03-13"


def test_faults_rate_limit_and_call_counts(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    status, faults = control(sim, "POST", "faults", {"kind": "error_500", "count": 1,
                                                     "path": "/creditors"})
    assert status == 201 and faults["pending"][0]["kind"] == "error_500"
    assert requests.get(sim.url + "/creditors", timeout=5).status_code == 401  # auth first
    assert control(sim, "DELETE", "faults")[1] == {"latency_ms": 0, "pending": []}
    assert control(sim, "POST", "rate_limit", {"per_minute": 5})[1] == {"per_minute": 5}
    gocardless_sdk.creditors.list()
    counts = control(sim, "GET", "call_counts")[1]
    assert counts == {"GET /creditors": {"200": 1, "401": 1}}
    assert control(sim, "POST", "faults", {"kind": "meteor"})[0] == 400


def test_webhook_config_delivery_and_log(gocardless_simulator, gocardless_sdk,
                                         gocardless_webhook_receiver):
    sim = gocardless_simulator
    status, config = control(sim, "POST", "webhooks", {"batch_size": 10, "reorder": True})
    assert status == 200 and config["batch_size"] == 10 and config["reorder"] is True
    gocardless_sdk.customers.create(params={"company_name": "Acme"})  # no event for customers
    billing_request = gocardless_sdk.billing_requests.create(
        params={"mandate_request": {"currency": "GBP"}})
    delivered = control(sim, "POST", "webhooks/deliver")[1]["deliveries"]
    assert delivered == [{"status": 204, "event_ids": [sim.events()[0]["id"]]}]
    log = control(sim, "GET", "webhooks")[1]["deliveries"]
    assert log[0]["response_code"] == 204 and billing_request.id in log[0]["request_body"]


def test_auto_delivery_thread(gocardless_simulator, gocardless_sdk, gocardless_webhook_receiver):
    sim = gocardless_simulator
    control(sim, "POST", "webhooks", {"auto_deliver_seconds": 0.02})
    gocardless_sdk.billing_requests.create(params={"mandate_request": {"currency": "GBP"}})
    deadline = time.monotonic() + 5
    while not gocardless_webhook_receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gocardless_webhook_receiver.requests
    control(sim, "POST", "webhooks", {"auto_deliver_seconds": None})


def test_complete_flow_and_reset(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    billing_request = gocardless_sdk.billing_requests.create(
        params={"mandate_request": {"currency": "GBP"}})
    flow = gocardless_sdk.billing_request_flows.create(
        params={"links": {"billing_request": billing_request.id}})
    status, body = control(sim, "POST", f"billing_request_flows/{flow.id}/complete", {
        "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.test",
        "account_number": "55779911", "branch_code": "200000"})
    assert status == 200 and body["mandates"]["status"] == "pending_submission"
    assert control(sim, "POST", "reset")[1] == {"reset": True}
    assert control(sim, "GET", "state/mandates")[1] == {"mandates": []}
    assert control(sim, "GET", "state/creditors")[1]["creditors"][0]["id"] == "CR000SIM"


def test_bulk_seed_and_payments_flow(gocardless_simulator, gocardless_sdk):
    # What is seeded is checked here; how fast is the benches' business (a wall-clock bound
    # fails on a loaded machine without anything being wrong).
    sim = gocardless_simulator
    seeded = sim.seed(bulk={"count": 2000, "scheme": "bacs"})
    assert len(seeded["mandates"]) == 2000 and len(set(seeded["customers"])) == 2000
    page = gocardless_sdk.mandates.list(params={"limit": 500, "status": "active"})
    assert len(page.records) == 500 and page.after
    sim.seed(payments=[{"mandate": m, "amount": 1000} for m in seeded["mandates"][:500]])
    sim.advance(days=10)
    [payout] = gocardless_sdk.payouts.list().records
    assert payout.amount == 500 * (1000 - 36)
    items = list(gocardless_sdk.payout_items.all(params={"payout": payout.id, "limit": 500}))
    assert len(items) == 1000
