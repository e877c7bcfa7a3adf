"""Sync endpoints: rowversion Timestamps that grow on every change, incremental reads with
``Timestamp gt <n>L``, and sync/Deleted (API-NOTES §5.8)."""

import pytest

from tests.plugins.exact_sim import DIVISION


@pytest.fixture
def seeded(exact_simulator, exact_division):
    account = exact_simulator.seed_account(DIVISION, name="Acme")
    invoice = exact_simulator.seed_invoice(DIVISION, account=account["ID"], amount=50,
                                           number=7001)
    return account, invoice


def sync(api, path, since, select):
    resp = api.get(f"{DIVISION}/{path}", **{"$filter": f"Timestamp gt {since}L",
                                            "$select": select})
    assert resp.status_code == 200, resp.text
    return resp.json()["d"]["results"]


def test_incremental_accounts_sync(exact_api, exact_simulator, seeded):
    account, _ = seeded
    rows = sync(exact_api, "sync/CRM/Accounts", 1, "ID,Name,Timestamp")
    assert [r["ID"] for r in rows] == [account["ID"]]
    high = max(r["Timestamp"] for r in rows)
    assert isinstance(high, int)
    assert sync(exact_api, "sync/CRM/Accounts", high, "ID,Timestamp") == []

    exact_simulator.update_account(DIVISION, account["ID"], name="Acme Holding")
    changed = sync(exact_api, "sync/CRM/Accounts", high, "ID,Name,Timestamp")
    assert [(r["ID"], r["Name"]) for r in changed] == [(account["ID"], "Acme Holding")]
    assert changed[0]["Timestamp"] > high


def test_api_put_also_bumps_timestamp(exact_api, seeded):
    account, _ = seeded
    (row,) = sync(exact_api, "sync/CRM/Accounts", 1, "ID,Timestamp")
    exact_api.put(f"{DIVISION}/crm/Accounts(guid'{account['ID']}')", {"Blocked": True})
    (after,) = sync(exact_api, "sync/CRM/Accounts", row["Timestamp"], "ID,Blocked,Timestamp")
    assert after["Blocked"] is True


def test_sync_rows_come_in_timestamp_order(exact_api, exact_simulator, exact_division):
    ids = [exact_simulator.seed_account(DIVISION, name=f"A{i}")["ID"] for i in range(5)]
    exact_simulator.update_account(DIVISION, ids[0], name="changed")
    rows = sync(exact_api, "sync/CRM/Accounts", 1, "ID,Timestamp")
    assert [r["ID"] for r in rows] == ids[1:] + ids[:1]
    stamps = [r["Timestamp"] for r in rows]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5


def test_payment_terms_change_when_paid(exact_api, exact_simulator, exact_division, seeded):
    account, _ = seeded
    (term,) = sync(exact_api, "sync/Cashflow/PaymentTerms", 1,
                   "ID,InvoiceNumber,IsFullyPaid,Status,AmountDC,Timestamp")
    assert (term["IsFullyPaid"], term["Status"], term["AmountDC"]) == (False, 20, 50.0)
    exact_api.post(f"{DIVISION}/financialtransaction/BankEntries", {
        "JournalCode": "21", "BankEntryLines": [{
            "Account": account["ID"], "GLAccount": exact_division["gl_accounts"]["1300"],
            "AmountFC": 50, "OurRef": 7001}]})
    (paid,) = sync(exact_api, "sync/Cashflow/PaymentTerms", term["Timestamp"],
                   "ID,IsFullyPaid,Status,AmountDC,Timestamp")
    assert (paid["ID"], paid["IsFullyPaid"], paid["Status"]) == (term["ID"], True, 50)
    # The invoice itself did not change, so the invoice sync has nothing new.
    (inv,) = sync(exact_api, "sync/SalesInvoice/SalesInvoices", 1, "InvoiceID,Timestamp")
    assert sync(exact_api, "sync/SalesInvoice/SalesInvoices", inv["Timestamp"],
                "InvoiceID") == []


def test_sync_invoice_header_has_line_number_zero(exact_api, seeded):
    (row,) = sync(exact_api, "sync/SalesInvoice/SalesInvoices", 1,
                  "InvoiceID,InvoiceNumber,LineNumber,AmountDC")
    assert (row["InvoiceNumber"], row["LineNumber"], row["AmountDC"]) == (7001, 0, 50.0)


def test_deletes_are_recorded_with_entity_types(exact_api, exact_simulator, seeded):
    account, invoice = seeded
    high = max(r["Timestamp"] for r in sync(exact_api, "sync/CRM/Accounts", 1, "Timestamp"))
    exact_simulator.delete_invoice(DIVISION, invoice["InvoiceID"])
    exact_simulator.delete_account(DIVISION, account["ID"])
    rows = sync(exact_api, "sync/Deleted", high, "EntityKey,EntityType,Timestamp,DeletedDate")
    assert [(r["EntityType"], r["EntityKey"]) for r in rows] == [
        (13, invoice["InvoiceID"]), (10, invoice["TermID"]), (2, account["ID"])]
    assert sync(exact_api, "sync/CRM/Accounts", 1, "ID") == []
    assert sync(exact_api, "sync/Deleted", rows[-1]["Timestamp"], "EntityKey") == []


def test_deleted_records_are_kept_two_months(exact_api, exact_simulator, seeded):
    _, invoice = seeded
    exact_simulator.delete_invoice(DIVISION, invoice["InvoiceID"])
    exact_simulator.advance(60 * 86400)
    exact_api.connect()  # the access token died long ago
    assert len(sync(exact_api, "sync/Deleted", 1, "EntityKey")) == 2
    exact_simulator.advance(2 * 86400)
    exact_api.connect()
    assert sync(exact_api, "sync/Deleted", 1, "EntityKey") == []


def test_account_with_invoices_cannot_be_deleted(exact_simulator, seeded):
    account, _ = seeded
    with pytest.raises(ValueError, match="has invoices"):
        exact_simulator.delete_account(DIVISION, account["ID"])


def test_invoice_amount_change_moves_open_item(exact_api, exact_simulator, seeded):
    _, invoice = seeded
    changed = exact_simulator.update_invoice(DIVISION, invoice["InvoiceID"], amount=80,
                                             due_date="2026-01-31")
    assert changed["Open"] == "80.00" and changed["DueDate"] == "2026-01-31"
    assert changed["Timestamp"] > invoice["Timestamp"]
