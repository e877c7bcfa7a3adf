"""Contract tests: the Exact simulator driven by a client this project did not write.

The peer is ``exactonline`` from PyPI (ossobv/exactonline, OSSO B.V.), used as its README
shows: an ``ExactApi`` over a storage object. It does the OAuth authorisation-code flow,
refreshes tokens itself (30 s before expiry, or after a 401), unwraps ``d.results`` and follows
``__next``, honours Exact's rate-limit headers, and talks ``current/Me``, ``hrm/Divisions``,
``crm/Accounts``, ``read/financial/ReceivablesList``, ``salesentry/SalesEntries`` and any raw
resource.

Two things are adapted, both transport only: the simulator listens on plain loopback HTTP, so
the peer's HTTPS-only option is widened to allow ``http``; and the peer's rate limiter records
the pauses it asks for instead of sleeping them (the simulator's clock is frozen).

These tests fail when the simulator is *more lenient* than the documented API: a refresh before
570 s, a call over the minutely limit, an unknown field in ``$select``, a missing mandatory
``$filter``, ``$skip`` on a post-2017 endpoint, a reused authorisation code — each must be
refused the way Exact refuses it. Sources: docs/simulator-exact.md, "Fidelity rules".
"""

from __future__ import annotations

from datetime import date, timedelta
from time import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from exactonline import http as peer_http
from exactonline.api import ExactApi
from exactonline.http import HTTPError
from exactonline.rawapi import RateLimiter
from exactonline.resource import GET, POST

from simulators.exact_online.peer import PeerStorage
from tests.plugins.exact_sim import DIVISION

REDIRECT_URI = "https://connector.example.test/exact/callback"


def MemoryStorage(base: str) -> PeerStorage:
    return PeerStorage(base, redirect_uri=REDIRECT_URI)


class RecordingLimiter(RateLimiter):
    """The peer's own limiter; only the sleep is replaced by a note of how long it wanted."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[int] = []

    def wait(self, seconds):
        self.waits.append(seconds)


class PeerApi(ExactApi):
    def get_ratelimiter(self):  # the hook the peer offers for this
        return RecordingLimiter()


@pytest.fixture
def sim(exact_simulator_shared, monkeypatch):
    monkeypatch.setattr(peer_http.opt_secure, "protocols", ("http", "https"))
    sim = exact_simulator_shared
    sim.settings(redirect_uris=[REDIRECT_URI])
    sim.seed_division(division=DIVISION)
    return sim


def consent(api: ExactApi) -> str:
    """What the user's browser does: open the peer's auth URL, come back with a code."""
    resp = requests.get(api.create_auth_request_url(), allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return parse_qs(location.query)["code"][0]


@pytest.fixture
def peer(sim) -> PeerApi:
    api = PeerApi(storage=MemoryStorage(sim.url))
    api.request_token(consent(api))
    return api


def calls(sim, key: str) -> dict:
    return sim.call_counts().get(key, {})


# --- OAuth --------------------------------------------------------------------------------


def test_authorisation_code_flow_stores_both_tokens(sim, peer):
    storage = peer.storage
    assert storage.get_access_token().startswith("sim-at-")
    assert storage.get_refresh_token().startswith("sim-rt-")
    # expires_in came as the string "600" and the peer turned it into an absolute expiry
    assert 590 <= storage.get_access_expiry() - time() <= 600


def test_authorisation_code_is_single_use(sim):
    api = PeerApi(storage=MemoryStorage(sim.url))
    code = consent(api)
    api.request_token(code)
    with pytest.raises(HTTPError) as err:
        api.request_token(code)
    assert err.value.code == 400
    assert b"invalid_grant" in err.value.response


def test_redirect_uri_must_match_the_registered_one(sim):
    storage = MemoryStorage(sim.url)
    storage.set("application", "base_url", "https://elsewhere.example.test/cb")
    resp = requests.get(PeerApi(storage=storage).create_auth_request_url(),
                        allow_redirects=False, timeout=5)
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_refresh_before_570_seconds_is_refused(sim, peer):
    old_access = peer.storage.get_access_token()
    old_refresh = peer.storage.get_refresh_token()
    sim.advance(569)
    peer.storage.set_access_expiry(0)  # the peer now thinks its token ran out: it refreshes
    with pytest.raises(HTTPError) as err:
        peer.rest(GET("v1/current/Me"))
    assert err.value.code == 400
    assert b"access_denied" in err.value.response
    assert err.value.hdrs["Reason"].startswith("TooEarlyToRefreshTokens")
    # nothing rotated: the stored tokens are still the ones from the code exchange
    assert peer.storage.get_access_token() == old_access
    assert peer.storage.get_refresh_token() == old_refresh


def test_refresh_in_the_last_30_seconds_rotates_both_tokens(sim, peer):
    old_refresh = peer.storage.get_refresh_token()
    sim.advance(575)
    peer.storage.set_access_expiry(int(time()) + 25)  # < 30 s left: the peer refreshes first
    me = peer.rest(GET("v1/current/Me?$select=CurrentDivision"))
    assert me == [{"__metadata": me[0]["__metadata"], "CurrentDivision": DIVISION}]
    assert peer.storage.get_refresh_token() != old_refresh
    assert calls(sim, "POST /api/oauth2/token grant_type=refresh_token") == {"total": 1,
                                                                            "200": 1}
    # the rotated-away refresh token is dead: reusing it is Exact's 401 "Old refresh token"
    resp = requests.post(peer.storage.get_token_url(), timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": old_refresh,
        "client_id": "sim-client-id", "client_secret": "sim-client-secret"})
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized_client",
                           "error_description": "Old refresh token used."}


def test_expired_access_token_gets_401_and_the_peer_recovers(sim, peer):
    sim.advance(601)  # the peer's own clock still says the token is fresh
    me = peer.rest(GET("v1/current/Me?$select=CurrentDivision"))
    assert me[0]["CurrentDivision"] == DIVISION
    counts = calls(sim, "GET /api/v1/current/Me")
    assert counts == {"total": 2, "401": 1, "200": 1}


# --- divisions ----------------------------------------------------------------------------


def test_get_divisions_reads_current_me_and_hrm_divisions(sim, peer):
    sim.seed_division(division=222222, name="Second B.V.")
    choices, current = peer.get_divisions()
    assert current == DIVISION
    assert choices == {DIVISION: f"Sim Administration {DIVISION}", 222222: "Second B.V."}
    assert calls(sim, "GET /api/v1/{division}/hrm/Divisions") == {"total": 1, "200": 1}


def test_set_division_probes_accounts_and_refuses_a_foreign_division(sim, peer):
    peer.set_division(DIVISION)
    assert peer.storage.get_division() == DIVISION
    with pytest.raises(HTTPError) as err:
        peer.set_division(999999)
    assert err.value.code == 403
    assert err.value.hdrs["Reason"] == "NoDivisionAccess"


# --- reading with paging ------------------------------------------------------------------


@pytest.fixture
def ledger(sim, peer):
    peer.set_division(DIVISION)
    accounts = [sim.seed_account(DIVISION, name=f"Klant {i:03}") for i in range(125)]
    due = date.today() - timedelta(days=10)
    for n, acct in enumerate(accounts[:3]):
        sim.seed_invoice(DIVISION, account=acct["ID"], amount="100.00", number=250100 + n,
                         due_date=due.isoformat())
    return accounts


def test_accounts_page_at_60_and_the_peer_follows_next(sim, peer, ledger):
    rows = peer.relations.filter(filter="Name ne ''")
    assert len(rows) == 125
    assert {r["ID"] for r in rows} == {a["ID"] for a in ledger}
    assert set(rows[0]) == {"__metadata", "ID", "Code", "Name"}  # the peer's default $select
    codes = {a["ID"]: a["Code"] for a in ledger}
    assert all(r["Code"] == codes[r["ID"]].rjust(18) for r in rows)  # 18 wide, right-aligned
    assert calls(sim, "GET /api/v1/{division}/crm/Accounts") == {"total": 4, "200": 4}  # +probe


def test_accounts_by_code_needs_the_padded_code(sim, peer, ledger):
    code = ledger[7]["Code"].strip()
    (row,) = peer.relations.filter(relation_code=code)  # the peer pads to 18 itself
    assert row["ID"] == ledger[7]["ID"]
    assert peer.relations.filter(filter=f"Code eq '{code}'") == []  # unpadded matches nothing


def test_accounts_without_a_filter_are_refused_mandatory_filtering(sim, peer, ledger):
    with pytest.raises(HTTPError) as err:
        peer.relations.all()
    assert err.value.code == 400
    assert b"mandatory filtering" in err.value.response


def test_unknown_field_in_select_is_refused(sim, peer, ledger):
    with pytest.raises(HTTPError) as err:
        peer.relations.filter(filter="Name ne ''", select="ID,Nonsense")
    assert err.value.code == 400
    assert b"No property 'Nonsense'" in err.value.response


def test_skip_works_where_exact_supports_it_and_not_on_bulk(sim, peer, ledger):
    rows = peer.relations.filter(filter="Name ne ''", skip=120)
    assert len(rows) == 5
    with pytest.raises(HTTPError) as err:
        peer.restv1(GET("bulk/CRM/Accounts?$select=ID&$skip=1"))
    assert err.value.code == 400


def test_receivables_list_by_account_and_due_date(sim, peer, ledger):
    mine = peer.receivables.filter(relation_id=ledger[1]["ID"])
    assert [r["InvoiceNumber"] for r in mine] == [250101]
    assert mine[0]["Amount"] == 100.0 and mine[0]["AccountId"] == ledger[1]["ID"]
    overdue = peer.receivables.filter(duedate__lt=date.today())
    assert sorted(r["InvoiceNumber"] for r in overdue) == [250100, 250101, 250102]
    assert peer.receivables.filter(duedate__gte=date.today()) == []


def test_receivables_page_with_next_across_cashflow_receivables(sim, peer, ledger):
    for n, acct in enumerate(ledger[3:70]):
        sim.seed_invoice(DIVISION, account=acct["ID"], amount="12.50", number=260000 + n)
    rows = peer.restv1(GET(
        "cashflow/Receivables?$select=ID,InvoiceNumber,AmountDC,IsFullyPaid"
        "&$filter=IsFullyPaid%20eq%20false"))
    assert len(rows) == 70  # 3 + 67 open items, two pages of at most 60
    assert calls(sim, "GET /api/v1/{division}/cashflow/Receivables") == {"total": 2, "200": 2}


def test_count_segment_with_the_peers_token(sim, peer, ledger):
    # The peer has no $count helper (it would parse the bare number as JSON); Exact's docs
    # say to call it without an Accept header, which plain requests does.
    resp = requests.get(f"{sim.url}/api/v1/{DIVISION}/crm/Accounts/$count",
                        params={"$filter": "Name ge 'Klant 100'"}, timeout=5,
                        headers={"Authorization": f"Bearer {peer.storage.get_access_token()}"})
    assert (resp.status_code, resp.text) == (200, "25")


# --- writing ------------------------------------------------------------------------------


def test_post_a_general_journal_entry_and_read_it_back(sim, peer, ledger):
    gl = {g["Code"]: g["ID"] for g in peer.ledgeraccounts.filter(code__in=["1300", "1100"])}
    assert set(gl) == {"1300", "1100"}
    entry = peer.restv1(POST("generaljournalentry/GeneralJournalEntries", {
        "JournalCode": "90",
        "GeneralJournalEntryLines": [
            {"GLAccount": gl["1100"], "AmountFC": 100.0, "Description": "peer test"},
            {"GLAccount": gl["1300"], "AmountFC": -100.0, "Account": ledger[0]["ID"],
             "OurRef": 250100, "Description": "peer test"},
        ],
    }))
    assert entry["JournalCode"] == "90" and entry["EntryID"]
    lines = peer.restv1(GET(
        "generaljournalentry/GeneralJournalEntryLines?$select=EntryID,AmountFC,OurRef"
        f"&$filter=EntryID%20eq%20guid'{entry['EntryID']}'"))
    assert sorted(line["AmountFC"] for line in lines) == [-100.0, 100.0]
    # the credit on the debtor settled invoice 250100: it left the outstanding list
    assert peer.receivables.filter(relation_id=ledger[0]["ID"]) == []


def test_sales_entry_through_the_peers_invoices_manager(sim, peer, ledger):
    revenue = peer.ledgeraccounts.get(code__in=["8000"])["ID"]
    created = peer.invoices.create({
        "Journal": "70", "Customer": ledger[5]["ID"], "YourRef": "F2026-0042",
        "Description": "peer sales entry", "EntryDate": "2026-11-02T00:00",
        "SalesEntryLines": [{"GLAccount": revenue, "AmountFC": 50.0, "VATAmountFC": 10.5}],
    })
    assert created["EntryID"] and created["AmountFC"] == 60.5
    found = peer.invoices.get(invoice_number="F2026-0042")  # $filter=YourRef eq …, $top=2
    assert found["EntryID"] == created["EntryID"]
    assert peer.invoices.map_foreign2exact_invoice_numbers(["F2026-0042"]) == {
        "F2026-0042": created["InvoiceNumber"]}
    (item,) = peer.receivables.filter(relation_id=ledger[5]["ID"])
    assert (item["InvoiceNumber"], item["Amount"]) == (created["InvoiceNumber"], 60.5)


def test_post_without_mandatory_fields_is_refused(sim, peer, ledger):
    with pytest.raises(HTTPError) as err:
        peer.restv1(POST("generaljournalentry/GeneralJournalEntries",
                         {"GeneralJournalEntryLines": []}))
    assert err.value.code == 400


def test_reading_entries_without_select_is_refused(sim, peer, ledger):
    with pytest.raises(HTTPError) as err:
        peer.restv1(GET("generaljournalentry/GeneralJournalEntries"))
    assert err.value.code == 400
    assert b"Please add a $select or a $top=1 statement" in err.value.response


# --- rate limits --------------------------------------------------------------------------


def test_a_call_over_the_minutely_limit_is_refused(sim, peer):
    sim.settings(minutely_limit=4)
    peer.set_division(DIVISION)  # call 1
    for _ in range(3):  # calls 2-4
        peer.restv1(GET("financial/Journals?$select=Code"))
    with pytest.raises(HTTPError) as err:
        peer.restv1(GET("financial/Journals?$select=Code"))  # the peer even retries once
    assert err.value.code == 429
    headers = err.value.hdrs
    assert headers["X-RateLimit-Minutely-Remaining"] == "0"
    assert "X-RateLimit-Remaining" not in headers  # a minutely 429 has only minutely headers
    assert calls(sim, "GET /api/v1/{division}/financial/Journals")["429"] == 2
    # the peer read the headers and wanted to pause until the minute's reset
    assert peer.limiter.waits and all(0 <= w <= 61 for w in peer.limiter.waits)
    sim.advance(60)  # the next minute: the budget is back
    assert peer.restv1(GET("financial/Journals?$select=Code"))
