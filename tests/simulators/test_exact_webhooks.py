"""Webhook subscriptions, the empty validation POST, payload shape and the HashCode signature
(API-NOTES §7). The signature is checked here with hmac directly, as a receiver would."""

import hashlib
import hmac
import json
import re
import time

import pytest

from tests.plugins.exact_sim import DIVISION

SUBS = f"{DIVISION}/webhooks/WebhookSubscriptions"
BODY = re.compile(rb'\{"Content":(.*),"HashCode":"([0-9A-F]{64})"\}', re.S)


def verify(raw: bytes, secret: str) -> dict:
    """What our connector (and picqer) does: HMAC over the raw Content substring."""
    m = BODY.fullmatch(raw)
    assert m, raw
    expected = hmac.new(secret.encode(), m.group(1), hashlib.sha256).hexdigest().upper()
    assert hmac.compare_digest(expected, m.group(2).decode())
    return json.loads(m.group(1))


@pytest.fixture
def subscribed(exact_api, exact_simulator, exact_webhook_receiver):
    ids = {}
    for topic in ("Accounts", "SalesInvoices"):
        resp = exact_api.post(SUBS, {"CallbackURL": exact_webhook_receiver.url, "Topic": topic})
        assert resp.status_code == 201
        ids[topic] = resp.json()["d"]["ID"]
    exact_simulator.deliver_webhooks()
    exact_webhook_receiver.requests.clear()
    return ids


def test_subscription_is_validated_with_an_empty_post(exact_api, exact_simulator,
                                                      exact_webhook_receiver):
    resp = exact_api.post(SUBS, {"CallbackURL": exact_webhook_receiver.url, "Topic": "Accounts"})
    d = resp.json()["d"]
    assert (d["Topic"], d["CallbackURL"], d["Division"]) == (
        "Accounts", exact_webhook_receiver.url, DIVISION)
    assert d["ClientID"] == "sim-client-id"
    assert exact_webhook_receiver.requests == []  # nothing is sent until delivery
    assert exact_simulator.deliver_webhooks() == [(exact_webhook_receiver.url, 200)]
    (request,) = exact_webhook_receiver.requests
    assert request["body"] == b""
    assert request["headers"].get("Content-Length") == "0"


def test_account_change_notifies_with_valid_hashcode(exact_simulator, exact_webhook_receiver,
                                                     subscribed):
    account = exact_simulator.seed_account(DIVISION, name="Acme")
    exact_simulator.update_account(DIVISION, account["ID"], email="ar@acme.example")
    exact_simulator.delete_account(DIVISION, account["ID"])
    delivered = exact_simulator.deliver_webhooks()
    assert [status for _, status in delivered] == [200, 200, 200]
    contents = [verify(r["body"], "sim-webhook-secret") for r in exact_webhook_receiver.requests]
    assert [c["Action"] for c in contents] == ["Create", "Update", "Delete"]
    content = contents[0]
    assert list(content) == ["Topic", "ClientId", "Division", "Action", "Key",
                             "ExactOnlineEndpoint", "EventCreatedOn"]
    assert content["Topic"] == "Accounts" and content["Division"] == DIVISION
    assert content["Key"] == account["ID"]
    assert content["ExactOnlineEndpoint"] == (
        f"{exact_simulator.url}/api/v1/{DIVISION}/crm/Accounts(guid'{account['ID']}')")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", content["EventCreatedOn"])


def test_body_is_compact_and_slashes_unescaped(exact_simulator, exact_webhook_receiver,
                                               subscribed):
    exact_simulator.seed_account(DIVISION, name="Acme")
    exact_simulator.deliver_webhooks()
    raw = exact_webhook_receiver.requests[0]["body"]
    assert b'": ' not in raw and b", " not in raw
    assert b"http://" in raw and b"\\/" not in raw
    assert exact_webhook_receiver.requests[0]["headers"]["Content-Type"] == "application/json"


def test_signature_uses_webhook_secret_not_client_secret(exact_simulator,
                                                         exact_webhook_receiver, subscribed):
    exact_simulator.seed_account(DIVISION, name="Acme")
    exact_simulator.deliver_webhooks()
    raw = exact_webhook_receiver.requests[0]["body"]
    with pytest.raises(AssertionError):
        verify(raw, "sim-client-secret")
    m = BODY.fullmatch(raw)
    lower = hmac.new(b"sim-webhook-secret", m.group(1), hashlib.sha256).hexdigest()
    assert m.group(2).decode() == lower.upper() != lower


def test_invoice_and_api_writes_notify(exact_api, exact_simulator, exact_webhook_receiver,
                                       subscribed):
    account = exact_simulator.seed_account(DIVISION, name="Acme")
    invoice = exact_simulator.seed_invoice(DIVISION, account=account["ID"], amount=10)
    exact_api.put(f"{DIVISION}/crm/Accounts(guid'{account['ID']}')",
                  {"PaymentConditionSales": "DD"})
    exact_simulator.deliver_webhooks()
    seen = [(c["Topic"], c["Action"], c["Key"]) for c in
            (verify(r["body"], "sim-webhook-secret") for r in exact_webhook_receiver.requests)]
    assert seen == [("Accounts", "Create", account["ID"]),
                    ("SalesInvoices", "Create", invoice["InvoiceID"]),
                    ("Accounts", "Update", account["ID"])]


def test_only_subscribed_topics_and_divisions(exact_simulator, exact_webhook_receiver,
                                              subscribed):
    exact_simulator.seed_division(division=555)
    exact_simulator.seed_account(555, name="Elsewhere")
    assert exact_simulator.deliver_webhooks() == []


def test_list_and_delete_subscriptions(exact_api, exact_simulator, exact_webhook_receiver,
                                       subscribed):
    rows = exact_api.get(SUBS).json()["d"]["results"]
    assert {r["Topic"] for r in rows} == {"Accounts", "SalesInvoices"}
    resp = exact_api.delete(f"{SUBS}(guid'{subscribed['Accounts']}')")
    assert resp.status_code == 204 and resp.content == b""
    assert exact_api.delete(f"{SUBS}(guid'{subscribed['Accounts']}')").status_code == 404
    assert [r["Topic"] for r in exact_api.get(SUBS).json()["d"]["results"]] == ["SalesInvoices"]
    exact_simulator.seed_account(DIVISION, name="Acme")
    assert exact_simulator.deliver_webhooks() == []


def test_update_is_not_allowed_and_input_is_validated(exact_api, subscribed,
                                                      exact_webhook_receiver):
    resp = exact_api.put(f"{SUBS}(guid'{subscribed['Accounts']}')", {"Topic": "Items"})
    assert resp.status_code == 405
    assert exact_api.post(SUBS, {"CallbackURL": exact_webhook_receiver.url,
                                 "Topic": "Nope"}).status_code == 400
    assert exact_api.post(SUBS, {"Topic": "Accounts"}).status_code == 400


def test_failed_deliveries_are_logged(exact_api, exact_simulator, exact_webhook_receiver,
                                      subscribed):
    exact_webhook_receiver.status = 500
    exact_simulator.seed_account(DIVISION, name="Acme")
    assert [s for _, s in exact_simulator.deliver_webhooks()] == [500]
    log = exact_simulator.webhook_log()
    assert log[-1]["status"] == 500 and log[-1]["kind"] == "event"
    assert log[-1]["Action"] == "Create"


def test_unreachable_callback_is_logged_not_raised(exact_simulator):
    exact_simulator.seed_division(division=DIVISION)
    exact_simulator.webhooks.queue_validation("http://127.0.0.1:9/nothing")
    assert exact_simulator.deliver_webhooks() == [("http://127.0.0.1:9/nothing", None)]
    assert exact_simulator.webhook_log()[0]["error"]


def test_background_sender_delivers_without_being_asked(exact_simulator,
                                                        exact_webhook_receiver, subscribed):
    exact_simulator.settings(webhook_interval=0.02)
    exact_simulator.seed_account(DIVISION, name="Acme")
    deadline = time.monotonic() + 5
    while not exact_webhook_receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    exact_simulator.settings(webhook_interval=0)
    assert verify(exact_webhook_receiver.requests[0]["body"], "sim-webhook-secret")["Action"] == (
        "Create")
