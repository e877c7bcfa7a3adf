"""Headers, envelopes, status codes and error shapes of the GoCardless simulator."""

import requests

from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

HEADERS = {
    "Authorization": f"Bearer {SIM_ACCESS_TOKEN}",
    "GoCardless-Version": "2015-07-06",
    "Content-Type": "application/json",
}


def api(sim, method, path, *, headers=None, **kwargs):
    return requests.request(method, sim.url + path, headers={**HEADERS, **(headers or {})},
                            timeout=5, **kwargs)


def assert_error_shape(body, error_type, code):
    error = body["error"]
    assert set(error) == {"message", "documentation_url", "type", "request_id", "code", "errors"}
    assert error["type"] == error_type
    assert error["code"] == code
    assert error["documentation_url"].startswith("https://developer.gocardless.com/api-reference#")
    assert isinstance(error["errors"], list) and error["errors"]


def test_missing_or_wrong_token_is_401_invalid_api_usage(gocardless_simulator):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"},
                    {"Authorization": f"Token {SIM_ACCESS_TOKEN}"}):
        response = api(gocardless_simulator, "GET", "/payments", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert_error_shape(body, "invalid_api_usage", 401)
        assert body["error"]["errors"][0]["reason"] == "unauthorized"


def test_version_header_is_required(gocardless_simulator):
    response = requests.get(gocardless_simulator.url + "/payments", timeout=5,
                            headers={"Authorization": f"Bearer {SIM_ACCESS_TOKEN}"})
    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid_api_usage", 400)
    wrong = api(gocardless_simulator, "GET", "/payments",
                headers={"GoCardless-Version": "2014-01-01"})
    assert wrong.status_code == 400


def test_every_configured_token_works(gocardless_simulator):
    assert api(gocardless_simulator, "GET", "/creditors",
               headers={"Authorization": "Bearer sim-other-token"}).status_code == 200


def test_unknown_path_and_resource_are_404(gocardless_simulator):
    assert api(gocardless_simulator, "GET", "/nothing").status_code == 404
    response = api(gocardless_simulator, "GET", "/payments/PM000NOPE")
    assert response.status_code == 404
    assert_error_shape(response.json(), "invalid_api_usage", 404)
    assert response.json()["error"]["errors"][0]["reason"] == "resource_not_found"


def test_malformed_body_is_invalid_document_structure(gocardless_simulator):
    for data in ("not json", '{"customer": {}}', '{"customers": []}'):
        response = api(gocardless_simulator, "POST", "/customers", data=data)
        assert response.status_code == 400
        assert response.json()["error"]["errors"][0]["reason"] == "invalid_document_structure"


def test_create_is_201_in_envelope_and_update_accepts_only_metadata(gocardless_simulator):
    sim = gocardless_simulator
    mandate_id = sim.seed(mandates=[{"status": "active"}])["mandates"][0]
    created = api(sim, "POST", "/payments", json={"payments": {
        "amount": 1500, "currency": "GBP", "links": {"mandate": mandate_id}}})
    assert created.status_code == 201
    payment = created.json()["payments"]
    assert payment["id"].startswith("PM") and payment["amount"] == 1500
    assert payment["links"] == {"mandate": mandate_id, "creditor": "CR000SIM"}

    updated = api(sim, "PUT", f"/payments/{payment['id']}",
                  json={"payments": {"metadata": {"invoice": "INV-1"}}})
    assert updated.status_code == 200
    assert updated.json()["payments"]["metadata"] == {"invoice": "INV-1"}

    refused = api(sim, "PUT", f"/payments/{payment['id']}", json={"payments": {"amount": 1}})
    assert refused.status_code == 422
    assert refused.json()["error"]["errors"][0]["field"] == "amount"
    mandate_update = api(sim, "PUT", f"/mandates/{mandate_id}",
                         json={"mandates": {"scheme": "sepa_core"}})
    assert mandate_update.status_code == 422


def test_list_envelope_has_cursors_and_limit(gocardless_simulator):
    body = api(gocardless_simulator, "GET", "/customers").json()
    assert body == {"customers": [], "meta": {"cursors": {"before": None, "after": None},
                                              "limit": 50}}


def test_unknown_list_filter_is_rejected(gocardless_simulator):
    response = api(gocardless_simulator, "GET", "/payments", params={"invoice": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["field"] == "invoice"


def test_creditors_show_enabled_schemes(gocardless_sdk):
    creditors = gocardless_sdk.creditors.list().records
    assert [c.id for c in creditors] == ["CR000SIM"]
    creditor = gocardless_sdk.creditors.get("CR000SIM")
    assert {s["scheme"] for s in creditor.attributes["scheme_identifiers"]} == {
        "bacs", "sepa_core"}


def test_customers_create_get_update_list_with_sdk(gocardless_sdk):
    customer = gocardless_sdk.customers.create(params={
        "given_name": "Frank", "family_name": "Osborne", "email": "frank@example.test",
        "metadata": {"exact_account": "A1"}})
    assert customer.id.startswith("CU")
    gocardless_sdk.customers.update(customer.id, params={"email": "f2@example.test"})
    assert gocardless_sdk.customers.get(customer.id).email == "f2@example.test"
    assert [c.id for c in gocardless_sdk.customers.all()] == [customer.id]


def test_direct_mandate_creation_is_restricted_to_billing_requests(gocardless_simulator):
    response = api(gocardless_simulator, "POST", "/mandates", json={"mandates": {}})
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "invalid_api_usage"


def test_cancelling_a_mandate_cancels_its_pending_payments(gocardless_sdk, gocardless_simulator):
    sim = gocardless_simulator
    mandate_id = sim.seed(mandates=[{"status": "active"}])["mandates"][0]
    payment = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "links": {"mandate": mandate_id}})
    mandate = gocardless_sdk.mandates.cancel(mandate_id, params={"metadata": {"why": "test"}})
    assert mandate.status == "cancelled" and mandate.next_possible_charge_date is None
    assert gocardless_sdk.payments.get(payment.id).status == "cancelled"
    events = sim.events()
    mandate_event = next(e for e in events if e["action"] == "cancelled"
                         and e["resource_type"] == "mandates")
    assert mandate_event["details"]["origin"] == "api"
    assert mandate_event["metadata"] == {"why": "test"}
    payment_event = next(e for e in events if e["resource_type"] == "payments"
                         and e["action"] == "cancelled")
    assert payment_event["links"]["parent_event"] == mandate_event["id"]


def test_reinstate_only_inactive_mandates(gocardless_sdk, gocardless_simulator):
    import gocardless_pro.errors as gc_errors
    import pytest

    sim = gocardless_simulator
    mandate_id = sim.seed(mandates=[{"status": "active"}])["mandates"][0]
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        gocardless_sdk.mandates.reinstate(mandate_id)
    assert excinfo.value.errors[0]["reason"] == "mandate_not_inactive"
    gocardless_sdk.mandates.cancel(mandate_id)
    assert gocardless_sdk.mandates.reinstate(mandate_id).status == "pending_submission"
    sim.advance(days=7)
    assert gocardless_sdk.mandates.get(mandate_id).status == "active"
    actions = [e["action"] for e in sim.events() if e["links"].get("mandate") == mandate_id]
    assert actions[-3:] == ["resubmission_requested", "submitted", "reinstated"]
