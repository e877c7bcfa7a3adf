"""Random ("chaos") faults of the GoCardless simulator: seeded, counted, applied or not as each
kind says, never on the control or OAuth endpoints; and webhooks dropped, duplicated and
delayed at random."""

import json
import time

import gocardless_pro
import pytest
import requests
from gocardless_pro import errors as gc_errors

from simulators.gocardless.chaos import CHAOS_KINDS
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

HEADERS = {"Authorization": f"Bearer {SIM_ACCESS_TOKEN}", "GoCardless-Version": "2015-07-06"}
OTHER = {**HEADERS, "Authorization": "Bearer sim-other-token"}
NO_FAULTS = dict.fromkeys(CHAOS_KINDS, 0)
SLEEP = 0.2  # the simulator's timeout_seconds in these tests: short, to keep them fast


def get(sim, path, headers=HEADERS, **kwargs):
    kwargs.setdefault("timeout", 5)
    return requests.get(sim.url + path, headers=headers, **kwargs)


def create_customer(sim, n, **kwargs):
    kwargs.setdefault("timeout", 5)
    return requests.post(sim.url + "/customers", headers=HEADERS, **kwargs, json={
        "customers": {"email": f"c{n}@example.test", "given_name": "C", "family_name": str(n)}})


def test_rate_zero_injects_nothing(gocardless_simulator):
    sim = gocardless_simulator
    sim.faults.chaos(seed=1, rate=0)
    assert [get(sim, "/creditors").status_code for _ in range(30)] == [200] * 30
    assert sim.faults.chaos_counts() == NO_FAULTS
    assert sim.faults.chaos_log() == []


def _outcome(sim, n):
    """(status or "reset", content type) of one customer create, client timeout 5 s."""
    try:
        response = create_customer(sim, n)
    except requests.ConnectionError:
        return "reset", None
    return response.status_code, response.headers.get("Content-Type")


@pytest.mark.parametrize(("kind", "status", "content_type", "applied"), [
    ("timeout", 504, "text/html", False),
    ("timeout_after", 504, "text/html", True),
    ("drop_response", "reset", None, True),
    ("error_500", 500, "application/json", False),
    ("html_502", 502, "text/html", False),
    ("rate_limit", 429, "application/json", False),
])
def test_rate_one_faults_every_call_with_that_kind(gocardless_simulator, kind, status,
                                                   content_type, applied):
    sim = gocardless_simulator
    sim.faults.chaos(seed=3, rate=1, kinds=(kind,), timeout_seconds=SLEEP, burst=2)
    started = time.monotonic()
    outcomes = [_outcome(sim, n) for n in range(3)]
    elapsed = time.monotonic() - started
    assert outcomes == [(status, content_type)] * 3
    assert sim.faults.chaos_counts() == {**NO_FAULTS, kind: 3}
    # The work was done by exactly the kinds that say so; nobody else created customers.
    assert len(sim.resource("customers")) == (3 if applied else 0)
    if kind in ("timeout", "timeout_after"):
        assert elapsed >= 3 * SLEEP
    by_path = sim.faults.chaos_counts(by_path=True)
    assert by_path["by_path"] == {"POST /customers": {kind: 3}}
    sim.faults.chaos_off()
    assert create_customer(sim, 99).status_code == 201
    assert sim.faults.chaos_counts()[kind] == 3  # counts kept after chaos_off


def test_fault_bodies_are_what_gocardless_and_cloudflare_send(gocardless_simulator):
    sim = gocardless_simulator
    sim.faults.chaos(seed=3, rate=1, kinds=("error_500",))
    error = get(sim, "/customers").json()["error"]
    assert (error["type"], error["code"], error["errors"][0]["reason"]) == (
        "gocardless", 500, "internal_server_error")
    sim.faults.chaos(seed=3, rate=1, kinds=("html_502",))
    assert "cloudflare" in get(sim, "/customers").text
    sim.faults.chaos(seed=3, rate=1, kinds=("rate_limit",), burst=1)
    limited = get(sim, "/customers")
    assert limited.json()["error"]["errors"][0]["reason"] == "rate_limit_exceeded"
    assert limited.headers["RateLimit-Limit"] == "1000"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert limited.headers["RateLimit-Reset"] == "Mon, 02 Mar 2026 10:01:00 GMT"


def _kinds_of_200_calls(sim, seed):
    sim.faults.chaos(seed=seed, rate=0.3, kinds=("error_500", "html_502", "rate_limit"),
                     burst=2)
    before = len(sim.faults.chaos_log())
    with requests.Session() as session:
        statuses = [session.get(sim.url + "/creditors", headers=HEADERS, timeout=5).status_code
                    for _ in range(200)]
    kinds = [(e["call"], e["kind"]) for e in sim.faults.chaos_log()[before:]]
    return statuses, kinds


def test_same_seed_same_faults_different_seed_different(gocardless_simulator):
    sim = gocardless_simulator
    first, kinds = _kinds_of_200_calls(sim, seed=42)
    again, kinds_again = _kinds_of_200_calls(sim, seed=42)
    other, kinds_other = _kinds_of_200_calls(sim, seed=43)
    assert first == again and kinds == kinds_again
    assert first != other and kinds != kinds_other
    # About 30 % of the calls that drew were faulted (plus the second call of each burst).
    faulted = sum(status != 200 for status in first)
    assert 40 <= faulted <= 110
    assert {kind for _, kind in kinds} == {"error_500", "html_502", "rate_limit"}
    counts = sim.faults.chaos_counts()
    assert sum(counts.values()) == len(kinds) + len(kinds_again) + len(kinds_other)
    assert sum(status != 200 for status in first + again + other) == sum(counts.values())


def test_a_429_burst_spans_burst_calls_of_that_token_only(gocardless_simulator):
    sim = gocardless_simulator
    # Only /payments draws (and every draw faults); the burst then covers any path.
    sim.faults.chaos(seed=5, rate=1, kinds=("rate_limit",), burst=3, paths=("/payments",))
    assert get(sim, "/payments").status_code == 429  # starts the burst: 2 more to come
    assert get(sim, "/creditors", headers=OTHER).status_code == 200  # another token
    assert get(sim, "/creditors").status_code == 429
    assert get(sim, "/customers", headers=OTHER).status_code == 200
    assert get(sim, "/customers").status_code == 429
    assert get(sim, "/creditors").status_code == 200  # burst over
    assert sim.faults.chaos_counts()["rate_limit"] == 3
    assert [e["burst"] for e in sim.faults.chaos_log()] == [False, True, True]


def test_sdk_retries_a_timeout_after_with_the_same_key_and_one_payment_exists(
        gocardless_simulator):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sdk = gocardless_pro.Client(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=0.1)
    sim.faults.chaos(seed=1, rate=1, kinds=("timeout_after",), timeout_seconds=SLEEP)
    with pytest.raises(requests.Timeout):
        sdk.payments.create(params={"amount": 1000, "currency": "GBP",
                                    "links": {"mandate": mandate}},
                            headers={"Idempotency-Key": "inv-1"})
    time.sleep(SLEEP)  # the last attempt's answer is still being held back
    # Three attempts, one payment: the retries met the idempotency key, not a second create.
    assert len(sim.resource("payments")) == 1
    assert sim.faults.chaos_counts()["timeout_after"] == 3


def test_control_and_oauth_endpoints_are_never_faulted(gocardless_simulator):
    sim = gocardless_simulator
    sim.faults.chaos(seed=1, rate=1, kinds=("html_502",))
    assert requests.get(sim.url + "/_control/clock", timeout=5).status_code == 200
    assert requests.post(sim.url + "/_control/seed", json={"customers": [{}]},
                         timeout=5).status_code == 201
    assert requests.get(sim.url + "/_control/chaos", timeout=5).status_code == 200
    token = requests.post(sim.url + "/oauth/access_token", timeout=5,
                          data={"grant_type": "authorization_code", "code": "nope"})
    assert token.status_code in (400, 401) and token.json()["error"]
    assert requests.get(sim.url + "/oauth/authorize", timeout=5).status_code != 502
    assert sim.faults.chaos_counts() == NO_FAULTS
    assert get(sim, "/creditors").status_code == 502  # the API itself is faulted


def test_chaos_over_the_control_api(gocardless_simulator):
    sim = gocardless_simulator
    on = requests.post(sim.url + "/_control/chaos", timeout=5, json={
        "seed": 9, "rate": 1, "kinds": ["error_500"], "paths": ["/creditors"]})
    assert on.status_code == 200 and on.json()["settings"]["kinds"] == ["error_500"]
    assert get(sim, "/creditors").status_code == 500
    assert get(sim, "/customers").status_code == 200  # not in paths
    seen = requests.get(sim.url + "/_control/chaos", timeout=5).json()
    assert seen["by_kind"] == {**NO_FAULTS, "error_500": 1}
    assert seen["by_path"] == {"GET /creditors": {"error_500": 1}}
    log = requests.get(sim.url + "/_control/chaos/log", timeout=5).json()["faults"]
    assert [(e["kind"], e["route"]) for e in log] == [("error_500", "GET /creditors")]
    assert requests.delete(sim.url + "/_control/chaos", timeout=5).json()["on"] is False
    assert get(sim, "/creditors").status_code == 200
    bad = requests.post(sim.url + "/_control/chaos", json={"seed": 1, "rate": 1,
                                                           "kinds": ["meteor"]}, timeout=5)
    assert bad.status_code == 400
    assert requests.post(sim.url + "/_control/chaos", json={"rate": 1},
                         timeout=5).status_code == 400  # a seed is required


def test_reset_turns_chaos_off_and_zeroes_the_counts(gocardless_simulator):
    sim = gocardless_simulator
    sim.faults.chaos(seed=1, rate=1, kinds=("error_500",))
    assert get(sim, "/creditors").status_code == 500
    sim.reset()
    assert get(sim, "/creditors").status_code == 200
    assert sim.faults.chaos_counts() == NO_FAULTS


# -- webhooks ------------------------------------------------------------------------------

def make_payment(sim, mandate, amount=1000):
    response = requests.post(sim.url + "/payments", headers=HEADERS, timeout=5, json={
        "payments": {"amount": amount, "currency": "GBP", "links": {"mandate": mandate}}})
    assert response.status_code == 201
    return response.json()["payments"]["id"]


def event_ids(request):
    return [event["id"] for event in json.loads(request["body"])["events"]]


def test_dropped_webhook_is_never_sent_nor_retried_but_its_event_is_listed(
        gocardless_simulator, gocardless_sdk, gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.webhook_chaos(seed=1, drop=1)
    payment = make_payment(sim, mandate)
    assert sim.deliver_webhooks() == []
    sim.advance(days=1)  # every retry would be due by now
    assert sim.deliver_webhooks() == []
    assert sim.flush_webhooks() == 0
    assert receiver.requests == []
    # Polling heals it: the event is there to be listed.
    listed = [e for e in gocardless_sdk.events.list().records if e.links.payment == payment]
    assert "created" in [e.action for e in listed]
    counts = sim.webhook_chaos_counts()
    assert counts["dropped"] >= 1 and counts == {"sent": 0, "dropped": counts["dropped"],
                                                 "duplicated": 0, "delayed": 0}


def test_duplicated_webhook_arrives_twice_with_the_same_body(
        gocardless_simulator, gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.webhook_chaos(seed=2, duplicate=1, max_delay_seconds=30)
    make_payment(sim, mandate)
    assert len(sim.deliver_webhooks()) == 1
    assert len(receiver.requests) == 1
    assert sim.flush_webhooks() == 1  # the copy, held back
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert first["headers"]["Webhook-Signature"] == second["headers"]["Webhook-Signature"]
    assert sim.webhook_chaos_counts() == {"sent": 2, "dropped": 0, "duplicated": 1,
                                          "delayed": 0}


def test_delayed_webhook_is_overtaken_and_flush_empties_the_hold(
        gocardless_simulator, gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.webhook_chaos(seed=3, delay=1, max_delay_seconds=30)
    make_payment(sim, mandate, 1000)
    assert sim.deliver_webhooks() == []  # held back
    sim.webhook_chaos_off()  # the next one goes out on time
    make_payment(sim, mandate, 2000)
    assert len(sim.deliver_webhooks()) == 1
    assert sim.flush_webhooks() == 1
    assert sim.flush_webhooks() == 0
    assert sim.webhooks.chaos.held() == 0
    created = [e["id"] for e in sim.events()]
    arrived = [i for request in receiver.requests for i in event_ids(request)]
    assert sorted(arrived) == sorted(created) and arrived != created
    assert arrived == created[1:] + created[:1]
    assert sim.webhook_chaos_counts() == {"sent": 2, "dropped": 0, "duplicated": 0,
                                          "delayed": 1}


def test_held_webhooks_go_out_by_themselves_when_due(gocardless_simulator,
                                                     gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.webhook_chaos(seed=4, delay=1, max_delay_seconds=0.1)
    make_payment(sim, mandate)
    assert sim.deliver_webhooks() == []
    deadline = time.monotonic() + 5
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.requests) == 1 and sim.webhooks.chaos.held() == 0
    # A delayed delivery the receiver refused is retried like any other.
    receiver.statuses.append(500)
    sim.webhook_chaos(seed=4, delay=1, max_delay_seconds=30)
    make_payment(sim, mandate, 2000)
    assert sim.deliver_webhooks() == []
    assert sim.flush_webhooks() == 1
    assert [r["response_code"] for r in sim.webhook_log()] == [204, 500]
    sim.webhook_chaos_off()
    sim.clock.advance(seconds=61)  # the first retry is due a minute later
    assert [status for status, _ in sim.deliver_webhooks()] == [204]


def test_webhook_fates_follow_the_seed(gocardless_simulator):
    chaos = gocardless_simulator.webhooks.chaos

    def fates(seed):
        chaos.start(seed=seed, duplicate=0.3, drop=0.2, delay=0.3)
        return [chaos.fate() for _ in range(100)]

    assert fates(7) == fates(7)
    assert fates(7) != fates(8)
    drawn = fates(7)
    assert 5 <= sum(f.drop for f in drawn) <= 40
    assert all(f.delay is None and f.copy_delay is None for f in drawn if f.drop)


def test_webhook_chaos_over_the_control_api(gocardless_simulator, gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    on = requests.post(sim.url + "/_control/webhook_chaos", timeout=5,
                       json={"seed": 1, "delay": 1, "max_delay_seconds": 30})
    assert on.status_code == 200 and on.json()["settings"]["delay"] == 1
    make_payment(sim, mandate)
    requests.post(sim.url + "/_control/webhooks/deliver", json={}, timeout=5)
    assert requests.get(sim.url + "/_control/webhook_chaos", timeout=5).json()["held"] == 1
    flushed = requests.post(sim.url + "/_control/webhook_chaos/flush", json={}, timeout=5)
    assert flushed.json() == {"flushed": 1, "counts": {"sent": 1, "dropped": 0,
                                                       "duplicated": 0, "delayed": 1}}
    assert len(receiver.requests) == 1
    off = requests.delete(sim.url + "/_control/webhook_chaos", timeout=5)
    assert off.json()["on"] is False
    assert requests.post(sim.url + "/_control/webhook_chaos", json={"seed": 1, "drop": 2},
                         timeout=5).status_code == 400


def test_without_chaos_webhooks_behave_as_before(gocardless_simulator,
                                                 gocardless_webhook_receiver):
    sim, receiver = gocardless_simulator, gocardless_webhook_receiver
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    make_payment(sim, mandate)
    assert [status for status, _ in sim.deliver_webhooks()] == [204]
    assert sim.flush_webhooks() == 0
    assert len(receiver.requests) == 1
    assert sim.webhook_chaos_counts() == {"sent": 1, "dropped": 0, "duplicated": 0,
                                          "delayed": 0}


def test_sdk_sees_injected_errors_as_gocardless_errors(gocardless_simulator, gocardless_sdk):
    gocardless_simulator.faults.chaos(seed=1, rate=1, kinds=("error_500",))
    with pytest.raises(gc_errors.GoCardlessInternalError):
        gocardless_sdk.creditors.list()


def test_timeout_after_can_be_queued_too(gocardless_simulator):
    sim = gocardless_simulator
    sim.inject("timeout_after", seconds=SLEEP, method="POST", path="/customers")
    started = time.monotonic()
    assert create_customer(sim, 1).status_code == 504
    assert time.monotonic() - started >= SLEEP
    assert len(sim.resource("customers")) == 1  # applied, though the client heard 504
    assert create_customer(sim, 2).status_code == 201
    assert sim.faults.chaos_counts() == NO_FAULTS  # a queued fault is not a random one
