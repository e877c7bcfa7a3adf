"""Fidelity rules found by driving the simulator with a third-party client (issue 16): ``$skip``
where Exact supports it, the ``/$count`` path segment, and ``hrm/Divisions`` /
``system/Divisions`` with the fields Exact's reference lists. Each rule and its source is in
docs/simulator-exact.md, "Fidelity rules"."""

import pytest

from tests.plugins.exact_sim import DIVISION

ACCOUNTS = f"{DIVISION}/crm/Accounts"
ALL = "Name ne ''"  # satisfies crm/Accounts' mandatory filtering, matches every account


@pytest.fixture
def seventy(exact_simulator, exact_division):
    for i in range(70):
        exact_simulator.seed_account(DIVISION, name=f"Acme {i:03}")
    return exact_simulator


def names(resp):
    assert resp.status_code == 200, resp.text
    return [r["Name"] for r in resp.json()["d"]["results"]]


# --- $skip ------------------------------------------------------------------------------


def test_skip_on_a_standard_endpoint_skips_matching_rows_in_key_order(seventy, exact_api):
    everything = []
    url = None
    first = exact_api.get(ACCOUNTS, **{"$filter": ALL, "$select": "ID,Name"})
    everything += names(first)
    url = first.json()["d"]["__next"]
    everything += names(exact_api.get(url))
    assert len(everything) == 70

    skipped = exact_api.get(ACCOUNTS, **{"$filter": ALL, "$select": "ID,Name", "$skip": "65"})
    assert names(skipped) == everything[65:]
    assert "__next" not in skipped.json()["d"]


def test_skip_with_top_and_orderby(seventy, exact_api):
    resp = exact_api.get(ACCOUNTS, **{"$filter": ALL, "$select": "Name", "$orderby": "Name desc",
                                      "$skip": "5", "$top": "3"})
    assert names(resp) == ["Acme 064", "Acme 063", "Acme 062"]


def test_skip_then_next_link_continues_without_skipping_again(seventy, exact_api):
    resp = exact_api.get(ACCOUNTS, **{"$filter": ALL, "$select": "ID,Name", "$skip": "5"})
    assert len(names(resp)) == 60
    next_url = resp.json()["d"]["__next"]
    assert "$skip=" not in next_url and "$skiptoken=" in next_url
    assert len(names(exact_api.get(next_url))) == 5  # 70 - 5 skipped - 60 on page one


@pytest.mark.parametrize("path", ["bulk/CRM/Accounts", "sync/CRM/Accounts",
                                  "bulk/Cashflow/Receivables", "sync/Cashflow/PaymentTerms"])
def test_skip_is_refused_on_endpoints_released_after_march_2017(exact_api, path):
    resp = exact_api.get(f"{DIVISION}/{path}", **{"$select": "ID", "$skip": "1"})
    assert resp.status_code == 400
    assert "$skip" in resp.json()["error"]["message"]["value"]


def test_skip_must_be_a_non_negative_integer(exact_api):
    resp = exact_api.get(ACCOUNTS, **{"$filter": ALL, "$skip": "-1"})
    assert resp.status_code == 400


# --- /$count ----------------------------------------------------------------------------


def test_count_segment_answers_a_bare_integer_honouring_the_filter(seventy, exact_api):
    resp = exact_api.request("GET", f"{ACCOUNTS}/$count", params={"$filter": ALL},
                             headers={"Accept": "*/*"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "70"
    some = exact_api.request("GET", f"{ACCOUNTS}/$count",
                             params={"$filter": "Name ge 'Acme 060'"})
    assert some.text == "10"
    assert "X-RateLimit-Minutely-Remaining" in some.headers  # a counted call like any other


def test_count_segment_keeps_the_endpoints_filter_rules(exact_api):
    resp = exact_api.request("GET", f"{ACCOUNTS}/$count")
    assert resp.status_code == 400
    assert "mandatory filtering" in resp.json()["error"]["message"]["value"]
    bulk = exact_api.request("GET", f"{DIVISION}/bulk/Cashflow/Receivables/$count",
                             params={"$filter": "IsFullyPaid eq false"})
    assert bulk.status_code == 400  # IsFullyPaid is not a bulk-filterable field


def test_count_on_a_standard_endpoint_without_rules(exact_simulator, exact_api):
    acct = exact_simulator.seed_account(DIVISION, name="Acme")
    for n in range(3):
        exact_simulator.seed_invoice(DIVISION, account=acct["ID"], amount="10.00",
                                     number=900 + n)
    resp = exact_api.request("GET", f"{DIVISION}/salesinvoice/SalesInvoices/$count")
    assert (resp.status_code, resp.text) == (200, "3")


def test_count_query_option_is_still_refused(exact_api):
    # The $count *query option* is not OData v2/v3; Exact answers it with the system-reserved
    # 400 (picqer#219). Only the path segment counts.
    resp = exact_api.get(ACCOUNTS, **{"$filter": ALL, "$count": "true"})
    assert resp.status_code == 400
    assert "system-reserved" in resp.json()["error"]["message"]["value"]


def test_count_of_one_entity_is_an_error(exact_simulator, exact_api):
    acct = exact_simulator.seed_account(DIVISION, name="Acme")
    resp = exact_api.request("GET", f"{ACCOUNTS}(guid'{acct['ID']}')/$count")
    assert resp.status_code == 400


# --- divisions --------------------------------------------------------------------------


def test_hrm_divisions_lists_the_consented_divisions_with_its_own_fields(exact_simulator,
                                                                        exact_api):
    resp = exact_api.get(f"{DIVISION}/hrm/Divisions")
    assert resp.status_code == 200, resp.text
    (row,) = resp.json()["d"]["results"]
    assert row["Code"] == DIVISION and row["HID"] == DIVISION
    assert "Hid" not in row and "Current" not in row  # system/Divisions' spelling and field
    assert row["Status"] == 0  # hrm: 0 regular, 1 archived
    assert row["Currency"] == "EUR" and row["CurrencyDescription"]
    assert row["Country"] == "NL" and row["CountryDescription"]
    for name in ("Customer", "CustomerCode", "CustomerName", "Description", "Main",
                 "StartDate", "Created", "Modified", "VATNumber", "Website"):
        assert name in row
    assert row["__metadata"]["type"] == "Exact.Web.Api.Models.HRM.Division"
    assert exact_api.get(f"{DIVISION}/hrm/Divisions",
                         **{"$select": "Code,Description"}).status_code == 200


def test_hrm_divisions_needs_access_to_the_division_in_the_url(exact_api):
    # Unlike system/Divisions, hrm/Divisions lists the licence owning the URL's division.
    assert exact_api.get("999/hrm/Divisions").status_code == 403


def test_system_divisions_carries_the_documented_fields(exact_api):
    (row,) = exact_api.get(f"{DIVISION}/system/Divisions").json()["d"]["results"]
    assert row["Hid"] == DIVISION and "HID" not in row
    assert row["Status"] == 1 and row["Current"] is True  # system: 0 inactive, 1 active
    for name in ("Customer", "CustomerCode", "CustomerName", "IsMainDivision",
                 "DivisionMoveDate", "DivisionHRLinkUnlinkDate", "Legislation", "BlockingStatus",
                 "ArchiveDate", "StartDate", "VATNumber", "ChamberOfCommerceNumber"):
        assert name in row


def test_unknown_field_in_select_is_refused_on_divisions(exact_api):
    resp = exact_api.get(f"{DIVISION}/hrm/Divisions", **{"$select": "Code,Hid"})
    assert resp.status_code == 400
    assert "No property 'Hid'" in resp.json()["error"]["message"]["value"]


# --- salesentry/SalesEntries ------------------------------------------------------------


@pytest.fixture
def sales_setup(exact_simulator, exact_division):
    acct = exact_simulator.seed_account(DIVISION, name="Acme")
    return acct, exact_division["gl_accounts"]["8000"]


def entry_body(acct, gl, **over):
    body = {"Journal": "70", "Customer": acct["ID"], "YourRef": "PO-7",
            "EntryDate": "2026-11-02T00:00", "DueDate": "2026-12-02T00:00",
            "SalesEntryLines": [{"GLAccount": gl, "AmountFC": 100.0, "VATAmountFC": 21.0,
                                 "Description": "Consulting"}]}
    return {**body, **over}


def test_sales_entry_post_creates_an_open_item(exact_api, sales_setup):
    acct, gl = sales_setup
    resp = exact_api.post(f"{DIVISION}/salesentry/SalesEntries", entry_body(acct, gl))
    assert resp.status_code == 201, resp.text
    entry = resp.json()["d"]
    assert entry["AmountFC"] == 121.0 and entry["Type"] == 20 and entry["YourRef"] == "PO-7"
    assert entry["Customer"] == acct["ID"] and entry["InvoiceNumber"] == entry["EntryNumber"]
    by_key = exact_api.get(f"{DIVISION}/salesentry/SalesEntries(guid'{entry['EntryID']}')")
    assert by_key.json()["d"]["EntryID"] == entry["EntryID"]
    rows = exact_api.get(f"{DIVISION}/read/financial/ReceivablesList",
                         **{"$filter": f"AccountId eq guid'{acct['ID']}'"}).json()["d"]["results"]
    assert [(r["InvoiceNumber"], r["Amount"]) for r in rows] == [(entry["InvoiceNumber"], 121.0)]


def test_sales_entry_with_a_negative_total_is_a_credit_note(exact_api, sales_setup):
    acct, gl = sales_setup
    body = entry_body(acct, gl, SalesEntryLines=[{"GLAccount": gl, "AmountFC": -50.0}])
    entry = exact_api.post(f"{DIVISION}/salesentry/SalesEntries", body).json()["d"]
    assert (entry["Type"], entry["AmountFC"]) == (21, -50.0)


@pytest.mark.parametrize("change, status, message", [
    ({"Journal": None}, 400, "Mandatory: Journal"),
    ({"Customer": None}, 400, "Mandatory: Customer"),
    ({"SalesEntryLines": []}, 400, "Mandatory: SalesEntryLines"),
    ({"Journal": "90"}, 500, "The journal must be a sales journal."),
    ({"Journal": "ZZ"}, 500, "Invalid journal: ZZ"),
    ({"Customer": "00000000-0000-4000-8000-000000000000"}, 500, "Invalid account"),
])
def test_sales_entry_refusals(exact_api, sales_setup, change, status, message):
    acct, gl = sales_setup
    resp = exact_api.post(f"{DIVISION}/salesentry/SalesEntries", entry_body(acct, gl, **change))
    assert resp.status_code == status
    assert message in resp.json()["error"]["message"]["value"]


def test_sales_entry_line_needs_gl_account_and_amount(exact_api, sales_setup):
    acct, gl = sales_setup
    for line in ({"AmountFC": 10.0}, {"GLAccount": gl}):
        resp = exact_api.post(f"{DIVISION}/salesentry/SalesEntries",
                              entry_body(acct, gl, SalesEntryLines=[line]))
        assert resp.status_code == 400
