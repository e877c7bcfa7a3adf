"""Billing requests for payments (docs/simulator-gocardless.md, "Billing requests for
payments"), driven through the official SDK: a ``payment_request`` alone is an instant bank
payment in GBP and EUR; with a ``mandate_request`` the payment is collected by Direct Debit on
the new mandate; completing the flow creates the payment with the payment request's metadata
and emits the documented events."""

from __future__ import annotations

import pytest
from gocardless_pro import errors as gc_errors

METADATA = {"mlc_attempt": "0b7c/1.0", "exact_invoice": "1001", "exact_account": "a1"}


def field_errors(excinfo) -> dict[str, str]:
    return {e["field"]: e["request_pointer"] for e in excinfo.value.errors}


def _request(sdk, **payment_request):
    body = {"amount": 12100, "currency": "EUR", "description": "Invoice 1001",
            "metadata": METADATA, **payment_request}
    return sdk.billing_requests.create(params={"payment_request": body, "metadata": METADATA})


def _flow(sdk, request_id):
    return sdk.billing_request_flows.create(params={
        "links": {"billing_request": request_id},
        "prefilled_customer": {"email": "payer@example.test", "company_name": "Payer BV"}})


@pytest.mark.parametrize(("currency", "scheme"),
                         [("EUR", "sepa_credit_transfer"), ("GBP", "faster_payments")])
def test_an_instant_payment_request_is_paid_when_the_flow_completes(
    gocardless_simulator, gocardless_sdk, currency, scheme
):
    sim = gocardless_simulator
    request = _request(gocardless_sdk, currency=currency)
    assert request.status == "pending"
    assert request.mandate_request.attributes is None
    assert request.payment_request.scheme == scheme
    assert request.payment_request.amount == 12100
    assert request.links.payment_request
    flow = _flow(gocardless_sdk, request.id)
    assert flow.authorisation_url.endswith(f"/flows/{flow.id}")

    payment = sim.complete_billing_request_flow(flow.id)
    assert payment["id"].startswith("PM")
    assert payment["metadata"] == METADATA
    assert payment["amount"] == 12100 and payment["currency"] == currency
    assert payment["status"] == "confirmed"  # instant: confirmed while the payer waits
    fulfilled = gocardless_sdk.billing_requests.get(request.id)
    assert fulfilled.status == "fulfilled"
    assert fulfilled.links.payment_request_payment == payment["id"]
    assert gocardless_sdk.payments.get(payment["id"]).metadata == METADATA

    events = [(e["resource_type"], e["action"]) for e in sim.events()]
    assert ("billing_requests", "fulfilled") in events
    assert events.index(("payments", "created")) < events.index(("payments", "confirmed"))
    fulfilled_event = next(e for e in sim.events() if e["action"] == "fulfilled")
    assert fulfilled_event["links"]["payment_request_payment"] == payment["id"]

    # Paid out on the next working day, like the other payments.
    sim.advance(days=4)
    assert gocardless_sdk.payments.get(payment["id"]).status == "paid_out"


def test_a_currency_without_instant_bank_pay_needs_a_mandate_request(gocardless_sdk):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        _request(gocardless_sdk, currency="SEK", amount=50000)
    assert field_errors(excinfo) == {"currency": "/billing_requests/payment_request/currency"}


def test_with_a_mandate_request_the_payment_is_a_direct_debit_on_the_new_mandate(
    gocardless_simulator, gocardless_sdk
):
    request = gocardless_sdk.billing_requests.create(params={
        "mandate_request": {"currency": "EUR"},
        "payment_request": {"amount": 5000, "currency": "EUR", "metadata": METADATA}})
    flow = _flow(gocardless_sdk, request.id)
    mandate = gocardless_simulator.complete_billing_request_flow(flow.id)
    assert mandate["id"].startswith("MD")
    fulfilled = gocardless_sdk.billing_requests.get(request.id)
    payment = gocardless_sdk.payments.get(fulfilled.links.payment_request_payment)
    assert payment.links.mandate == mandate["id"]
    assert payment.status == "pending_submission" and payment.metadata == METADATA


@pytest.mark.parametrize(
    ("payment_request", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": None}, "amount"),
        ({"currency": None}, "currency"),
        ({"colour": "red"}, "colour"),
        ({"metadata": {"a": "1", "b": "2", "c": "3", "d": "4"}}, "metadata"),
    ],
)
def test_payment_request_validation(gocardless_sdk, payment_request, field):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        _request(gocardless_sdk, **payment_request)
    assert field in field_errors(excinfo)


def test_the_mandate_request_currency_must_match(gocardless_sdk):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        gocardless_sdk.billing_requests.create(params={
            "mandate_request": {"currency": "GBP"},
            "payment_request": {"amount": 5000, "currency": "EUR"}})
    assert field_errors(excinfo) == {"currency": "/billing_requests/payment_request/currency"}


def test_the_hosted_page_takes_the_payment(gocardless_simulator, gocardless_sdk):
    import urllib.request

    request = _request(gocardless_sdk)
    flow = _flow(gocardless_sdk, request.id)
    with urllib.request.urlopen(flow.authorisation_url) as page:
        html = page.read().decode()
    assert "Pay EUR 121.00" in html and "iban" not in html
    data = b"email=payer%40example.test&company_name=Payer+BV"
    with urllib.request.urlopen(flow.authorisation_url, data=data) as page:
        assert "your payment is made" in page.read().decode()
    assert gocardless_sdk.billing_requests.get(request.id).status == "fulfilled"


def test_a_payment_can_be_failed_with_a_cause(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]
    payment = gocardless_sdk.payments.create(params={
        "amount": 5000, "currency": "EUR", "links": {"mandate": mandate}})
    failed = sim.fail_payment(payment.id, "mandate_cancelled")
    assert failed["status"] == "failed"
    event = [e for e in sim.events() if e["action"] == "failed"][-1]
    assert event["details"]["cause"] == "mandate_cancelled"
    assert event["details"]["will_attempt_retry"] is False


def test_the_control_api_completes_a_payment_flow_and_fails_a_payment(
    gocardless_simulator, gocardless_sdk
):
    import json
    import urllib.request

    def control(path, body):
        request = urllib.request.Request(
            f"{gocardless_simulator.url}/_control/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    request = _request(gocardless_sdk, currency="GBP")
    flow = _flow(gocardless_sdk, request.id)
    payment = control(f"billing_request_flows/{flow.id}/complete", {})["payments"]
    assert payment["status"] == "confirmed" and payment["metadata"] == METADATA

    mandate = gocardless_simulator.seed(mandates=[{"scheme": "bacs", "status": "active"}])
    direct_debit = gocardless_sdk.payments.create(params={
        "amount": 5000, "currency": "GBP", "links": {"mandate": mandate["mandates"][0]}})
    failed = control(f"payments/{direct_debit.id}/fail", {"cause": "bank_account_closed"})
    assert failed["payments"]["status"] == "failed"
