"""Posting bank and general journal entries and their effect on open items
(API-NOTES §5, §6; sign conventions are the simulator's documented choices)."""

import pytest

from tests.plugins.exact_sim import DIVISION

BANK = f"{DIVISION}/financialtransaction/BankEntries"
GENERAL = f"{DIVISION}/generaljournalentry/GeneralJournalEntries"


@pytest.fixture
def world(exact_simulator, exact_division):
    account = exact_simulator.seed_account(DIVISION, name="Acme B.V.")
    invoice = exact_simulator.seed_invoice(DIVISION, account=account["ID"], amount="100.00",
                                           number=250123)
    gl = exact_division["gl_accounts"]
    return {"account": account["ID"], "invoice": invoice, "ar": gl["1300"], "fees": gl["4600"],
            "bank": gl["1100"]}


def receipt(world, amount, *, journal="21", our_ref=250123, description="GC PM0123"):
    return {"JournalCode": journal, "Currency": "EUR", "BankEntryLines": [
        {"Date": "2025-03-14", "Account": world["account"], "GLAccount": world["ar"],
         "AmountFC": amount, "OurRef": our_ref, "Description": description,
         "Notes": "gocardless:PM0123"}]}


def open_amount(sim):
    return sim.invoice(DIVISION, number=250123)["Open"]


def receivable(api):
    rows = api.get(f"{DIVISION}/cashflow/Receivables", **{
        "$filter": "InvoiceNumber eq 250123",
        "$select": "AmountDC,IsFullyPaid,Status,LastPaymentDate"}).json()["d"]["results"]
    return rows[0]


def test_post_returns_201_with_entity(exact_api, world):
    resp = exact_api.post(BANK, receipt(world, 40))
    assert resp.status_code == 201
    d = resp.json()["d"]
    assert d["JournalCode"] == "21" and d["EntryID"]
    assert d["BankEntryLines"]["results"][0]["AmountFC"] == 40.0


def test_partial_then_full_payment(exact_api, exact_simulator, world):
    exact_api.post(BANK, receipt(world, 40))
    assert open_amount(exact_simulator) == "60.00"
    row = receivable(exact_api)
    assert row["AmountDC"] == 60.0 and row["IsFullyPaid"] is False and row["Status"] == 20
    listed = exact_api.get(f"{DIVISION}/read/financial/ReceivablesList").json()["d"]["results"]
    assert [r["Amount"] for r in listed] == [60.0]

    exact_api.post(BANK, receipt(world, 60))
    row = receivable(exact_api)
    assert row["AmountDC"] == 0.0 and row["IsFullyPaid"] is True and row["Status"] == 50
    assert row["LastPaymentDate"] == "/Date(1741910400000)/"  # 2025-03-14
    listed = exact_api.get(f"{DIVISION}/read/financial/ReceivablesList").json()["d"]["results"]
    assert listed == []


def test_reversal_line_reopens(exact_api, exact_simulator, world):
    exact_api.post(BANK, receipt(world, 100))
    assert receivable(exact_api)["IsFullyPaid"] is True
    exact_api.post(BANK, receipt(world, -100, description="GC PM0123 failed"))
    assert open_amount(exact_simulator) == "100.00"
    assert receivable(exact_api)["Status"] == 20


def test_general_journal_is_debit_positive(exact_api, exact_simulator, world):
    body = {"JournalCode": "90", "GeneralJournalEntryLines": [
        {"GLAccount": world["ar"], "Account": world["account"], "OurRef": 250123,
         "AmountFC": -25, "Description": "receipt via memorial"},
        {"GLAccount": world["bank"], "AmountFC": 25}]}
    assert exact_api.post(GENERAL, body).status_code == 201
    assert open_amount(exact_simulator) == "75.00"


def test_line_settles_only_matching_account_and_receivables_gl(exact_api, exact_simulator,
                                                                world):
    other = exact_simulator.seed_account(DIVISION, name="Other")
    body = receipt(world, 10)
    body["BankEntryLines"][0]["Account"] = other["ID"]
    exact_api.post(BANK, body)
    body = receipt(world, 10)
    body["BankEntryLines"][0]["GLAccount"] = world["fees"]
    exact_api.post(BANK, body)
    exact_api.post(BANK, receipt(world, 10, our_ref=999))
    assert open_amount(exact_simulator) == "100.00"
    assert len(exact_simulator.ledger(DIVISION)) == 3


def test_credit_note_is_negative_and_settled_by_payout(exact_api, exact_simulator, world):
    note = exact_simulator.seed_credit_note(DIVISION, account=world["account"], amount=30,
                                            number=250124)
    assert note["AmountFC"] == "-30.00" and note["Type"] == 8021
    exact_api.post(BANK, receipt(world, -30, our_ref=250124))
    assert exact_simulator.invoice(DIVISION, number=250124)["IsFullyPaid"] is True


@pytest.mark.parametrize("change, status, message", [
    ({"JournalCode": None}, 400, "Mandatory: JournalCode"),
    ({"JournalCode": "77"}, 500, "Invalid journal: 77"),
    ({"JournalCode": "90"}, 500, "Invalid journal. The journal must be a bank journal."),
    ({"BankEntryLines": []}, 400, "Mandatory: BankEntryLines"),
])
def test_bank_entry_header_validation(exact_api, world, change, status, message):
    body = {**receipt(world, 10), **change}
    resp = exact_api.post(BANK, body)
    assert resp.status_code == status
    assert resp.json()["error"]["message"]["value"] == message


@pytest.mark.parametrize("line_change, status, message", [
    ({"GLAccount": None}, 400, "Mandatory: GLAccount"),
    ({"GLAccount": "00000000-0000-0000-0000-000000000000"}, 500,
     "Invalid G/L account: 00000000-0000-0000-0000-000000000000"),
    ({"AmountFC": None}, 400, "Mandatory: AmountFC"),
    ({"Account": "00000000-0000-0000-0000-000000000001"}, 500,
     "Invalid account: 00000000-0000-0000-0000-000000000001"),
    ({"OurRef": "INV-1"}, 400, "Cannot convert 'INV-1' to Edm.Int32 (OurRef)."),
])
def test_bank_entry_line_validation_changes_nothing(exact_api, exact_simulator, world,
                                                    line_change, status, message):
    body = receipt(world, 10)
    body["BankEntryLines"][0].update(line_change)
    resp = exact_api.post(BANK, body)
    assert resp.status_code == status
    assert resp.json()["error"]["message"]["value"] == message
    assert exact_simulator.ledger(DIVISION) == []
    assert open_amount(exact_simulator) == "100.00"


def test_general_journal_needs_general_journal(exact_api, world):
    body = {"JournalCode": "21", "GeneralJournalEntryLines": [{"GLAccount": world["ar"]}]}
    resp = exact_api.post(GENERAL, body)
    assert resp.status_code == 500
    assert resp.json()["error"]["message"]["value"] == (
        "Invalid journal. The journal must be a general journal.")


def test_lookup_entry_by_reference_on_lines(exact_api, world):
    entry_id = exact_api.post(BANK, receipt(world, 10)).json()["d"]["EntryID"]
    lines = exact_api.get(f"{DIVISION}/financialtransaction/BankEntryLines", **{
        "$filter": "Notes eq 'gocardless:PM0123'",
        "$select": "EntryID,AmountFC,OurRef"}).json()["d"]["results"]
    assert [(ln["EntryID"], ln["OurRef"]) for ln in lines] == [(entry_id, 250123)]
    header = exact_api.get(f"{DIVISION}/financialtransaction/BankEntries(guid'{entry_id}')",
                           **{"$select": "EntryID,BankEntryLines",
                              "$expand": "BankEntryLines"}).json()["d"]
    assert header["BankEntryLines"]["results"][0]["Description"] == "GC PM0123"
    deferred = exact_api.get(f"{DIVISION}/financialtransaction/BankEntries", **{
        "$filter": f"EntryID eq guid'{entry_id}'",
        "$select": "EntryID,BankEntryLines"}).json()["d"]["results"][0]
    assert "__deferred" in deferred["BankEntryLines"]


def test_general_journal_lines_require_select(exact_api, world):
    path = f"{DIVISION}/generaljournalentry/GeneralJournalEntryLines"
    assert exact_api.get(path).status_code == 400
    assert exact_api.get(path, **{"$select": "ID,Description"}).status_code == 200


def test_ledger_control_view(exact_api, exact_simulator, world):
    exact_api.post(BANK, receipt(world, 40))
    (entry,) = exact_simulator.ledger(DIVISION)
    assert entry["Type"] == "BankEntry" and entry["JournalCode"] == "21"
    (line,) = entry["Lines"]
    assert line["AppliedInvoice"] == world["invoice"]["InvoiceID"]
    assert line["AppliedAmount"] == "40.00" and line["GLAccountCode"] == "1300"


def test_journals_and_gl_accounts(exact_api):
    journals = exact_api.get(f"{DIVISION}/financial/Journals",
                             **{"$select": "Code,Type"}).json()["d"]["results"]
    assert {j["Code"]: j["Type"] for j in journals} == {
        "10": 10, "20": 12, "21": 12, "70": 20, "90": 90}
    gls = exact_api.get(f"{DIVISION}/financial/GLAccounts",
                        **{"$filter": "Type eq 20"}).json()["d"]["results"]
    assert [g["Code"] for g in gls] == ["1300"]


def test_mandates_post_get_put(exact_api, exact_simulator, world):
    path = f"{DIVISION}/cashflow/DirectDebitMandates"
    bank_account = exact_simulator.seed_bank_account(
        DIVISION, world["account"], "NL91ABNA0417164300")["ID"]
    resp = exact_api.post(path, {"Account": world["account"], "BankAccount": bank_account,
                                 "Reference": "MD0001", "SignatureDate": "2025-03-01"})
    assert resp.status_code == 201
    mandate = resp.json()["d"]
    assert mandate["BankAccount"] == bank_account
    assert exact_api.post(path, {"Account": world["account"], "BankAccount": bank_account,
                                 "Reference": "MD0001"}).status_code == 400
    assert exact_api.post(path, {"Account": world["account"]}).status_code == 400
    put = exact_api.put(f"{path}(guid'{mandate['ID']}')",
                        {"CancellationDate": "2025-04-01T00:00"})
    assert put.status_code == 204 and put.content == b""
    rows = exact_api.get(path, **{"$select": "Reference,CancellationDate"}).json()["d"]["results"]
    assert rows[0]["Reference"] == "MD0001"
    assert rows[0]["CancellationDate"] == "/Date(1743465600000)/"


def test_account_put_changes_payment_condition(exact_api, exact_simulator, world):
    path = f"{DIVISION}/crm/Accounts(guid'{world['account']}')"
    before = exact_api.get(path, **{"$select": "PaymentConditionSales"}).json()["d"]
    resp = exact_api.put(path, {"PaymentConditionSales": "DD"})
    assert resp.status_code == 204 and resp.content == b""
    after = exact_api.get(path, **{"$select": "PaymentConditionSales"}).json()["d"]
    assert (before["PaymentConditionSales"], after["PaymentConditionSales"]) == ("30", "DD")
    assert exact_api.put(path, {"Nonsense": 1}).status_code == 400
    assert exact_api.post(f"{DIVISION}/crm/Accounts", {"Name": "x"}).status_code == 405


def test_clearing_model_accounts_and_vat_in_the_ledger(exact_api, exact_simulator, exact_division,
                                                       world):
    gl = exact_division["gl_accounts"]
    assert {"1190", "2390"} <= set(gl)  # in transit (kruisposten), suspense (vraagposten)
    body = {"JournalCode": "21", "Currency": "EUR", "BankEntryLines": [
        {"Date": "2025-03-14", "GLAccount": world["fees"], "AmountFC": -1.69,
         "AmountVATFC": -0.28, "VATCode": "VN", "Notes": "MLC-1"},
        {"Date": "2025-03-14", "GLAccount": gl["1190"], "AmountFC": -98.31, "Notes": "MLC-1"}]}
    assert exact_api.post(BANK, body).status_code == 201
    (entry,) = exact_simulator.ledger(DIVISION)
    fee, transfer = entry["Lines"]
    assert (fee["AmountFC"], fee["AmountVATFC"], fee["VATCode"]) == ("-1.69", "-0.28", "VN")
    assert transfer["GLAccountCode"] == "1190" and transfer["AmountVATFC"] is None
    # The reference in Notes finds the entry through its lines.
    rows = exact_api.get(f"{DIVISION}/financialtransaction/BankEntryLines", **{
        "$filter": "Notes eq 'MLC-1'", "$select": "EntryID"}).json()["d"]["results"]
    assert {r["EntryID"] for r in rows} == {entry["EntryID"]}
