"""Scenario simulators: each one's status change, events and settlement."""

import pytest
from gocardless_pro import errors as gc_errors


@pytest.fixture
def world(gocardless_simulator, gocardless_sdk):
    sim = gocardless_simulator
    seeded = sim.seed(mandates=[{"scheme": "bacs"}, {"scheme": "sepa_core"}])
    bacs, sepa = seeded["mandates"]
    payment = gocardless_sdk.payments.create(params={
        "amount": 2000, "currency": "GBP", "links": {"mandate": bacs}})
    return {"sim": sim, "sdk": gocardless_sdk, "bacs": bacs, "sepa": sepa,
            "payment": payment.id}


def actions_for(sim, link, value):
    return [e["action"] for e in sim.events() if e["links"].get(link) == value]


def last(sim, resource_type, action):
    return next(e for e in reversed(sim.events())
                if (e["resource_type"], e["action"]) == (resource_type, action))


def test_sandbox_path_and_sdk(world):
    result = world["sdk"].scenario_simulators.run(
        "payment_failed", params={"links": {"resource": world["payment"]}})
    assert result.id == "payment_failed"
    assert world["sdk"].payments.get(world["payment"]).status == "failed"


def test_unknown_scenario_and_wrong_state(world):
    with pytest.raises(gc_errors.InvalidApiUsageError):
        world["sdk"].scenario_simulators.run("payment_vanished",
                                             params={"links": {"resource": world["payment"]}})
    world["sim"].run_scenario("payment_paid_out", world["payment"])
    with pytest.raises(gc_errors.InvalidStateError):
        world["sdk"].scenario_simulators.run("payment_failed",
                                             params={"links": {"resource": world["payment"]}})


def test_payment_failed(world):
    sim = world["sim"]
    sim.run_scenario("payment_failed", world["payment"])
    assert actions_for(sim, "payment", world["payment"]) == ["created", "submitted", "failed"]
    details = last(sim, "payments", "failed")["details"]
    assert details == {
        "origin": "bank", "cause": "refer_to_payer", "scheme": "bacs", "reason_code": "ARUDD-0",
        "description": "The customer's bank wasn't able to pay the Direct Debit. This is almost "
                       "always due to insufficient funds but is occasionally used as a catch-all "
                       "for other failures.",
        "will_attempt_retry": False, "not_retried_reason": "other"}


def test_submitted_confirmed_paid_out(world):
    sim, sdk = world["sim"], world["sdk"]
    sim.run_scenario("payment_submitted", world["payment"])
    assert sdk.payments.get(world["payment"]).status == "submitted"
    other = sdk.payments.create(params={"amount": 1000, "currency": "GBP",
                                        "links": {"mandate": world["bacs"]}})
    sim.run_scenario("payment_confirmed", other.id)
    assert sdk.payments.get(other.id).status == "confirmed"
    third = sdk.payments.create(params={"amount": 1000, "currency": "GBP",
                                        "links": {"mandate": world["bacs"]}})
    sim.run_scenario("payment_paid_out", third.id)
    paid = sdk.payments.get(third.id)
    assert paid.status == "paid_out" and paid.links.payout
    assert last(sim, "payments", "paid_out")["links"] == {"payment": third.id,
                                                           "payout": paid.links.payout}


@pytest.mark.parametrize("name", ["payment_late_failure", "payment_late_failure_settled",
                                  "late_failure_settled"])
def test_late_failure_is_debited_from_a_later_payout(world, name):
    sim, sdk = world["sim"], world["sdk"]
    sim.run_scenario(name, world["payment"])
    payment = sdk.payments.get(world["payment"])
    assert payment.status == "failed"
    first_payout = payment.links.payout
    actions = actions_for(sim, "payment", world["payment"])
    assert actions[:5] == ["created", "submitted", "confirmed", "paid_out", "failed"]
    if name == "payment_late_failure":
        assert "late_failure_settled" not in actions
        # Settled in the next regular payout that can absorb it.
        sdk.payments.create(params={"amount": 5000, "currency": "GBP",
                                    "links": {"mandate": world["bacs"]}})
        sim.advance(days=10)
    settled = last(sim, "payments", "late_failure_settled")
    assert settled["links"]["payment"] == world["payment"]
    assert settled["links"]["payout"] != first_payout
    items = sim.resource("payout_items", settled["links"]["payout"])
    assert {"type": "payment_failed", "amount": "-2000.0",
            "links": {"payment": world["payment"], "mandate": world["bacs"]},
            "taxes": []} in items


@pytest.mark.parametrize("name", ["payment_charged_back", "payment_chargeback_settled"])
def test_chargeback(world, name):
    sim, sdk = world["sim"], world["sdk"]
    sim.run_scenario(name, world["payment"])
    assert sdk.payments.get(world["payment"]).status == "charged_back"
    details = last(sim, "payments", "charged_back")["details"]
    assert (details["origin"], details["cause"], details["reason_code"]) == (
        "bank", "authorisation_disputed", "DDICA-1")
    if name == "payment_chargeback_settled":
        settled = last(sim, "payments", "chargeback_settled")
        items = sim.resource("payout_items", settled["links"]["payout"])
        assert [i["type"] for i in items] == ["payment_charged_back", "surcharge_fee"]
        payout = sdk.payouts.get(settled["links"]["payout"])
        assert payout.amount == sum(int(i["amount"][:-2]) for i in items)
        assert payout.deducted_fees == 600
    else:
        assert "chargeback_settled" not in actions_for(sim, "payment", world["payment"])


def test_sepa_chargeback_cause(world):
    sim, sdk = world["sim"], world["sdk"]
    payment = sdk.payments.create(params={"amount": 2000, "currency": "EUR",
                                          "links": {"mandate": world["sepa"]}})
    sim.run_scenario("payment_charged_back", payment.id)
    details = last(sim, "payments", "charged_back")["details"]
    assert (details["cause"], details["reason_code"], details["scheme"]) == (
        "refund_requested", "MD06", "sepa_core")


@pytest.mark.parametrize(("name", "status", "origin", "cause"), [
    ("mandate_cancelled", "cancelled", "bank", "bank_account_closed"),
    ("mandate_expired", "expired", "gocardless", "mandate_expired"),
    ("mandate_failed", None, "bank", "invalid_bank_details"),
])
def test_mandate_endings_cancel_pending_payments(world, name, status, origin, cause):
    sim, sdk = world["sim"], world["sdk"]
    if name == "mandate_failed":
        mandate = sim.seed(mandates=[{"status": "pending_submission"}])["mandates"][0]
        status = "failed"
        payment = sdk.payments.create(params={"amount": 1000, "currency": "GBP",
                                              "links": {"mandate": mandate}}).id
    else:
        mandate, payment = world["bacs"], world["payment"]
    sim.run_scenario(name, mandate)
    assert sdk.mandates.get(mandate).status == status
    event = last(sim, "mandates", status)
    assert (event["details"]["origin"], event["details"]["cause"]) == (origin, cause)
    assert sdk.payments.get(payment).status == "cancelled"
    assert last(sim, "payments", "cancelled")["links"]["parent_event"] == event["id"]


def test_mandate_replaced(world):
    sim, sdk = world["sim"], world["sdk"]
    sim.run_scenario("mandate_replaced", world["bacs"])
    old = sdk.mandates.get(world["bacs"])
    assert old.status == "cancelled" and old.links.new_mandate
    new = sdk.mandates.get(old.links.new_mandate)
    assert new.status == "active"
    event = last(sim, "mandates", "replaced")
    assert event["links"] == {"mandate": world["bacs"], "new_mandate": new.id}
    assert event["details"]["cause"] == "scheme_identifier_changed"
    assert sdk.payments.get(world["payment"]).links.mandate == new.id


def test_mandate_transferred(world):
    sim, sdk = world["sim"], world["sdk"]
    before = sdk.mandates.get(world["bacs"]).links.customer_bank_account
    sim.run_scenario("mandate_transferred", world["bacs"])
    mandate = sdk.mandates.get(world["bacs"])
    assert mandate.status == "active"
    assert mandate.links.customer_bank_account != before
    assert sdk.customer_bank_accounts.get(before).enabled is False
    event = last(sim, "mandates", "transferred")
    assert event["links"] == {"mandate": world["bacs"], "previous_customer_bank_account": before,
                              "new_customer_bank_account": mandate.links.customer_bank_account}


def test_mandate_activated(world):
    sim, sdk = world["sim"], world["sdk"]
    mandate = sim.seed(mandates=[{"status": "pending_submission"}])["mandates"][0]
    sim.run_scenario("mandate_activated", mandate)
    assert sdk.mandates.get(mandate).status == "active"
    assert actions_for(sim, "mandate", mandate) == ["submitted", "active"]


def refund_for(world):
    world["sim"].run_scenario("payment_paid_out", world["payment"])
    return world["sdk"].refunds.create(params={"amount": 500, "total_amount_confirmation": 500,
                                               "links": {"payment": world["payment"]}}).id


def test_refund_paid_and_settled(world):
    sim, sdk = world["sim"], world["sdk"]
    refund = refund_for(world)
    sim.run_scenario("refund_paid", refund)
    assert sdk.refunds.get(refund).status == "paid"
    sim.run_scenario("refund_settled", refund)
    settled = last(sim, "refunds", "refund_settled")
    assert settled["links"]["refund"] == refund
    items = sim.resource("payout_items", settled["links"]["payout"])
    assert items == [{"type": "payment_refunded", "amount": "-500.0", "links": {
        "payment": world["payment"], "mandate": world["bacs"], "refund": refund}, "taxes": []}]


@pytest.mark.parametrize("name", ["refund_failed", "refund_bounced"])
def test_refund_failed(world, name):
    refund = refund_for(world)
    world["sim"].run_scenario(name, refund)
    assert world["sdk"].refunds.get(refund).status == "bounced"
    assert last(world["sim"], "refunds", "failed")["details"]["cause"] == "refund_failed"


def test_refund_funds_returned(world):
    sim, sdk = world["sim"], world["sdk"]
    refund = refund_for(world)
    sim.run_scenario("refund_funds_returned", refund)
    assert sdk.refunds.get(refund).status == "funds_returned"
    event = last(sim, "refunds", "funds_returned")
    items = sim.resource("payout_items", event["links"]["payout"])
    assert {"type": "refund_funds_returned", "amount": "500.0", "links": {
        "payment": world["payment"], "mandate": world["bacs"], "refund": refund},
        "taxes": []} in items


def test_payout_bounced(world):
    sim, sdk = world["sim"], world["sdk"]
    sim.run_scenario("payment_paid_out", world["payment"])
    payout = sdk.payments.get(world["payment"]).links.payout
    sim.run_scenario("payout_bounced", payout)
    assert sdk.payouts.get(payout).status == "bounced"
    event = last(sim, "creditors", "bounced_payout")
    assert event["links"] == {"creditor": "CR000SIM", "payout": payout}


def test_billing_request_fulfilled(world):
    sdk = world["sdk"]
    billing_request = sdk.billing_requests.create(params={"mandate_request": {"currency": "EUR"}})
    sdk.billing_request_flows.create(params={"links": {"billing_request": billing_request.id}})
    sdk.scenario_simulators.run("billing_request_fulfilled",
                                params={"links": {"resource": billing_request.id}})
    fulfilled = sdk.billing_requests.get(billing_request.id)
    assert fulfilled.status == "fulfilled"
    assert sdk.mandates.get(fulfilled.links.mandate_request_mandate).scheme == "sepa_core"
