"""Webhook delivery: envelope, signature, retries, duplicates, reordering, switching off."""

import hashlib
import hmac
import json

from gocardless_pro import webhooks as gc_webhooks

from tests.plugins.gocardless_sim import SIM_WEBHOOK_SECRET


def make_events(sim, sdk, payments=2):
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    for n in range(payments):
        sdk.payments.create(params={"amount": 1000 + n, "currency": "GBP",
                                    "links": {"mandate": mandate}})


def test_batch_is_signed_over_the_raw_body(gocardless_simulator, gocardless_sdk,
                                           gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    make_events(sim, gocardless_sdk)
    results = sim.deliver_webhooks()
    event_ids = [e["id"] for e in sim.events()]
    assert results == [(204, event_ids)]
    [request] = receiver.requests
    body, headers = request["body"], request["headers"]
    assert headers["User-Agent"] == "gocardless-webhook-service/1.1"
    assert headers["Content-Type"] == "application/json"
    assert headers["Origin"] == sim.url
    expected = hmac.new(SIM_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["Webhook-Signature"] == expected
    parsed = gc_webhooks.parse_with_meta(body, SIM_WEBHOOK_SECRET, headers["Webhook-Signature"])
    assert [e.id for e in parsed.events] == event_ids
    assert parsed.webhook_id.startswith("WB")
    payload = json.loads(body)
    assert set(payload) == {"events", "meta"}
    assert payload["events"][0]["links"] == {"payment": payload["events"][0]["links"]["payment"],
                                             "organisation": "OR000SIM"}
    assert sim.deliver_webhooks() == []  # nothing new


def test_batch_size(gocardless_simulator, gocardless_sdk, gocardless_webhook_receiver):
    gocardless_simulator.configure_webhooks(batch_size=2)
    make_events(gocardless_simulator, gocardless_sdk, payments=5)
    results = gocardless_simulator.deliver_webhooks()
    assert [len(ids) for _, ids in results] == [2, 2, 1]


def test_failed_delivery_is_retried_eight_times_on_the_sim_clock(
        gocardless_simulator, gocardless_sdk, gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    receiver.statuses = [500, 498, 302] + [503] * 10
    make_events(sim, gocardless_sdk, payments=1)
    assert [status for status, _ in sim.deliver_webhooks()] == [500]
    assert sim.deliver_webhooks() == []  # retry not due yet
    waits = [60, 120, 600, 1800, 3600, 10800, 21600, 43200]
    statuses = []
    for wait in waits:
        sim.clock.advance(seconds=wait - 1)
        assert sim.deliver_webhooks() == []
        sim.clock.advance(seconds=1)
        statuses += [status for status, _ in sim.deliver_webhooks()]
    assert statuses == [498, 302] + [503] * 6
    sim.clock.advance(days=2)
    assert sim.deliver_webhooks() == []  # given up after 1 + 8 attempts
    bodies = {r["body"] for r in receiver.requests}
    assert len(receiver.requests) == 9 and len(bodies) == 1  # same webhook re-sent
    log = sim.webhook_log()
    assert [entry["attempt"] for entry in log] == list(range(1, 10))
    assert [entry["response_code"] for entry in log][:3] == [500, 498, 302]
    assert not any(entry["successful"] for entry in log)


def test_retry_succeeds_and_stops(gocardless_simulator, gocardless_sdk,
                                  gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    receiver.statuses = [500]
    make_events(sim, gocardless_sdk, payments=1)
    sim.deliver_webhooks()
    sim.advance(seconds=60)  # advancing the clock delivers due retries
    assert [r["successful"] for r in sim.webhook_log()] == [False, True]
    sim.advance(days=1)
    assert len(receiver.requests) == 3  # the retry, then the new day's events only


def test_unreachable_endpoint_is_a_failure(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    sim.set_webhook_url("http://127.0.0.1:9/nowhere")
    make_events(sim, gocardless_sdk, payments=1)
    assert sim.deliver_webhooks()[0][0] is None
    entry = sim.webhook_log()[0]
    assert entry["error"] and entry["successful"] is False


def test_slow_endpoint_times_out(gocardless_simulator, gocardless_sdk,
                                 gocardless_webhook_receiver):
    sim = gocardless_simulator
    sim.configure_webhooks(timeout_seconds=0.05)
    gocardless_webhook_receiver.delay_seconds = 0.3
    make_events(sim, gocardless_sdk, payments=1)
    assert sim.deliver_webhooks()[0][0] is None
    assert "Timeout" in sim.webhook_log()[0]["error"]


def test_duplicate_and_reorder(gocardless_simulator, gocardless_sdk,
                               gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    sim.configure_webhooks(duplicate=True, reorder=True, batch_size=1)
    make_events(sim, gocardless_sdk, payments=2)
    ids = [e["id"] for e in sim.events()]
    results = sim.deliver_webhooks()
    assert [event_ids for _, event_ids in results] == [[ids[1]], [ids[1]], [ids[0]], [ids[0]]]
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_switched_off_webhooks_still_record_events(gocardless_simulator, gocardless_sdk,
                                                   gocardless_webhook_receiver):
    sim = gocardless_simulator
    sim.set_webhooks_enabled(False)
    make_events(sim, gocardless_sdk, payments=1)
    assert sim.deliver_webhooks() == []
    assert gocardless_webhook_receiver.requests == []
    assert len(gocardless_sdk.events.list().records) == 1
    sim.set_webhooks_enabled(True)
    make_events(sim, gocardless_sdk, payments=1)
    assert len(sim.deliver_webhooks()[0][1]) == 1  # only events from after switching on


def test_secret_rotation(gocardless_simulator, gocardless_sdk, gocardless_webhook_receiver):
    sim = gocardless_simulator
    sim.set_webhook_url(gocardless_webhook_receiver.url, secret="rotated")
    make_events(sim, gocardless_sdk, payments=1)
    sim.deliver_webhooks()
    request = gocardless_webhook_receiver.requests[0]
    assert gc_webhooks.parse(request["body"], "rotated",
                             request["headers"]["Webhook-Signature"])
