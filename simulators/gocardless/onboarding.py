"""Completing a billing request flow: what the payer does on the hosted page.

Creates (or fills in) the customer, the customer bank account and the mandate, fulfils the
billing request, and emits the events a real flow produces.
"""

from __future__ import annotations

import re

from . import errors, lifecycle
from .clock import add_working_days
from .countries import ISO_3166_ALPHA2
from .lifecycle import details
from .payments import new_payment
from .resources import new_bank_account, new_mandate

# Sandbox-friendly defaults, the same test details GoCardless documents for its sandbox.
DEFAULT_BANK_DETAILS = {
    "GBP": {"account_number": "55779911", "branch_code": "200000", "country_code": "GB"},
    "EUR": {"iban": "DE89370400440532013000", "country_code": "DE"},
}


def _iban_valid(iban: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _bank_errors(currency: str, details: dict) -> list[tuple[str, str]]:
    problems = []
    if currency == "EUR":
        iban = (details.get("iban") or "").replace(" ", "").upper()
        if not _iban_valid(iban):
            problems.append(("iban", "is invalid"))
    else:
        number = details.get("account_number") or ""
        if not re.fullmatch(r"\d{6,17}", number):
            problems.append(("account_number", "must be a number of 6 to 17 digits"))
        if currency == "GBP" and not re.fullmatch(r"\d{6}", details.get("branch_code") or ""):
            problems.append(("branch_code", "must be a number of 6 digits"))
    return problems


def complete_flow(state, flow_id: str, payer: dict | None = None) -> dict:
    """Finish the flow as the payer would; returns the new mandate, or the payment of an
    instant payment request. ``state.lock`` held.

    ``payer`` may carry customer fields (given_name, family_name, company_name, email, ...)
    and bank details (account_holder_name, account_number, branch_code, iban); anything
    missing comes from the flow's prefilled values, then from sandbox defaults. A request
    with a ``payment_request`` also creates its payment, carrying the payment request's
    metadata: instant (confirmed at once) without a ``mandate_request``, else by Direct
    Debit on the new mandate.
    """
    flow = state.get("billing_request_flows", flow_id)
    billing_request = state.get("billing_requests", flow["links"]["billing_request"])
    now = state.clock.now()
    if now > flow["_expires"]:
        raise errors.invalid_state("billing_request_flow_expired", "This flow has expired")
    if billing_request["status"] != "pending":
        raise errors.invalid_state("billing_request_not_pending",
                                   "Billing request is not pending")
    payer = {k: v for k, v in (payer or {}).items() if v not in (None, "")}
    mandate_request = billing_request["mandate_request"]
    payment_request = billing_request.get("payment_request")
    currency = (mandate_request or payment_request)["currency"]

    customer = state.get("customers", billing_request["links"]["customer"])
    for field, value in {**flow["prefilled_customer"], **payer}.items():
        if field in customer and field not in ("id", "created_at", "metadata", "language"):
            customer[field] = value
    bank = {**DEFAULT_BANK_DETAILS.get(currency, {"account_number": "12345678"}),
            **flow["prefilled_bank_account"], **payer}
    problems = [("email", "is required")] if not customer["email"] else []
    if not (customer["company_name"] or (customer["given_name"] and customer["family_name"])):
        problems.append(("family_name", "is required unless company_name is given"))
    if customer.get("country_code") and customer["country_code"] not in ISO_3166_ALPHA2:
        problems.append(("country_code", "is invalid"))
    if mandate_request is not None:
        problems += _bank_errors(currency, bank)
    if problems:
        check = errors.Validation("billing_requests")
        for field, message in problems:
            check.add(field, message)
        check.raise_if_any()

    flow["customer_details_captured"] = True
    for action in billing_request["actions"]:
        action["status"] = "completed"
    billing_request["status"] = "fulfilled"
    billing_request["resources"]["customer"] = {
        k: v for k, v in customer.items() if not k.startswith("_")}
    links = {"billing_request": billing_request["id"], "customer": customer["id"]}
    fulfilled_links = dict(links)
    mandate = payment = None
    if mandate_request is not None:
        holder = bank.get("account_holder_name") or customer["company_name"] or (
            f"{customer['given_name']} {customer['family_name']}")
        account = new_bank_account(state, customer["id"], currency, holder,
                                   account_number=bank.get("account_number") or "",
                                   iban=(bank.get("iban") or "").replace(" ", "").upper() or None)
        mandate = new_mandate(state, customer["id"], account["id"], mandate_request["scheme"],
                              metadata=mandate_request["metadata"])
        billing_request["links"]["customer_bank_account"] = account["id"]
        billing_request["links"]["mandate_request_mandate"] = mandate["id"]
        mandate_request["links"]["mandate"] = mandate["id"]
        billing_request["resources"]["customer_bank_account"] = {
            k: v for k, v in account.items() if not k.startswith("_")}
        fulfilled_links.update({"mandate_request": billing_request["links"]["mandate_request"],
                                "mandate_request_mandate": mandate["id"],
                                "customer_bank_account": account["id"]})
    state.emit("billing_requests", "payer_details_confirmed", links,
               {"origin": "payer", "cause": "billing_request_payer_details_confirmed",
                "description": "Payer has confirmed all their details."},
               resource=billing_request)
    if mandate is not None:
        state.emit("mandates", "created", {"mandate": mandate["id"]},
                   details("gocardless", "mandate_created",
                           description_key="mandate_created_by_billing_request"),
                   resource=mandate)
    if payment_request is not None:
        payment = _payment_of_request(state, billing_request, payment_request, mandate, now)
        billing_request["links"]["payment_request_payment"] = payment["id"]
        payment_request["links"]["payment"] = payment["id"]
        fulfilled_links.update({"payment_request": billing_request["links"]["payment_request"],
                                "payment_request_payment": payment["id"]})
    state.emit("billing_requests", "fulfilled", fulfilled_links,
               {"origin": "gocardless", "cause": "billing_request_fulfilled",
                "description": "This billing request has been fulfilled, and the resources "
                               "have been created."},
               resource=billing_request)
    if payment is not None and mandate is None:
        # Instant Bank Pay: the bank confirms the transfer while the payer waits.
        lifecycle.payment_submit(state, payment, now)
        lifecycle.payment_confirm(state, payment, now)
    return mandate if mandate is not None else payment


def _payment_of_request(state, billing_request, payment_request, mandate, now) -> dict:
    """The payment a fulfilled payment request makes, with the request's metadata."""
    if mandate is not None:
        payment = new_payment(state, mandate, payment_request["amount"],
                              description=payment_request["description"],
                              metadata=payment_request["metadata"],
                              reference=payment_request.get("reference"),
                              retry_if_possible=payment_request.get("retry_if_possible"))
    else:
        today = now.date()
        calendar = "bacs" if payment_request["currency"] == "GBP" else "sepa_core"
        payment = state.add("payments", {
            "id": state.new_id("payments"),
            "created_at": state.now_iso(),
            "charge_date": today.isoformat(),
            "amount": payment_request["amount"],
            "amount_refunded": 0,
            "description": payment_request["description"],
            "currency": payment_request["currency"],
            "status": "pending_submission",
            "reference": payment_request.get("reference"),
            "metadata": dict(payment_request["metadata"] or {}),
            "retry_if_possible": False,
            "app_fee": payment_request.get("app_fee"),
            "scheme": payment_request["scheme"],
            "faster_ach": False,
            "fx": {"fx_currency": payment_request["currency"], "fx_amount": None,
                   "exchange_rate": None, "estimated_exchange_rate": None},
            "links": {"creditor": state.creditor_id},
            "_retries": 0,
            "_submit_on": today,
            "_confirm_on": today,
            "_pay_out_on": add_working_days(today, 1, calendar),
        })
    state.emit("payments", "created", {"payment": payment["id"],
                                       "billing_request": billing_request["id"]},
               details("gocardless", "payment_created",
                       description_key="payment_created_by_billing_request"),
               resource=payment)
    return payment
