"""OData behaviour: $filter grammar, $select, mandatory options, paging with __next,
$top, $inlinecount, $orderby, envelopes and value encoding (API-NOTES §4)."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.exact_online.errors import ApiError
from simulators.exact_online.odata import (
    BOOLEAN,
    DATETIME,
    DOUBLE,
    GUID,
    INT32,
    INT64,
    STRING,
    Field,
    compile_filter,
)
from tests.plugins.exact_sim import DIVISION

SELECT_400 = "Please add a $select or a $top=1 statement to the query string."
GUID_A = "8f3e4b5c-1111-4222-8333-944455556666"

FIELDS = {f.name: f for f in [
    Field("ID", GUID, lambda r: r.id),
    Field("Name", STRING, lambda r: r.name),
    Field("Number", INT32, lambda r: r.number),
    Field("Timestamp", INT64, lambda r: r.ts),
    Field("Amount", DOUBLE, lambda r: r.amount),
    Field("Paid", BOOLEAN, lambda r: r.paid),
    Field("DueDate", DATETIME, lambda r: r.due),
]}
ROW = SimpleNamespace(id=GUID_A, name="O'Brien & Co", number=42, ts=123456789, paid=False,
                      amount=Decimal("99.50"), due=datetime(2025, 12, 23, tzinfo=UTC))


def matches(text, row=ROW):
    predicate, _ = compile_filter(text, FIELDS, "T")
    return predicate(row)


@pytest.mark.parametrize("text, expected", [
    (f"ID eq guid'{GUID_A}'", True),
    (f"ID eq guid'{GUID_A.upper()}'", True),
    ("ID ne guid'00000000-0000-0000-0000-000000000000'", True),
    ("Name eq 'O''Brien & Co'", True),
    ("Name eq 'o''brien & co'", True),  # SQL Server collation: case-insensitive
    ("Number eq 42", True), ("Number gt 41", True), ("Number ge 42", True),
    ("Number lt 42", False), ("Number le 42", True), ("Number ne 42", False),
    ("Timestamp gt 123456788L", True), ("Timestamp gt 123456789L", False),
    ("Timestamp gt 1", True),
    ("Amount gt 99.49", True), ("Amount eq 99.5", True),
    ("Paid eq false", True), ("Paid eq true", False),
    ("DueDate lt datetime'2025-12-24'", True),
    ("DueDate eq DateTime'2025-12-23T00:00:00'", True),
    ("Number eq 1 or Number eq 42", True),
    ("Number eq 42 and Paid eq true", False),
    ("(Number eq 1 or Number eq 42) and Paid eq false", True),
    ("Number eq 1 or (Number eq 42 and Paid eq false)", True),
    ("not (Number eq 42)", False),
    ("Name eq null", False), ("Name ne null", True),
])
def test_filter_grammar(text, expected):
    assert matches(text) is expected


@pytest.mark.parametrize("text, message", [
    ("Nope eq 1", "No property 'Nope' exists in type 'T' at position 0."),
    ("Number eq 'x'", "Operator 'eq' incompatible with operand types 'Edm.Int32' and "
                      "'Edm.String' at position 7."),
    ("Number eq", "Expression expected at position 9."),
    ("(Number eq 1", "')' or operator expected at position 12."),
    ("Number eq 1 Paid", "Syntax error at position 12."),
    ("Number == 1", "Syntax error at position 7."),
])
def test_filter_errors(text, message):
    with pytest.raises(ApiError) as err:
        compile_filter(text, FIELDS, "T")
    assert err.value.status == 400
    assert err.value.message == message


def test_filter_reports_used_fields():
    _, used = compile_filter("(Number eq 1 or Name eq 'a') and Paid eq true", FIELDS, "T")
    assert used == {"Number", "Name", "Paid"}


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_string_literal_round_trip(value):
    row = SimpleNamespace(**{**vars(ROW), "name": value})
    literal = "'" + value.replace("'", "''") + "'"
    assert matches(f"Name eq {literal}", row)


# --- over HTTP ------------------------------------------------------------------------


@pytest.fixture
def accounts(exact_simulator, exact_division):
    exact_simulator.seed_bulk(DIVISION, accounts=130, invoices=2100, open_invoices=700)


def _follow(api, path, **params):
    """All pages of a collection; returns (rows, page sizes)."""
    resp = api.get(path, **params)
    pages = []
    rows = []
    while True:
        assert resp.status_code == 200, resp.text
        d = resp.json()["d"]
        pages.append(len(d["results"]))
        rows.extend(d["results"])
        if "__next" not in d:
            return rows, pages
        assert "$skiptoken=" in d["__next"]
        resp = api.request("GET", d["__next"])


def test_standard_pages_are_60_and_next_continues(exact_api, accounts):
    rows, pages = _follow(exact_api, f"{DIVISION}/crm/Accounts", **{
        "$filter": "IsSales eq true", "$select": "ID,Code,Name"})
    assert pages == [60, 60, 10]
    assert len({r["ID"] for r in rows}) == 130


def test_bulk_and_sync_pages_are_1000(exact_api, accounts):
    _, pages = _follow(exact_api, f"{DIVISION}/bulk/Cashflow/Receivables",
                       **{"$select": "ID,AmountDC"})
    assert pages == [1000, 1000, 100]
    _, pages = _follow(exact_api, f"{DIVISION}/sync/SalesInvoice/SalesInvoices",
                       **{"$select": "InvoiceID,Timestamp", "$filter": "Timestamp gt 1L"})
    assert pages == [1000, 1000, 100]
    _, pages = _follow(exact_api, f"{DIVISION}/salesinvoice/SalesInvoices",
                       **{"$select": "InvoiceID"})
    assert pages[0] == 60 and sum(pages) == 2100


def test_last_page_has_no_next_even_when_exactly_full(exact_api, exact_simulator,
                                                      exact_division):
    exact_simulator.seed_bulk(DIVISION, accounts=60)
    resp = exact_api.get(f"{DIVISION}/crm/Accounts", **{"$filter": "IsSales eq true"})
    d = resp.json()["d"]
    assert len(d["results"]) == 60 and "__next" not in d


def test_next_keeps_filter_and_select(exact_api, accounts):
    first = exact_api.get(f"{DIVISION}/cashflow/Receivables", **{
        "$filter": "IsFullyPaid eq false", "$select": "ID,IsFullyPaid"}).json()["d"]
    nxt = first["__next"]
    assert "$filter=IsFullyPaid" in nxt and "$select=ID,IsFullyPaid" in nxt
    rows, _ = _follow(exact_api, f"{DIVISION}/cashflow/Receivables", **{
        "$filter": "IsFullyPaid eq false", "$select": "ID,IsFullyPaid"})
    assert len(rows) == 700
    assert all(r["IsFullyPaid"] is False for r in rows)
    assert set(rows[0]) == {"__metadata", "ID", "IsFullyPaid"}


def test_top_limits_and_continues(exact_api, accounts):
    _, pages = _follow(exact_api, f"{DIVISION}/salesinvoice/SalesInvoices",
                       **{"$top": "100", "$select": "InvoiceID"})
    assert pages == [60, 40]
    d = exact_api.get(f"{DIVISION}/salesinvoice/SalesInvoices", **{"$top": "5"}).json()["d"]
    assert len(d["results"]) == 5 and "__next" not in d


def test_inlinecount_is_a_string_inside_d(exact_api, accounts):
    d = exact_api.get(f"{DIVISION}/read/financial/ReceivablesList", **{
        "$top": "0", "$inlinecount": "allpages"}).json()["d"]
    assert d["results"] == [] and d["__count"] == "700"


def test_orderby_pages_in_order(exact_api, accounts):
    rows, _ = _follow(exact_api, f"{DIVISION}/crm/Accounts", **{
        "$filter": "IsSales eq true", "$select": "Name", "$orderby": "Name desc"})
    names = [r["Name"] for r in rows]
    assert names == sorted(names, reverse=True) and len(names) == 130


@pytest.mark.parametrize("path", [
    "bulk/CRM/Accounts", "bulk/SalesInvoice/SalesInvoices", "bulk/Cashflow/Receivables",
    "sync/CRM/Accounts", "sync/SalesInvoice/SalesInvoices", "sync/Cashflow/PaymentTerms",
    "sync/Deleted", "cashflow/DirectDebitMandates", "generaljournalentry/GeneralJournalEntries",
])
def test_select_is_mandatory(exact_api, path):
    resp = exact_api.get(f"{DIVISION}/{path}")
    assert resp.status_code == 400
    assert resp.json() == {"error": {"code": "", "message": {"lang": "", "value": SELECT_400}}}
    assert exact_api.get(f"{DIVISION}/{path}", **{"$top": "1"}).status_code == 200


def test_accounts_filter_is_mandatory(exact_api):
    resp = exact_api.get(f"{DIVISION}/crm/Accounts", **{"$select": "ID"})
    assert resp.status_code == 400
    value = resp.json()["error"]["message"]["value"]
    assert value.startswith("This endpoint has mandatory filtering applied. A GET request for "
                            "this endpoint must have a $filter parameter with one of the "
                            "following fields in the url: Accountant,AccountManager,")
    # A filter on a field outside the list does not count.
    resp = exact_api.get(f"{DIVISION}/crm/Accounts", **{"$filter": "Blocked eq false"})
    assert resp.status_code == 400


def test_unsupported_filter_fields(exact_api):
    resp = exact_api.get(f"{DIVISION}/sync/CRM/Accounts",
                         **{"$select": "ID", "$filter": "Name eq 'x'"})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]["value"].startswith(
        "This $filter parameter is not supported for this resource")
    resp = exact_api.get(f"{DIVISION}/bulk/Cashflow/Receivables",
                         **{"$select": "ID", "$filter": "IsFullyPaid eq false"})
    assert resp.status_code == 400
    resp = exact_api.get(f"{DIVISION}/bulk/Cashflow/Receivables",
                         **{"$select": "ID", "$filter": "Status eq 20"})
    assert resp.status_code == 200


def test_unknown_field_and_unknown_option(exact_api):
    resp = exact_api.get(f"{DIVISION}/cashflow/Receivables", **{"$select": "Bogus"})
    assert resp.status_code == 400
    resp = exact_api.get(f"{DIVISION}/cashflow/Receivables", **{"$count": "true"})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]["value"] == (
        "The query parameter '$count' begins with a system-reserved '$' character but is "
        "not recognized.")


def test_entity_by_key_envelope_and_encodings(exact_api, exact_simulator):
    account = exact_simulator.seed_account(DIVISION, name="Acme", code="1068")
    resp = exact_api.get(f"{DIVISION}/crm/Accounts(guid'{account['ID']}')")
    assert resp.status_code == 200
    d = resp.json()["d"]
    assert "results" not in d
    assert d["Code"] == "              1068" and len(d["Code"]) == 18
    uri = f"/api/v1/{DIVISION}/crm/Accounts(guid'{account['ID']}')"
    assert d["__metadata"]["uri"].endswith(uri)
    assert d["Created"].startswith("/Date(") and d["Created"].endswith(")/")
    # The padded code is what a filter must use.
    found = exact_api.get(f"{DIVISION}/crm/Accounts", **{
        "$filter": "Code eq '              1068'", "$select": "ID"}).json()["d"]["results"]
    assert [r["ID"] for r in found] == [account["ID"]]
    missing = exact_api.get(f"{DIVISION}/crm/Accounts(guid'{'0' * 8}-0000-0000-0000-{'0' * 12}')")
    assert missing.status_code == 404


def test_amounts_are_numbers_and_dates_are_epoch_ms(exact_api, exact_simulator):
    account = exact_simulator.seed_account(DIVISION, name="Acme")
    exact_simulator.seed_invoice(DIVISION, account=account["ID"], amount="123.45",
                                 due_date="2025-09-01")
    row = exact_api.get(f"{DIVISION}/salesinvoice/SalesInvoices").json()["d"]["results"][0]
    assert row["AmountFC"] == 123.45
    assert row["DueDate"] == "/Date(1756684800000)/"


def test_me_and_divisions(exact_api, exact_simulator):
    me = exact_api.get("current/Me").json()["d"]["results"]
    assert len(me) == 1 and me[0]["CurrentDivision"] == DIVISION
    exact_simulator.seed_division(division=200)
    codes = [d["Code"] for d in
             exact_api.get(f"{DIVISION}/system/Divisions").json()["d"]["results"]]
    assert codes == [200, DIVISION]
    # Exact does not validate the division in this URL.
    assert exact_api.get("999/system/Divisions").status_code == 200


def test_unknown_division_and_unknown_resource(exact_api):
    assert exact_api.get("999/financial/Journals").status_code == 403
    assert exact_api.get(f"{DIVISION}/crm/Nothing").status_code == 404
