"""Scenario simulators, like the GoCardless sandbox's ``/scenario_simulators/{name}``.

Each scenario drives one resource through the transitions (and events) the real scheme would
produce, immediately, at the current simulated time. Callers hold ``state.lock``.
"""

from __future__ import annotations

from . import errors, lifecycle, plans
from .lifecycle import bank_details, details
from .onboarding import complete_flow
from .resources import new_bank_account, new_mandate
from .schemes import SCHEMES


def _require(resource: dict, allowed: tuple[str, ...], name: str) -> None:
    if resource["status"] not in allowed:
        raise errors.invalid_state(
            "invalid_state_for_scenario",
            f"{name} needs status {' or '.join(allowed)}, not {resource['status']}")


# -- payments -----------------------------------------------------------------------------

def _submit(state, payment, at):
    if payment["status"] == "pending_submission":
        lifecycle.payment_submit(state, payment, at)


def _pay_out(state, payment, at):
    _submit(state, payment, at)
    if payment["status"] == "submitted":
        lifecycle.payment_confirm(state, payment, at)
    if payment["status"] == "confirmed":
        lifecycle.pay_out(state, payment["currency"], [payment], at)


def payment_submitted(state, payment, at):
    _require(payment, ("pending_submission",), "payment_submitted")
    _submit(state, payment, at)


def payment_confirmed(state, payment, at):
    _require(payment, ("pending_submission",), "payment_confirmed")
    _submit(state, payment, at)
    lifecycle.payment_confirm(state, payment, at)


def payment_paid_out(state, payment, at):
    _require(payment, ("pending_submission",), "payment_paid_out")
    _pay_out(state, payment, at)


def payment_failed(state, payment, at):
    _require(payment, ("pending_submission", "submitted"), "payment_failed")
    _submit(state, payment, at)
    lifecycle.payment_fail(state, payment, at)


def _late(settle: bool):
    def run(state, payment, at):
        _require(payment, ("pending_submission", "paid_out"), "payment_late_failure")
        _pay_out(state, payment, at)
        lifecycle.payment_fail(state, payment, at, late=True)
        if settle:
            lifecycle.pay_out(state, payment["currency"], [], at, settle_all=True)
    return run


def _charge_back(settle: bool):
    def run(state, payment, at):
        _require(payment, ("pending_submission", "paid_out"), "payment_charged_back")
        _pay_out(state, payment, at)
        lifecycle.payment_charge_back(state, payment, at)
        if settle:
            lifecycle.pay_out(state, payment["currency"], [], at, settle_all=True)
    return run


# -- mandates -----------------------------------------------------------------------------

def _bank_cancel_details(mandate):
    scheme = SCHEMES[mandate["scheme"]]
    return bank_details(scheme.name, "bank_account_closed", scheme.reason_code_cancelled)


def mandate_activated(state, mandate, at):
    _require(mandate, ("pending_submission", "submitted"), "mandate_activated")
    if mandate["status"] == "pending_submission":
        lifecycle.mandate_submit(state, mandate, at)
    lifecycle.mandate_activate(state, mandate, at)


def mandate_failed(state, mandate, at):
    _require(mandate, ("pending_submission", "submitted"), "mandate_failed")
    code = "AUDDIS-5" if mandate["scheme"] == "bacs" else "AC01"
    failure = bank_details(mandate["scheme"], "invalid_bank_details", code)
    lifecycle.mandate_end(state, mandate, "failed", "failed", failure, at,
                          payment_details=failure)


def mandate_cancelled(state, mandate, at):
    _require(mandate, lifecycle.MANDATE_USABLE, "mandate_cancelled")
    cancel = _bank_cancel_details(mandate)
    lifecycle.mandate_end(state, mandate, "cancelled", "cancelled", cancel, at,
                          payment_details=cancel)


def mandate_expired(state, mandate, at):
    _require(mandate, lifecycle.MANDATE_USABLE, "mandate_expired")
    lifecycle.mandate_end(state, mandate, "expired", "expired",
                          details("gocardless", "mandate_expired"), at,
                          payment_details=details("gocardless", "mandate_expired"))


def mandate_replaced(state, mandate, at):
    """New scheme identifier: a new active mandate takes over the old one's payments."""
    _require(mandate, lifecycle.MANDATE_USABLE, "mandate_replaced")
    replacement = new_mandate(state, mandate["links"]["customer"],
                              mandate["links"]["customer_bank_account"], mandate["scheme"],
                              status="active", metadata=mandate["metadata"])
    state.emit("mandates", "created", {"mandate": replacement["id"]},
               details("gocardless", "mandate_created",
                       description_key="mandate_created_as_replacement"),
               resource=replacement, at=at)
    mandate["status"] = "cancelled"
    mandate["links"]["new_mandate"] = replacement["id"]
    for payment in state.resources["payments"].values():
        if payment["links"]["mandate"] == mandate["id"] and payment["status"] in (
                "pending_customer_approval", "pending_submission"):
            payment["links"]["mandate"] = replacement["id"]
    plans.mandate_replaced(state, mandate["id"], replacement["id"])
    state.emit("mandates", "replaced", {"mandate": mandate["id"], "new_mandate": replacement["id"]},
               details("gocardless", "scheme_identifier_changed"), resource=mandate, at=at)


def mandate_transferred(state, mandate, at):
    """The payer's bank account moved bank (e.g. CASS): new bank account, same mandate."""
    _require(mandate, lifecycle.MANDATE_USABLE, "mandate_transferred")
    if mandate["status"] != "active":
        mandate_activated(state, mandate, at)
    old = state.get("customer_bank_accounts", mandate["links"]["customer_bank_account"])
    new = new_bank_account(state, old["links"]["customer"], old["currency"],
                           old["account_holder_name"], account_number="31926819")
    old["enabled"] = False
    mandate["links"]["customer_bank_account"] = new["id"]
    state.emit("mandates", "transferred",
               {"mandate": mandate["id"], "previous_customer_bank_account": old["id"],
                "new_customer_bank_account": new["id"]},
               details("bank", "bank_account_transferred"), resource=mandate, at=at)


# -- refunds, payouts, billing requests ---------------------------------------------------

def refund_paid(state, refund, at):
    _require(refund, ("pending_submission", "submitted"), "refund_paid")
    lifecycle.refund_pay(state, refund, at)


def refund_settled(state, refund, at):
    _require(refund, ("pending_submission", "submitted", "paid"), "refund_settled")
    if refund["status"] != "paid":
        lifecycle.refund_pay(state, refund, at)
    lifecycle.pay_out(state, refund["currency"], [], at, settle_all=True)


def refund_failed(state, refund, at):
    _require(refund, ("pending_submission", "submitted", "paid"), "refund_failed")
    lifecycle.refund_fail(state, refund, at)


def refund_funds_returned(state, refund, at):
    _require(refund, ("pending_submission", "submitted", "paid", "bounced"),
             "refund_funds_returned")
    if refund["status"] != "bounced":
        lifecycle.refund_fail(state, refund, at)
    lifecycle.pay_out(state, refund["currency"], [], at, settle_all=True)


def payout_bounced(state, payout, at):
    _require(payout, ("paid",), "payout_bounced")
    payout["status"] = "bounced"
    state.emit("creditors", "bounced_payout",
               {"creditor": state.creditor_id, "payout": payout["id"]},
               details("gocardless", "bounced_payout"), resource=payout, at=at)


def billing_request_fulfilled(state, billing_request, at):
    """Complete the newest flow of the request with sandbox bank details (or make one)."""
    _require(billing_request, ("pending",), "billing_request_fulfilled")
    flows = [f for f in state.resources["billing_request_flows"].values()
             if f["links"]["billing_request"] == billing_request["id"]]
    if not flows:
        raise errors.invalid_state("invalid_state_for_scenario",
                                   "billing_request_fulfilled needs a billing request flow")
    payer = {}
    customer = state.get("customers", billing_request["links"]["customer"])
    if not customer["email"] and not flows[-1]["prefilled_customer"].get("email"):
        payer = {"email": f"payer-{customer['id'].lower()}@example.test",
                 "given_name": "Sandbox", "family_name": "Payer"}
    complete_flow(state, flows[-1]["id"], payer)


# name -> (resource store, function); the sandbox names plus the short aliases we document.
SCENARIOS = {
    "payment_submitted": ("payments", payment_submitted),
    "payment_confirmed": ("payments", payment_confirmed),
    "payment_paid_out": ("payments", payment_paid_out),
    "payment_failed": ("payments", payment_failed),
    "payment_late_failure": ("payments", _late(settle=False)),
    "payment_late_failure_settled": ("payments", _late(settle=True)),
    "late_failure_settled": ("payments", _late(settle=True)),
    "payment_charged_back": ("payments", _charge_back(settle=False)),
    "payment_chargeback_settled": ("payments", _charge_back(settle=True)),
    "chargeback_settled": ("payments", _charge_back(settle=True)),
    "mandate_activated": ("mandates", mandate_activated),
    "mandate_failed": ("mandates", mandate_failed),
    "mandate_cancelled": ("mandates", mandate_cancelled),
    "mandate_expired": ("mandates", mandate_expired),
    "mandate_replaced": ("mandates", mandate_replaced),
    "mandate_transferred": ("mandates", mandate_transferred),
    "refund_paid": ("refunds", refund_paid),
    "refund_settled": ("refunds", refund_settled),
    "refund_failed": ("refunds", refund_failed),
    "refund_bounced": ("refunds", refund_failed),
    "refund_funds_returned": ("refunds", refund_funds_returned),
    "refund_returned": ("refunds", refund_funds_returned),
    "payout_bounced": ("payouts", payout_bounced),
    "billing_request_fulfilled": ("billing_requests", billing_request_fulfilled),
}


def run(state, name: str, resource_id: str) -> None:
    if name not in SCENARIOS:
        raise errors.invalid_api_usage(404, "resource_not_found",
                                       f"Scenario simulator '{name}' not found")
    store, scenario = SCENARIOS[name]
    scenario(state, state.get(store, resource_id), state.clock.now())
