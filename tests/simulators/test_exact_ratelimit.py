"""Rate limits per (app, division) with Exact's headers, and injected faults (API-NOTES §3)."""

from datetime import UTC, datetime

import pytest
import requests

from simulators.exact_online import SimClock, Simulator
from tests.plugins.exact_sim import DIVISION, ExactApi

DAILY = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
MINUTELY = {"X-RateLimit-Minutely-Limit", "X-RateLimit-Minutely-Remaining",
            "X-RateLimit-Minutely-Reset"}
START = datetime(2023, 5, 12, 8, 18, 25, tzinfo=UTC)  # the moment of the picqer#609 sample


def ms(dt):
    return str(int(dt.timestamp() * 1000))


def rate_headers(resp):
    return {k: v for k, v in resp.headers.items() if k.startswith("X-RateLimit")}


@pytest.fixture
def sim():
    simulator = Simulator(auto_consent=True, clock=SimClock(START), minutely_limit=5,
                          daily_limit=12).start()
    simulator.seed_division(division=DIVISION)
    simulator.seed_division(division=2)
    yield simulator
    simulator.stop()


@pytest.fixture
def api(sim):
    return ExactApi(sim).connect()


def test_headers_match_exacts_format(exact_api, exact_simulator):
    exact_simulator.clock.set(START)
    resp = exact_api.get(f"{DIVISION}/financial/Journals")
    assert rate_headers(resp) == {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4999",
        "X-RateLimit-Reset": "1683936000000",  # 2023-05-13T00:00:00Z
        "X-RateLimit-Minutely-Limit": "60",
        "X-RateLimit-Minutely-Remaining": "59",
        "X-RateLimit-Minutely-Reset": "1683879540000",  # 2023-05-12T08:19:00Z
    }


def test_minutely_limit_gives_429_with_minutely_headers_only(api, sim):
    for expected in range(4, -1, -1):
        resp = api.get(f"{DIVISION}/financial/Journals")
        assert resp.status_code == 200
        assert resp.headers["X-RateLimit-Minutely-Remaining"] == str(expected)
    resp = api.get(f"{DIVISION}/financial/Journals")
    assert resp.status_code == 429
    assert set(rate_headers(resp)) == MINUTELY
    assert resp.headers["X-RateLimit-Minutely-Remaining"] == "0"
    assert resp.headers["X-RateLimit-Minutely-Reset"] == ms(datetime(2023, 5, 12, 8, 19,
                                                                     tzinfo=UTC))
    assert resp.json()["error"]["message"]["value"]
    # Other divisions have their own budget.
    assert api.get("2/financial/Journals").status_code == 200
    # The window resets at the next minute boundary, not 60 s after the first call.
    sim.advance(34)  # 08:18:59
    assert api.get(f"{DIVISION}/financial/Journals").status_code == 429
    sim.advance(1)  # 08:19:00
    resp = api.get(f"{DIVISION}/financial/Journals")
    assert resp.status_code == 200
    assert resp.headers["X-RateLimit-Minutely-Remaining"] == "4"


def test_daily_limit_gives_429_with_daily_headers_only(api, sim):
    used = 0
    while used < 12:
        for _ in range(5):
            if used == 12:
                break
            assert api.get(f"{DIVISION}/financial/Journals").status_code == 200
            used += 1
        sim.advance(60)
        api.connect()  # keep a live access token while minutes pass
    resp = api.get(f"{DIVISION}/financial/Journals")
    assert resp.status_code == 429
    assert set(rate_headers(resp)) == DAILY
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert resp.headers["X-RateLimit-Reset"] == ms(datetime(2023, 5, 13, tzinfo=UTC))
    sim.clock.set(datetime(2023, 5, 13, 0, 0, tzinfo=UTC))
    api.connect()
    resp = api.get(f"{DIVISION}/financial/Journals")
    assert resp.status_code == 200
    assert resp.headers["X-RateLimit-Remaining"] == "11"


def test_error_responses_count_against_the_budget(api, sim):
    resp = api.get(f"{DIVISION}/crm/Accounts")  # 400: mandatory filter
    assert resp.status_code == 400
    assert resp.headers["X-RateLimit-Minutely-Remaining"] == "4"


def test_limits_can_be_changed_at_runtime(sim):
    sim.settings(minutely_limit=1)
    api = ExactApi(sim).connect()
    assert api.get(f"{DIVISION}/financial/Journals").status_code == 200
    assert api.get(f"{DIVISION}/financial/Journals").status_code == 429


def test_injected_status_faults(exact_api, exact_simulator):
    exact_simulator.inject("status", status=500, count=2)
    path = f"{DIVISION}/financial/Journals"
    assert [exact_api.get(path).status_code for _ in range(3)] == [500, 500, 200]
    exact_simulator.inject("status", status=429)
    resp = exact_api.get(path)
    assert resp.status_code == 429
    assert set(rate_headers(resp)) == MINUTELY
    counts = exact_simulator.call_counts()["GET /api/v1/{division}/financial/Journals"]
    assert counts == {"total": 4, "500": 2, "200": 1, "429": 1}


def test_injected_fault_can_target_one_endpoint(exact_api, exact_simulator):
    exact_simulator.inject("status", status=503, path="financial/GLAccounts")
    assert exact_api.get(f"{DIVISION}/financial/Journals").status_code == 200
    assert exact_api.get(f"{DIVISION}/financial/GLAccounts").status_code == 503


def test_injected_timeout_drops_without_doing_the_work(exact_api, exact_simulator):
    exact_simulator.inject("timeout", seconds=0.2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        exact_api.request("GET", f"{DIVISION}/financial/Journals", timeout=0.05)


def test_timeout_after_processing_posts_but_client_never_hears(exact_api, exact_simulator,
                                                               exact_division):
    account = exact_simulator.seed_account(DIVISION, name="Acme")
    exact_simulator.inject("timeout", seconds=0, process=True)
    with pytest.raises(requests.ConnectionError):
        exact_api.post(f"{DIVISION}/financialtransaction/BankEntries", {
            "JournalCode": "21", "BankEntryLines": [{
                "Account": account["ID"], "GLAccount": exact_division["gl_accounts"]["1300"],
                "AmountFC": 5, "Description": "ref-123"}]})
    assert len(exact_simulator.ledger(DIVISION)) == 1
    found = exact_api.get(f"{DIVISION}/financialtransaction/BankEntryLines", **{
        "$filter": "Description eq 'ref-123'", "$select": "EntryID"}).json()["d"]["results"]
    assert len(found) == 1


def test_latency_is_applied_to_api_calls(exact_api, exact_simulator):
    exact_simulator.inject("latency", ms=150)
    with pytest.raises(requests.exceptions.ReadTimeout):
        exact_api.request("GET", "current/Me", timeout=0.05)
    exact_simulator.inject("clear")
    assert exact_api.get("current/Me").status_code == 200
