"""Onboarding through a billing request flow, and what advancing the clock does."""

from datetime import date

import pytest
import requests
from gocardless_pro import errors as gc_errors
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.gocardless import SimClock, Simulator
from simulators.gocardless.errors import ApiError
from tests.plugins.gocardless_sim import SIM_START


def onboard(sdk, sim, currency="GBP", **flow_params):
    billing_request = sdk.billing_requests.create(params={
        "mandate_request": {"currency": currency, "verify": "recommended"},
        "metadata": {"exact_account": "2f1e"}})
    flow = sdk.billing_request_flows.create(params={
        "redirect_uri": "https://connector.example.test/landing",
        "exit_uri": "https://connector.example.test/exit",
        "prefilled_customer": {"given_name": "Frank", "family_name": "Osborne",
                               "email": "frank.osborne@acmeplc.com"},
        "links": {"billing_request": billing_request.id}, **flow_params})
    return billing_request, flow


def test_billing_request_flow_points_at_the_simulated_hosted_page(gocardless_sdk,
                                                                  gocardless_simulator):
    billing_request, flow = onboard(gocardless_sdk, gocardless_simulator)
    assert billing_request.status == "pending"
    assert billing_request.mandate_request.scheme == "bacs"
    assert billing_request.links.customer.startswith("CU")
    assert flow.authorisation_url == f"{gocardless_simulator.url}/flows/{flow.id}"
    assert flow.created_at == "2026-03-02T10:00:00.000Z"
    assert flow.expires_at == "2026-03-09T10:00:00.000Z"
    page = requests.get(flow.authorisation_url, timeout=5)
    assert page.status_code == 200 and "<form" in page.text and "Frank" in page.text


def test_completing_the_hosted_page_creates_customer_account_and_mandate(gocardless_sdk,
                                                                         gocardless_simulator):
    sim = gocardless_simulator
    billing_request, flow = onboard(gocardless_sdk, sim)
    bad = requests.post(flow.authorisation_url, data={"account_number": "12"}, timeout=5,
                        allow_redirects=False)
    assert bad.status_code == 422 and "account_number" in bad.text
    done = requests.post(flow.authorisation_url, timeout=5, allow_redirects=False, data={
        "account_holder_name": "Frank Osborne", "account_number": "55779911",
        "branch_code": "200000"})
    assert done.status_code == 303
    assert done.headers["Location"] == "https://connector.example.test/landing"

    fulfilled = gocardless_sdk.billing_requests.get(billing_request.id)
    assert fulfilled.status == "fulfilled"
    mandate = gocardless_sdk.mandates.get(fulfilled.links.mandate_request_mandate)
    assert (mandate.status, mandate.scheme) == ("pending_submission", "bacs")
    customer = gocardless_sdk.customers.get(mandate.links.customer)
    assert (customer.given_name, customer.email) == ("Frank", "frank.osborne@acmeplc.com")
    account = gocardless_sdk.customer_bank_accounts.get(mandate.links.customer_bank_account)
    assert (account.account_number_ending, account.currency) == ("11", "GBP")

    events = sim.events()
    created = next(e for e in events if e["resource_type"] == "mandates")
    assert created["action"] == "created" and created["links"] == {"mandate": mandate.id}
    fulfilled_event = events[-1]
    assert (fulfilled_event["resource_type"], fulfilled_event["action"]) == (
        "billing_requests", "fulfilled")
    assert fulfilled_event["links"]["mandate_request_mandate"] == mandate.id
    assert fulfilled_event["resource_metadata"] == {"exact_account": "2f1e"}
    assert requests.get(flow.authorisation_url, timeout=5).text.count("already set up") == 1

    sim.advance(days=1)
    assert gocardless_sdk.mandates.get(mandate.id).status == "submitted"
    sim.advance(days=2)
    assert gocardless_sdk.mandates.get(mandate.id).status == "active"
    actions = [(e["action"], e["details"]["cause"]) for e in sim.events()
               if e["links"].get("mandate") == mandate.id]
    assert actions == [("created", "mandate_created"), ("submitted", "mandate_submitted"),
                       ("active", "mandate_activated")]


def test_control_completion_for_euro_and_existing_customer(gocardless_sdk,
                                                           gocardless_simulator):
    sim = gocardless_simulator
    customer = gocardless_sdk.customers.create(params={
        "company_name": "Acme BV", "email": "ap@acme.test"})
    billing_request = gocardless_sdk.billing_requests.create(params={
        "mandate_request": {"currency": "EUR"}, "links": {"customer": customer.id}})
    flow = gocardless_sdk.billing_request_flows.create(params={
        "links": {"billing_request": billing_request.id}})
    with pytest.raises(ApiError) as excinfo:
        sim.complete_billing_request_flow(flow.id, iban="DE00 0000")
    assert excinfo.value.errors[0]["field"] == "iban"
    mandate = sim.complete_billing_request_flow(flow.id, iban="NL91ABNA0417164300")
    assert (mandate["scheme"], mandate["links"]["customer"]) == ("sepa_core", customer.id)


def test_flow_expires_after_seven_days(gocardless_sdk, gocardless_simulator):
    _, flow = onboard(gocardless_sdk, gocardless_simulator)
    gocardless_simulator.advance(days=7, seconds=1)
    assert requests.get(flow.authorisation_url, timeout=5).status_code == 410
    with pytest.raises(ApiError) as excinfo:
        gocardless_simulator.complete_billing_request_flow(flow.id)
    assert excinfo.value.errors[0]["reason"] == "billing_request_flow_expired"


def test_billing_request_validation(gocardless_sdk):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        gocardless_sdk.billing_requests.create(params={
            "mandate_request": {"currency": "GBP", "scheme": "sepa_core"}})
    assert excinfo.value.errors[0]["request_pointer"] == (
        "/billing_requests/mandate_request/currency")
    with pytest.raises(gc_errors.ValidationFailedError):  # ach is not enabled on this creditor
        gocardless_sdk.billing_requests.create(params={"mandate_request": {"currency": "USD"}})


def test_payment_lifecycle_payout_fees_and_vat(gocardless_sdk, gocardless_simulator):
    sim = gocardless_simulator
    mandates = sim.seed(mandates=[{"status": "active"}, {"status": "active"}])["mandates"]
    first = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "links": {"mandate": mandates[0]},
        "metadata": {"invoice": "INV-1"}})
    second = gocardless_sdk.payments.create(params={
        "amount": 100_000, "currency": "GBP", "links": {"mandate": mandates[1]}})
    assert first.charge_date == second.charge_date == "2026-03-05"

    timeline = {}
    for _ in range(8):
        sim.advance(days=1)
        timeline[sim.clock.today()] = gocardless_sdk.payments.get(first.id).status
    assert timeline[date(2026, 3, 3)] == "submitted"  # charge date - 2 working days
    assert timeline[date(2026, 3, 5)] == "submitted"
    assert timeline[date(2026, 3, 6)] == "confirmed"  # charge date + 1
    assert timeline[date(2026, 3, 9)] == "paid_out"  # charge date + 2 (weekend skipped)

    payout_id = gocardless_sdk.payments.get(first.id).links.payout
    assert gocardless_sdk.payments.get(second.id).links.payout == payout_id
    payout = gocardless_sdk.payouts.get(payout_id)
    # Fees: 1% + 20p capped at £4, plus 20% VAT: 30 + 6 and 400 + 80.
    assert payout.deducted_fees == 36 + 480
    assert payout.amount == 101_000 - 516
    assert (payout.status, payout.currency, payout.arrival_date) == ("paid", "GBP", "2026-03-10")

    items = list(gocardless_sdk.payout_items.all(params={"payout": payout_id}))
    assert all(isinstance(item.amount, str) and item.amount.endswith(".0") for item in items)
    assert sum(int(item.amount[:-2]) for item in items) == payout.amount
    assert [(i.type, i.amount) for i in items] == [
        ("payment_paid_out", "1000.0"), ("gocardless_fee", "-36.0"),
        ("payment_paid_out", "100000.0"), ("gocardless_fee", "-480.0")]
    assert items[1].taxes == [{"amount": "-6.0", "currency": "GBP", "destination_amount": "-6.0",
                               "destination_currency": "GBP", "exchange_rate": None,
                               "tax_rate_id": "GB_VAT_1"}]

    events = [e for e in sim.events() if e["links"].get("payment") == first.id]
    assert [(e["action"], e["details"]["origin"], e["details"]["cause"]) for e in events] == [
        ("created", "api", "payment_created"), ("submitted", "gocardless", "payment_submitted"),
        ("confirmed", "gocardless", "payment_confirmed"),
        ("paid_out", "gocardless", "payment_paid_out")]
    assert events[-1]["links"]["payout"] == payout_id
    assert events[-1]["resource_metadata"] == {"invoice": "INV-1"}
    assert events[-1]["created_at"] == "2026-03-09T09:00:00.000Z"
    paid = [e for e in sim.events() if e["resource_type"] == "payouts"]
    assert [(e["action"], e["links"]) for e in paid] == [("paid", {"payout": payout_id})]


def test_one_payout_per_currency(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    bacs, sepa = sim.seed(mandates=[{"scheme": "bacs"}, {"scheme": "sepa_core"}])["mandates"]
    sim.seed(payments=[{"mandate": bacs, "amount": 2000}, {"mandate": bacs, "amount": 3000},
                       {"mandate": sepa, "amount": 4000}])
    sim.advance(days=14)
    payouts = {p.currency: p for p in gocardless_sdk.payouts.list().records}
    assert set(payouts) == {"GBP", "EUR"}
    assert payouts["GBP"].amount == 5000 - (40 + 8) - (50 + 10)
    assert payouts["EUR"].amount == 4000 - (60 + 12)
    assert [p.id for p in gocardless_sdk.payouts.list(params={"currency": "EUR"}).records] == [
        payouts["EUR"].id]


def test_success_plus_auto_retry(gocardless_sdk, gocardless_simulator):
    sim = gocardless_simulator
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    payment = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "retry_if_possible": True,
        "links": {"mandate": mandate}})
    sim.run_scenario("payment_failed", payment.id)
    failed = sim.events()[-1]
    assert failed["details"]["will_attempt_retry"] is True
    sim.advance(days=1)
    assert gocardless_sdk.payments.get(payment.id).status == "pending_submission"
    assert sim.events()[-1]["details"]["cause"] == "payment_autoretried"


@settings(max_examples=30, deadline=None)
@given(amounts=st.lists(st.integers(min_value=100, max_value=500_000), min_size=1, max_size=8))
def test_payout_items_always_sum_to_the_payout(amounts):
    """Integer fees and VAT: items add up exactly, deducted fees are the fee items."""
    sim = Simulator(clock=SimClock(SIM_START, frozen=True))
    mandate = sim.seed(mandates=[{}])["mandates"][0]
    sim.seed(payments=[{"mandate": mandate, "amount": amount} for amount in amounts])
    sim.advance(days=10)
    [payout] = sim.resource("payouts")
    items = sim.resource("payout_items", payout["id"])
    assert sum(int(item["amount"][:-2]) for item in items) == payout["amount"]
    fees = [item for item in items if item["type"] == "gocardless_fee"]
    assert payout["deducted_fees"] == -sum(int(item["amount"][:-2]) for item in fees)
    for amount, fee in zip(amounts, fees, strict=True):
        net_fee = min((amount + 50) // 100 + 20, 400)
        assert int(fee["amount"][:-2]) == -(net_fee + (net_fee * 20 + 50) // 100)
