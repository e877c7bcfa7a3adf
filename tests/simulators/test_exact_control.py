"""The control API over HTTP (same methods as in-process), bulk seeding for benchmarks,
reset, and behaviour under concurrent load."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from simulators.exact_online import SimClock, Simulator
from tests.plugins.exact_sim import DIVISION, ExactApi


def control(sim, method, **body):
    resp = requests.post(f"{sim.url}/_control/{method}", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_seed_and_inspect_over_http(exact_simulator_shared):
    sim = exact_simulator_shared
    div = control(sim, "seed_division", division=DIVISION, name="Demo BV")
    assert div["journals"]["21"]["Type"] == 12 and "1300" in div["gl_accounts"]
    user = control(sim, "seed_user", user_name="clerk", divisions=[DIVISION])
    assert user["Divisions"] == [DIVISION]
    account = control(
        sim, "seed_account", division=DIVISION, name="Acme", code="C001", email="ar@acme.example"
    )
    assert account["Code"] == "C001"
    invoice = control(
        sim,
        "seed_invoice",
        division=DIVISION,
        account=account["ID"],
        amount="250.00",
        due_date="2026-01-15",
        number=9001,
    )
    assert (invoice["InvoiceNumber"], invoice["Open"], invoice["DueDate"]) == (
        9001,
        "250.00",
        "2026-01-15",
    )
    note = control(sim, "seed_credit_note", division=DIVISION, account=account["ID"], amount=50)
    assert note["AmountFC"] == "-50.00"
    changed = control(
        sim, "update_account", division=DIVISION, account_id=account["ID"], blocked=True
    )
    assert changed["Blocked"] is True and changed["Timestamp"] > account["Timestamp"]
    assert (
        control(
            sim, "update_invoice", division=DIVISION, invoice_id=invoice["InvoiceID"], amount=300
        )["Open"]
        == "300.00"
    )
    assert control(sim, "delete_invoice", division=DIVISION, invoice_id=note["InvoiceID"]) == {
        "deleted": note["InvoiceID"]
    }
    got = requests.get(
        f"{sim.url}/_control/invoice", params={"division": DIVISION, "number": 9001}
    ).json()
    assert got["InvoiceID"] == invoice["InvoiceID"]
    assert requests.get(f"{sim.url}/_control/ledger", params={"division": DIVISION}).json() == []


def test_clock_control(exact_simulator_shared):
    sim = exact_simulator_shared
    now = control(sim, "set_time", now="2025-03-01T10:00:00Z")["now"]
    assert now == "2025-03-01T10:00:00+00:00"
    assert control(sim, "advance", seconds=90)["now"] == "2025-03-01T10:01:30+00:00"
    assert requests.get(f"{sim.url}/_control/now").json()["now"] == "2025-03-01T10:01:30+00:00"


def test_clock_can_run_on_from_a_set_time(exact_simulator_shared):
    """``ticking``: the demo keeps Exact's clock in step with the product's clock."""
    sim = exact_simulator_shared
    start = "2025-03-01T10:00:00+00:00"
    try:
        assert control(sim, "set_time", now=start, ticking=True)["now"] >= start
        time.sleep(0.05)
        later = requests.get(f"{sim.url}/_control/now").json()["now"]
        assert later > start and later < "2025-03-01T10:01:00+00:00"
    finally:  # frozen again, where the other tests expect it
        assert control(sim, "set_time", now=start)["now"] == start
    time.sleep(0.02)
    assert requests.get(f"{sim.url}/_control/now").json()["now"] == start


def test_inject_and_call_counts_over_http(exact_simulator_shared):
    sim = exact_simulator_shared
    sim.seed_division(division=DIVISION)
    api = ExactApi(sim).connect()
    pending = control(sim, "inject", fault="status", status=500, count=1)
    assert pending["pending"][0]["status"] == 500
    assert api.get(f"{DIVISION}/financial/Journals").status_code == 500
    assert api.get(f"{DIVISION}/financial/Journals").status_code == 200
    counts = requests.get(f"{sim.url}/_control/call_counts").json()
    assert counts["GET /api/v1/{division}/financial/Journals"] == {"total": 2, "500": 1, "200": 1}
    control(sim, "call_counts", reset=True)
    assert control(sim, "call_counts") == {}


def test_settings_over_http(exact_simulator_shared):
    sim = exact_simulator_shared
    out = control(sim, "settings", consent="deny", minutely_limit=7)
    assert out["consent"] == "deny" and out["minutely_limit"] == 7
    resp = requests.post(f"{sim.url}/_control/settings", json={"consent": "maybe"})
    assert resp.status_code == 400


def test_control_errors_are_400_and_unknown_methods_404(exact_simulator_shared):
    sim = exact_simulator_shared
    resp = requests.post(f"{sim.url}/_control/seed_account", json={"division": 42, "name": "x"})
    assert resp.status_code == 400 and "unknown division" in resp.json()["error"]
    assert requests.post(f"{sim.url}/_control/stop", json={}).status_code == 404
    assert requests.post(f"{sim.url}/_control/seed_invoice", json=[1]).status_code == 400


def test_control_is_loopback_only():
    sim = Simulator()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/_control/now",
        "REMOTE_ADDR": "10.1.2.3",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
    }
    statuses = []
    sim.wsgi_app(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["403 FORBIDDEN"]


def test_reset_forgets_everything(exact_simulator_shared):
    sim = exact_simulator_shared
    sim.seed_division(division=DIVISION)
    api = ExactApi(sim).connect()
    sim.inject("latency", ms=5)
    control(sim, "reset")
    assert api.get("current/Me").status_code == 401  # tokens are gone
    assert sim.faults.describe() == {"latency_ms": 0, "pending": []}
    assert sim.state.divisions == {}


def test_bulk_seed_syncs_completely(exact_simulator):
    # How fast seeding is, is the benches' business (bench/exact_sync.py seeds through it);
    # a wall-clock bound here failed on a loaded machine without anything being wrong.
    sim = exact_simulator
    sim.seed_division(division=DIVISION)
    sim.settings(minutely_limit=1000)
    out = control(
        sim,
        "seed_bulk",
        division=DIVISION,
        accounts=20000,
        invoices=50000,
        open_invoices=12000,
        seed=1,
    )
    assert out == {
        "division": DIVISION,
        "accounts": 20000,
        "invoices": 50000,
        "open_invoices": 12000,
    }
    api = ExactApi(sim).connect()
    resp = api.get(
        f"{DIVISION}/sync/Cashflow/PaymentTerms",
        **{"$select": "ID,IsFullyPaid,Timestamp", "$filter": "Timestamp gt 1L"},
    )
    seen, open_items, pages = set(), 0, 0
    while True:
        d = resp.json()["d"]
        pages += 1
        seen.update(r["ID"] for r in d["results"])
        open_items += sum(not r["IsFullyPaid"] for r in d["results"])
        if "__next" not in d:
            break
        resp = api.request("GET", d["__next"])
    assert (len(seen), open_items, pages) == (50000, 12000, 50)


def test_bulk_seed_is_deterministic():
    a, b = Simulator(clock=SimClock()), Simulator(clock=SimClock())
    for sim in (a, b):
        sim.seed_division(division=1)
        sim.seed_bulk(1, accounts=5, invoices=20, open_invoices=7, credit_notes=2, seed=9)
    ids = [sorted(s.state.division(1).invoices.rows) for s in (a, b)]
    assert ids[0] == ids[1]


def test_concurrent_calls_never_exceed_the_budget(exact_simulator):
    sim = exact_simulator
    sim.seed_division(division=DIVISION)
    sim.settings(minutely_limit=100)
    api = ExactApi(sim).connect()

    def call(_):
        return api.get(f"{DIVISION}/financial/Journals").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call, range(160)))
    assert statuses.count(200) == 100 and statuses.count(429) == 60


@pytest.mark.parametrize("bad", [{"fault": "nope"}, {"fault": "status", "status": 200}])
def test_inject_rejects_nonsense(exact_simulator_shared, bad):
    resp = requests.post(f"{exact_simulator_shared.url}/_control/inject", json=bad)
    assert resp.status_code == 400


def test_query_string_arguments_are_typed(exact_simulator_shared):
    sim = exact_simulator_shared
    url = f"{sim.url}/_control"
    assert requests.get(
        f"{url}/inject", params={"fault": "timeout", "seconds": "0.5", "process": "false"}
    ).json()["pending"] == [
        {
            "fault": "timeout",
            "remaining": 1,
            "path": "/api/v1/",
            "status": 0,
            "seconds": 0.5,
            "process": False,
        }
    ]
    assert requests.get(f"{url}/call_counts", params={"reset": "false"}).status_code == 200
    assert requests.get(f"{url}/advance", params={"seconds": "x"}).status_code == 400


def test_account_address_fields_are_served_and_writable(exact_simulator, exact_api):
    sim = exact_simulator
    account = sim.seed_account(
        DIVISION,
        name="Bakkerij Jansen",
        address_line1="Dorpsstraat 1",
        postcode="1234 AB",
        city="Utrecht",
        country="NL",
    )
    select = "ID,AddressLine1,AddressLine2,Postcode,City,Country"
    row = exact_api.get(
        f"{DIVISION}/crm/Accounts(guid'{account['ID']}')", **{"$select": select}
    ).json()["d"]
    assert (row["AddressLine1"], row["AddressLine2"], row["Postcode"], row["City"]) == (
        "Dorpsstraat 1",
        None,
        "1234 AB",
        "Utrecht",
    )
    exact_api.put(f"{DIVISION}/crm/Accounts(guid'{account['ID']}')", {"Postcode": "3511 AA"})
    row = exact_api.get(
        f"{DIVISION}/crm/Accounts(guid'{account['ID']}')", **{"$select": select}
    ).json()["d"]
    assert row["Postcode"] == "3511 AA"


def test_update_invoice_open_accepts_strings(exact_simulator_shared):
    sim = exact_simulator_shared
    sim.seed_division(division=DIVISION)
    account = control(sim, "seed_account", division=DIVISION, name="Acme")
    invoice = control(sim, "seed_invoice", division=DIVISION, account=account["ID"], amount="80.00")
    paid = control(
        sim, "update_invoice", division=DIVISION, invoice_id=invoice["InvoiceID"], open="0"
    )
    assert paid["Open"] == "0.00" and paid["IsFullyPaid"] is True
