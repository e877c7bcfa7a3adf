"""Random ("chaos") faults of the Exact Online simulator: seeded, counted, applied or not as
each kind says, only on /api/v1/ calls; and event notifications dropped, duplicated and
delayed at random."""

import time

import pytest
import requests

from simulators.exact_online.chaos import CHAOS_KINDS
from tests.plugins.exact_sim import DIVISION, ExactApi

NO_FAULTS = dict.fromkeys(CHAOS_KINDS, 0)
SLEEP = 0.2  # the simulator's timeout_seconds in these tests: short, to keep them fast
ACCOUNTS = f"{DIVISION}/crm/Accounts"
READ = f"{DIVISION}/crm/BankAccounts"  # a GET that needs no $filter
SELECT = {"$select": "ID"}
SUBS = f"{DIVISION}/webhooks/WebhookSubscriptions"
ACCOUNTS_ROUTE = "PUT /api/v1/{division}/crm/Accounts({key})"


@pytest.fixture
def account(exact_simulator, exact_division):
    return exact_simulator.seed_account(DIVISION, name="Acme", email="old@acme.example")["ID"]


def email_of(sim, account_id):
    with sim.state.lock:
        return sim.state.account(DIVISION, account_id).email


def _outcome(api, account_id, n):
    """Status (or "reset") and content type of one account update, client timeout 5 s."""
    try:
        response = api.put(f"{ACCOUNTS}(guid'{account_id}')", {"Email": f"new{n}@acme.example"})
    except requests.ConnectionError:
        return "reset", None
    return response.status_code, response.headers.get("Content-Type", "").split(";")[0]


def test_rate_zero_injects_nothing(exact_simulator, exact_api):
    exact_simulator.faults.chaos(seed=1, rate=0)
    assert [exact_api.get(READ, **SELECT).status_code
            for _ in range(30)] == [200] * 30
    assert exact_simulator.faults.chaos_counts() == NO_FAULTS


@pytest.mark.parametrize(("kind", "status", "content_type", "applied"), [
    ("timeout", "reset", None, False),
    ("timeout_after", "reset", None, True),
    ("error_500", 500, "application/json", False),
    ("html_502", 502, "text/html", False),
    ("error_503", 503, "text/html", False),
    ("rate_limit", 429, "application/json", False),
])
def test_rate_one_faults_every_call_with_that_kind(exact_simulator, exact_api, account, kind,
                                                   status, content_type, applied):
    sim = exact_simulator
    sim.faults.chaos(seed=3, rate=1, kinds=(kind,), timeout_seconds=SLEEP, burst=2)
    started = time.monotonic()
    outcomes = [_outcome(exact_api, account, n) for n in range(3)]
    elapsed = time.monotonic() - started
    assert outcomes == [(status, content_type)] * 3
    assert sim.faults.chaos_counts() == {**NO_FAULTS, kind: 3}
    # Only timeout_after did the work; the others left the account as it was.
    assert email_of(sim, account) == ("new2@acme.example" if applied else "old@acme.example")
    if kind.startswith("timeout"):
        assert elapsed >= 3 * SLEEP
    assert sim.faults.chaos_counts(by_path=True)["by_path"] == {ACCOUNTS_ROUTE: {kind: 3}}
    counted = sim.call_counts()[ACCOUNTS_ROUTE]
    assert counted["total"] == 3 and counted[str(status if status != "reset" else "dropped")] == 3
    sim.faults.chaos_off()
    assert _outcome(exact_api, account, 9)[0] == 204
    assert sim.faults.chaos_counts()[kind] == 3  # counts kept after chaos_off


def test_fault_bodies(exact_simulator, exact_api):
    sim = exact_simulator
    sim.faults.chaos(seed=1, rate=1, kinds=("error_500",))
    assert exact_api.get(READ, **SELECT).json() == {
        "error": {"code": "", "message": {"lang": "", "value": "Internal server error"}}}
    sim.faults.chaos(seed=1, rate=1, kinds=("error_503",))
    assert "HTTP Error 503. The service is unavailable." in exact_api.get(READ, **SELECT).text
    sim.faults.chaos(seed=1, rate=1, kinds=("html_502",))
    assert "502 Bad Gateway" in exact_api.get(READ, **SELECT).text
    sim.faults.chaos(seed=1, rate=1, kinds=("rate_limit",), burst=1)
    limited = exact_api.get(READ, **SELECT)
    # What the real limiter answers when the minute's budget is spent: minutely headers only.
    reset_ms = int(limited.headers["X-RateLimit-Minutely-Reset"])
    now = sim.clock.now()
    next_minute = now.replace(second=0, microsecond=0).timestamp() + 60
    assert reset_ms == int(next_minute * 1000)
    assert limited.headers["X-RateLimit-Minutely-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Minutely-Limit"] == "60"
    assert "X-RateLimit-Remaining" not in limited.headers
    assert limited.json()["error"]["message"]["value"] == "API rate limit exceeded (minutely)."


def _statuses_of_200_calls(sim, api, seed):
    sim.faults.chaos(seed=seed, rate=0.3, kinds=("error_500", "html_502", "error_503"))
    before = len(sim.faults.chaos_log())
    statuses = [api.get(READ, **SELECT).status_code for _ in range(200)]
    return statuses, [(e["call"], e["kind"]) for e in sim.faults.chaos_log()[before:]]


def test_same_seed_same_faults_different_seed_different(exact_simulator, exact_api):
    sim = exact_simulator
    sim.settings(minutely_limit=10_000)  # 600 calls must not meet the real limiter
    first, kinds = _statuses_of_200_calls(sim, exact_api, seed=42)
    again, kinds_again = _statuses_of_200_calls(sim, exact_api, seed=42)
    other, kinds_other = _statuses_of_200_calls(sim, exact_api, seed=43)
    assert first == again and kinds == kinds_again
    assert first != other and kinds != kinds_other
    assert 30 <= sum(status != 200 for status in first) <= 90
    assert {kind for _, kind in kinds} == {"error_500", "html_502", "error_503"}
    assert sum(sim.faults.chaos_counts().values()) == sum(
        status != 200 for status in first + again + other)


def test_a_429_burst_spans_burst_calls_of_that_division_only(exact_simulator, exact_api,
                                                              account):
    sim = exact_simulator
    other = 654321
    sim.seed_division(division=other)  # the default user has access to it too
    sim.settings(minutely_limit=10_000)
    # Only Accounts calls draw (and every draw faults); the burst then covers the division.
    sim.faults.chaos(seed=5, rate=1, kinds=("rate_limit",), burst=3, paths=("/crm/Accounts",))
    one_account = f"{ACCOUNTS}(guid'{account}')"
    assert exact_api.get(one_account).status_code == 429  # starts the burst: 2 more to come
    assert exact_api.get(f"{other}/crm/BankAccounts").status_code == 200  # another division
    assert exact_api.get(f"{DIVISION}/crm/BankAccounts").status_code == 429
    assert exact_api.get(f"{DIVISION}/crm/BankAccounts").status_code == 429
    assert exact_api.get(f"{DIVISION}/crm/BankAccounts").status_code == 200  # burst over
    assert sim.faults.chaos_counts()["rate_limit"] == 3
    assert [e["burst"] for e in sim.faults.chaos_log()] == [False, True, True]


def test_oauth_and_control_are_never_faulted(exact_simulator, exact_division):
    sim = exact_simulator
    sim.faults.chaos(seed=1, rate=1, kinds=("html_502",))
    api = ExactApi(sim).connect()  # the consent page and the token endpoint answer normally
    refused = api.refresh()  # too early: the token endpoint's own refusal, not a fault
    assert refused.status_code == 400 and refused.json()["error"] == "access_denied"
    assert requests.get(f"{sim.url}/_control/now", timeout=5).status_code == 200
    assert requests.post(f"{sim.url}/_control/chaos_counts", json={},
                         timeout=5).status_code == 200
    assert sim.faults.chaos_counts() == NO_FAULTS
    assert api.get(READ, **SELECT).status_code == 502  # the REST API itself is faulted


def test_chaos_over_the_control_api(exact_simulator, exact_api):
    sim = exact_simulator
    url = f"{sim.url}/_control"
    on = requests.post(f"{url}/chaos", timeout=5, json={
        "seed": 9, "rate": 1, "kinds": ["error_503"], "paths": ["/crm/BankAccounts"]})
    assert on.status_code == 200 and on.json()["settings"]["kinds"] == ["error_503"]
    assert exact_api.get(READ, **SELECT).status_code == 503
    assert exact_api.get("current/Me").status_code == 200  # not in paths
    counts = requests.get(f"{url}/chaos_counts", params={"by_path": "true"}, timeout=5).json()
    assert counts["by_kind"] == {**NO_FAULTS, "error_503": 1}
    assert counts["by_path"] == {"GET /api/v1/{division}/crm/BankAccounts": {"error_503": 1}}
    log = requests.get(f"{url}/chaos_log", timeout=5).json()
    assert [(e["kind"], e["burst"]) for e in log] == [("error_503", False)]
    assert requests.post(f"{url}/chaos_off", json={}, timeout=5).json()["on"] is False
    assert exact_api.get(READ, **SELECT).status_code == 200
    # Query-string arguments are typed too.
    typed = requests.get(f"{url}/chaos", params={"seed": "1", "rate": "0.5", "burst": "2"},
                         timeout=5).json()
    assert typed["settings"] == {"seed": 1, "rate": 0.5, "kinds": list(CHAOS_KINDS),
                                 "timeout_seconds": 2.5, "burst": 2, "paths": None}
    bad = requests.post(f"{url}/chaos", json={"seed": 1, "rate": 1, "kinds": ["meteor"]},
                        timeout=5)
    assert bad.status_code == 400


def test_reset_turns_chaos_off_and_zeroes_the_counts(exact_simulator, exact_api):
    sim = exact_simulator
    sim.faults.chaos(seed=1, rate=1, kinds=("error_500",))
    assert exact_api.get(READ, **SELECT).status_code == 500
    sim.reset()
    assert sim.faults.chaos_counts() == NO_FAULTS
    assert sim.faults.dice.settings is None


# -- webhooks ------------------------------------------------------------------------------

@pytest.fixture
def subscribed(exact_api, exact_simulator, exact_webhook_receiver):
    resp = exact_api.post(SUBS, {"CallbackURL": exact_webhook_receiver.url, "Topic": "Accounts"})
    assert resp.status_code == 201
    exact_simulator.deliver_webhooks()  # the validation POST
    exact_webhook_receiver.requests.clear()
    return exact_webhook_receiver


def keys(receiver):
    return [r["body"].split(b'"Key":"')[1][:36].decode() for r in receiver.requests]


def test_dropped_notification_is_never_sent_but_the_change_is_readable(
        exact_simulator, exact_api, subscribed):
    sim, receiver = exact_simulator, subscribed
    sent = sim.webhook_chaos_counts()["sent"]  # the subscription's validation POST
    sim.webhook_chaos(seed=1, drop=1)
    account = sim.seed_account(DIVISION, name="Dropped")["ID"]
    assert sim.deliver_webhooks() == []
    assert sim.flush_webhooks() == 0 and receiver.requests == []
    # Polling heals it: the account is there to be read.
    assert exact_api.get(f"{ACCOUNTS}(guid'{account}')").status_code == 200
    assert sim.webhook_chaos_counts() == {"sent": sent, "dropped": 1, "duplicated": 0,
                                          "delayed": 0}


def test_validation_post_is_never_misdelivered(exact_simulator, exact_api,
                                               exact_webhook_receiver):
    exact_simulator.webhook_chaos(seed=1, drop=1)
    exact_api.post(SUBS, {"CallbackURL": exact_webhook_receiver.url, "Topic": "Accounts"})
    assert exact_simulator.deliver_webhooks() == [(exact_webhook_receiver.url, 200)]


def test_duplicated_notification_arrives_twice_with_the_same_body(exact_simulator, subscribed):
    sim, receiver = exact_simulator, subscribed
    sent = sim.webhook_chaos_counts()["sent"]
    sim.webhook_chaos(seed=2, duplicate=1, max_delay_seconds=30)
    sim.seed_account(DIVISION, name="Twice")
    assert len(sim.deliver_webhooks()) == 1 and len(receiver.requests) == 1
    assert sim.flush_webhooks() == 1
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert [entry["copy"] for entry in sim.webhook_log()] == [False, False, True]
    assert sim.webhook_chaos_counts() == {"sent": sent + 2, "dropped": 0, "duplicated": 1,
                                          "delayed": 0}


def test_delayed_notification_is_overtaken_and_flush_empties_the_hold(exact_simulator,
                                                                     subscribed):
    sim, receiver = exact_simulator, subscribed
    sim.webhook_chaos(seed=3, delay=1, max_delay_seconds=30)
    first = sim.seed_account(DIVISION, name="First")["ID"]
    assert sim.deliver_webhooks() == []
    sim.webhook_chaos_off()
    second = sim.seed_account(DIVISION, name="Second")["ID"]
    assert len(sim.deliver_webhooks()) == 1
    assert sim.flush_webhooks() == 1 and sim.webhooks.chaos.held() == 0
    assert keys(receiver) == [second, first]
    assert sim.webhook_chaos_counts()["delayed"] == 1


def test_held_notifications_go_out_by_themselves_when_due(exact_simulator, subscribed):
    sim, receiver = exact_simulator, subscribed
    sim.webhook_chaos(seed=4, delay=1, max_delay_seconds=0.1)
    sim.seed_account(DIVISION, name="Soon")
    assert sim.deliver_webhooks() == []
    deadline = time.monotonic() + 5
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.requests) == 1 and sim.webhooks.chaos.held() == 0


def test_webhook_chaos_over_the_control_api(exact_simulator, subscribed):
    sim, receiver = exact_simulator, subscribed
    url = f"{sim.url}/_control"
    sent = sim.webhook_chaos_counts()["sent"]
    on = requests.post(f"{url}/webhook_chaos", timeout=5,
                       json={"seed": 1, "delay": 1, "max_delay_seconds": 30})
    assert on.status_code == 200 and on.json()["settings"]["delay"] == 1
    sim.seed_account(DIVISION, name="Held")
    assert requests.post(f"{url}/deliver_webhooks", json={}, timeout=5).json() == []
    assert requests.post(f"{url}/flush_webhooks", json={}, timeout=5).json() == 1
    assert requests.get(f"{url}/webhook_chaos_counts", timeout=5).json() == {
        "sent": sent + 1, "dropped": 0, "duplicated": 0, "delayed": 1}
    assert len(receiver.requests) == 1
    assert requests.post(f"{url}/webhook_chaos_off", json={}, timeout=5).json()["on"] is False
