"""crm/BankAccounts (API-NOTES §5.5): seeding, GET with $filter/$select, POST, the Main flag,
and the check that a DirectDebitMandate's BankAccount is a bank account of its own account."""

import json

import pytest
import requests

from simulators.exact_online.models import DELETED_BANK_ACCOUNT
from tests.plugins.exact_sim import DIVISION

BANK_ACCOUNTS = f"{DIVISION}/crm/BankAccounts"
MANDATES = f"{DIVISION}/cashflow/DirectDebitMandates"
ACME_IBAN = "NL91ABNA0417164300"
BETA_IBAN = "NL02RABO0123456789"


@pytest.fixture
def accounts(exact_simulator, exact_division):
    acme = exact_simulator.seed_account(DIVISION, name="Acme B.V.", iban="nl91 abna 0417 1643 00",
                                        bic="ABNANL2A")
    beta = exact_simulator.seed_account(DIVISION, name="Beta B.V.", iban=BETA_IBAN,
                                        holder_name="Beta Holding")
    bare = exact_simulator.seed_account(DIVISION, name="No Bank Account")
    return {"acme": acme, "beta": beta, "bare": bare}


def rows(api, **params):
    resp = api.get(BANK_ACCOUNTS, **params)
    assert resp.status_code == 200, resp.text
    return resp.json()["d"]["results"]


def of_account(api, account_id, select="ID,BankAccount,Main"):
    return rows(api, **{"$filter": f"Account eq guid'{account_id}'", "$select": select})


def test_seed_account_with_iban_gets_a_main_bank_account(exact_api, accounts):
    acme = accounts["acme"]
    (seeded,) = acme["BankAccounts"]
    assert seeded["BankAccount"] == ACME_IBAN  # spaces gone, upper case
    assert (seeded["Main"], seeded["Type"], seeded["BICCode"]) == (True, "A", "ABNANL2A")
    assert seeded["BankAccountHolderName"] == "Acme B.V."  # the account's name by default
    assert accounts["beta"]["BankAccounts"][0]["BankAccountHolderName"] == "Beta Holding"
    assert accounts["bare"]["BankAccounts"] == []

    (row,) = of_account(exact_api, acme["ID"], select="ID,Account,AccountName,BankAccount,"
                                                      "BICCode,Main,Type,TypeDescription,Blocked")
    assert {k: v for k, v in row.items() if k != "__metadata"} == {
        "ID": seeded["ID"], "Account": acme["ID"], "AccountName": "Acme B.V.",
        "BankAccount": ACME_IBAN, "BICCode": "ABNANL2A", "Main": True, "Type": "A",
        "TypeDescription": "Account", "Blocked": False}
    assert row["__metadata"]["type"] == "Exact.Web.Api.Models.BankAccount"
    assert of_account(exact_api, accounts["bare"]["ID"]) == []


def test_list_filter_and_select(exact_api, accounts):
    everything = rows(exact_api)
    assert sorted(r["BankAccount"] for r in everything) == sorted([ACME_IBAN, BETA_IBAN])
    assert {"ID", "Account", "BankAccountHolderName", "Created", "Modified",
            "Division"} <= set(everything[0])
    (beta,) = rows(exact_api, **{"$filter": f"BankAccount eq '{BETA_IBAN}'",
                                 "$select": "Account,BankAccountHolderName"})
    assert set(beta) == {"__metadata", "Account", "BankAccountHolderName"}
    assert beta["Account"] == accounts["beta"]["ID"]
    assert rows(exact_api, **{"$filter": "Main eq false"}) == []
    assert exact_api.get(BANK_ACCOUNTS, **{"$select": "Nonsense"}).status_code == 400


def test_get_by_key(exact_api, accounts):
    bank_account = accounts["acme"]["BankAccounts"][0]["ID"]
    resp = exact_api.get(f"{BANK_ACCOUNTS}(guid'{bank_account}')", **{"$select": "BankAccount"})
    assert resp.status_code == 200
    assert resp.json()["d"]["BankAccount"] == ACME_IBAN
    missing = exact_api.get(f"{BANK_ACCOUNTS}(guid'11111111-2222-4333-8444-555555555555')")
    assert missing.status_code == 404


def test_post_creates_a_bank_account(exact_api, accounts):
    bare = accounts["bare"]["ID"]
    resp = exact_api.post(BANK_ACCOUNTS, {
        "Account": bare, "BankAccount": "DE89 3704 0044 0532 0130 00", "BICCode": "COBADEFFXXX",
        "BankAccountHolderName": "Bare GmbH", "Description": "Hausbank", "Type": "K"})
    assert resp.status_code == 201, resp.text
    d = resp.json()["d"]
    assert (d["Account"], d["BankAccount"], d["BICCode"]) == (
        bare, "DE89370400440532013000", "COBADEFFXXX")
    assert (d["BankAccountHolderName"], d["Description"]) == ("Bare GmbH", "Hausbank")
    assert d["Type"] == "A"  # read-only: the API creates account bank accounts only
    assert [r["ID"] for r in of_account(exact_api, bare)] == [d["ID"]]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"BankAccount": "NL91ABNA0417164300"}, 400, "Mandatory: Account"),
    ({"Account": "ACCOUNT"}, 400, "Mandatory: BankAccount"),
    ({"Account": "ACCOUNT", "BankAccount": "   "}, 400, "a bank account needs its number"),
    ({"Account": "not-a-guid", "BankAccount": "NL91ABNA0417164300"}, 400, "Edm.Guid"),
    ({"Account": "11111111-2222-4333-8444-555555555555", "BankAccount": "NL91ABNA0417164300"},
     500, "Invalid account"),
])
def test_post_refusals(exact_api, accounts, body, status, message):
    body = {k: accounts["bare"]["ID"] if v == "ACCOUNT" else v for k, v in body.items()}
    resp = exact_api.post(BANK_ACCOUNTS, body)
    assert resp.status_code == status
    assert message in resp.json()["error"]["message"]["value"]
    assert of_account(exact_api, accounts["bare"]["ID"]) == []


def test_the_first_bank_account_is_main_and_main_can_move(exact_api, accounts):
    bare = accounts["bare"]["ID"]
    first = exact_api.post(BANK_ACCOUNTS, {"Account": bare, "BankAccount": "NL18RABO0123459876",
                                           "Main": False}).json()["d"]
    assert first["Main"] is True  # an account's first bank account is its main one
    second = exact_api.post(BANK_ACCOUNTS, {"Account": bare,
                                            "BankAccount": "NL44INGB0001234567"}).json()["d"]
    assert second["Main"] is False
    assert {r["ID"]: r["Main"] for r in of_account(exact_api, bare)} == {
        first["ID"]: True, second["ID"]: False}
    third = exact_api.post(BANK_ACCOUNTS, {"Account": bare, "BankAccount": "NL20INGB0007654321",
                                           "Main": True}).json()["d"]
    assert {r["ID"]: r["Main"] for r in of_account(exact_api, bare)} == {
        first["ID"]: False, second["ID"]: False, third["ID"]: True}
    # Other accounts keep their own main bank account.
    assert of_account(exact_api, accounts["acme"]["ID"])[0]["Main"] is True


def test_put_and_delete_are_not_served(exact_api, accounts):
    bank_account = accounts["acme"]["BankAccounts"][0]["ID"]
    path = f"{BANK_ACCOUNTS}(guid'{bank_account}')"
    assert exact_api.put(path, {"BICCode": "X"}).status_code == 405
    assert exact_api.delete(path).status_code == 405


def test_deleting_the_account_deletes_its_bank_accounts(exact_api, exact_simulator, accounts):
    bank_account = exact_simulator.seed_bank_account(DIVISION, accounts["bare"]["ID"],
                                                     "NL18RABO0123459876")["ID"]
    exact_simulator.delete_account(DIVISION, accounts["bare"]["ID"])
    assert exact_api.get(f"{BANK_ACCOUNTS}(guid'{bank_account}')").status_code == 404
    deleted = exact_api.get(f"{DIVISION}/sync/Deleted", **{
        "$filter": "Timestamp gt 1L", "$select": "EntityKey,EntityType"}).json()["d"]["results"]
    assert {"EntityKey": bank_account, "EntityType": DELETED_BANK_ACCOUNT} in [
        {k: r[k] for k in ("EntityKey", "EntityType")} for r in deleted]


def test_control_api_over_http(exact_simulator, exact_division):
    url = f"{exact_simulator.url}/_control"
    account = requests.post(f"{url}/seed_account", timeout=5, json={
        "division": DIVISION, "name": "Http B.V.", "iban": ACME_IBAN}).json()
    assert account["BankAccounts"][0]["Main"] is True
    second = requests.get(f"{url}/seed_bank_account", timeout=5, params={
        "division": DIVISION, "account": account["ID"], "iban": BETA_IBAN, "main": "true",
        "blocked": "false"})
    assert second.status_code == 200, second.text
    assert (second.json()["Main"], second.json()["Blocked"]) == (True, False)
    unknown = requests.post(f"{url}/seed_bank_account", timeout=5, json={
        "division": DIVISION, "account": "11111111-2222-4333-8444-555555555555",
        "iban": BETA_IBAN})
    assert unknown.status_code == 400 and "unknown account" in unknown.json()["error"]


# --- a mandate's BankAccount -----------------------------------------------------------------


def mandate(account_id, bank_account_id, reference="MD0001"):
    return {"Account": account_id, "BankAccount": bank_account_id, "Reference": reference}


def mandate_count(exact_simulator):
    return len(exact_simulator.state.division(DIVISION).mandates)


def test_mandate_with_the_accounts_own_bank_account(exact_api, accounts):
    acme = accounts["acme"]
    resp = exact_api.post(MANDATES, mandate(acme["ID"], acme["BankAccounts"][0]["ID"]))
    assert resp.status_code == 201
    assert resp.json()["d"]["BankAccount"] == acme["BankAccounts"][0]["ID"]


def test_mandate_refused_for_an_unknown_bank_account(exact_api, exact_simulator, accounts):
    unknown = "11111111-2222-4333-8444-555555555555"
    resp = exact_api.post(MANDATES, mandate(accounts["acme"]["ID"], unknown))
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]["value"] == (
        f"Invalid bank account: {unknown} is not a bank account (crm/BankAccounts) of this "
        "division.")
    assert exact_api.post(MANDATES, mandate(accounts["acme"]["ID"], "nope")).status_code == 400
    assert mandate_count(exact_simulator) == 0


def test_mandate_refused_for_another_accounts_bank_account(exact_api, exact_simulator, accounts):
    acme, beta = accounts["acme"], accounts["beta"]
    resp = exact_api.post(MANDATES, mandate(acme["ID"], beta["BankAccounts"][0]["ID"]))
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]["value"] == (
        f"Invalid bank account: {beta['BankAccounts'][0]['ID']} belongs to another account "
        f"than {acme['ID']}.")
    assert mandate_count(exact_simulator) == 0


def test_a_new_bank_account_notifies_the_bank_accounts_topic(
    exact_api, exact_simulator, exact_webhook_receiver, accounts
):
    subscribe = exact_api.post(f"{DIVISION}/webhooks/WebhookSubscriptions", {
        "CallbackURL": exact_webhook_receiver.url, "Topic": "BankAccounts"})
    assert subscribe.status_code == 201
    exact_simulator.deliver_webhooks()
    exact_webhook_receiver.requests.clear()
    created = exact_api.post(BANK_ACCOUNTS, {"Account": accounts["bare"]["ID"],
                                             "BankAccount": "NL18RABO0123459876"}).json()["d"]
    exact_simulator.seed_account(DIVISION, name="No bank account, no notification")
    assert exact_simulator.deliver_webhooks() == [(exact_webhook_receiver.url, 200)]
    (request,) = exact_webhook_receiver.requests
    content = json.loads(request["body"])["Content"]
    assert (content["Topic"], content["Action"], content["Key"]) == (
        "BankAccounts", "Create", created["ID"])
    assert content["ExactOnlineEndpoint"].endswith(
        f"/api/v1/{DIVISION}/crm/BankAccounts(guid'{created['ID']}')")
