"""How resources move on their own: scheme timetables, daily processing and payouts.

Callers hold ``state.lock``. Every transition emits the event GoCardless documents for it
(notes sections 2.7/2.8: origin, cause, description, links).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from .clock import add_working_days, iso_timestamp, roll_forward, subtract_working_days
from .schemes import SCHEMES, SURCHARGE_FEE, transaction_fee, vat_on

MANDATE_USABLE = ("pending_customer_approval", "pending_submission", "submitted", "active")

DESCRIPTIONS = {
    "payment_created": "Payment created via the API.",
    "payment_created_by_billing_request": "Payment created by a billing request.",
    "payment_submitted": "Payment submitted to the banks. As a result it can no longer be "
                         "cancelled.",
    "payment_confirmed": "Enough time has passed since the payment was submitted for the banks "
                         "to return an error so this payment is now confirmed.",
    "payment_paid_out": "The payment has been paid out by GoCardless.",
    "payment_cancelled": "This payment was cancelled at your request.",
    "payment_retried": "This payment was resubmitted at your request.",
    "payment_autoretried": "The payment was scheduled for resubmission automatically by "
                           "GoCardless.",
    "insufficient_funds": "The customer's account had insufficient funds to make this payment.",
    "refer_to_payer": "The customer's bank wasn't able to pay the Direct Debit. This is almost "
                      "always due to insufficient funds but is occasionally used as a catch-all "
                      "for other failures.",
    "refund_requested": "This payment was charged back by the customer's bank at the "
                        "customer's request within the 8 week cool-off period.",
    "authorisation_disputed": "The customer has disputed that the amount taken differs from the "
                              "amount they were notified of.",
    "late_failure_settled": "This late failed payment has been settled against a payout.",
    "chargeback_settled": "This charged back payment has been settled against a payout.",
    "surcharge_fee_debited": "A surcharge fee has been debited for this payment.",
    "mandate_created": "Mandate created via the API.",
    "mandate_created_by_billing_request": "Mandate created by a billing request.",
    "mandate_created_as_replacement": "Mandate created to replace a mandate whose scheme "
                                      "identifier changed.",
    "mandate_submitted": "The mandate has been submitted to the banks.",
    "mandate_activated": "The time window after submission for the banks to refuse a mandate "
                         "has ended without any errors being received, so this mandate is now "
                         "active.",
    "mandate_reinstated": "A cancelled mandate has been re-instated.",
    "resubmission_requested": "An attempt to reinstate this mandate was requested.",
    "mandate_cancelled": "The mandate was cancelled at your request.",
    "bank_account_closed": "The customer's account was closed at their bank.",
    "invalid_bank_details": "The bank account specified does not exist. Any subscriptions and "
                            "pending payments will also be cancelled.",
    "mandate_expired": "The mandate is being marked as expired because no payments have been "
                       "collected against it for the dormancy period of your service user "
                       "number. If you have access to the mandate reinstation API endpoint you "
                       "can use this to attempt to set this mandate up again.",
    "scheme_identifier_changed": "The creditor has changed to a different scheme identifier so "
                                 "this mandate has been cancelled and replaced by a new one.",
    "bank_account_transferred": "The customer's bank account was transferred to a different "
                                "bank or building society.",
    "payout_paid": "Payout sent",
    "bounced_payout": "A payout has bounced and been returned to GoCardless.",
    "refund_created": "The refund has been created.",
    "refund_paid": "The refund has been paid to your customer.",
    "refund_settled": "The refund has been deducted from a payout.",
    "refund_failed": "The refund did not reach your customer; the funds will be returned to "
                     "you.",
    "refund_funds_returned": "The refund has been credited in a payout.",
}


def details(origin: str, cause: str, *, description_key: str | None = None, **extra) -> dict:
    return {"origin": origin, "cause": cause,
            "description": DESCRIPTIONS[description_key or cause], **extra}


def bank_details(scheme: str, cause: str, reason_code: str) -> dict:
    return details("bank", cause, scheme=scheme, reason_code=reason_code)


def day_moment(state, day: date) -> datetime:
    """When the work of ``day`` happened: 09:00 UTC that day, or now if that is earlier."""
    return min(datetime.combine(day, time(9, 0), tzinfo=UTC), state.clock.now())


# -- mandates -----------------------------------------------------------------------------

def next_possible_charge_date(mandate: dict, today: date) -> date | None:
    """Earliest charge date: scheme lead time, one more working day while the mandate is new."""
    if mandate["status"] not in MANDATE_USABLE:
        return None
    scheme = SCHEMES[mandate["scheme"]]
    extra = 0 if mandate["status"] == "active" else 1
    return add_working_days(today, scheme.lead_days + extra, scheme.name)


def mandate_schedule_submission(mandate: dict, today: date) -> None:
    mandate["_submit_on"] = add_working_days(today, 1, mandate["scheme"])


def mandate_submit(state, mandate: dict, at: datetime) -> None:
    mandate["status"] = "submitted"
    scheme = SCHEMES[mandate["scheme"]]
    mandate["_activate_on"] = add_working_days(at.date(), scheme.mandate_activation, scheme.name)
    state.emit("mandates", "submitted", {"mandate": mandate["id"]},
               details("gocardless", "mandate_submitted"), resource=mandate, at=at)


def mandate_activate(state, mandate: dict, at: datetime) -> None:
    mandate["status"] = "active"
    if mandate.pop("_reinstating", False):
        event_details = details("gocardless", "mandate_reinstated")
        action = "reinstated"
    else:
        event_details = details("gocardless", "mandate_activated")
        action = "active"
    state.emit("mandates", action, {"mandate": mandate["id"]}, event_details,
               resource=mandate, at=at)


def mandate_end(state, mandate: dict, status: str, action: str, event_details: dict,
                at: datetime, *, payment_details: dict, metadata=None, links=None) -> dict:
    """Cancel/fail/expire a mandate and cancel its payments that are not yet submitted."""
    from . import plans  # plans builds on this module

    mandate["status"] = status
    event = state.emit("mandates", action, {"mandate": mandate["id"], **(links or {})},
                       event_details, resource=mandate, metadata=metadata, at=at)
    plans.mandate_ended(state, mandate, event, at)
    for payment in state.resources["payments"].values():
        if payment["links"]["mandate"] == mandate["id"] and payment["status"] in (
            "pending_customer_approval", "pending_submission"
        ):
            payment_cancel(state, payment, at, payment_details, parent_event=event["id"])
    return event


# -- payments -----------------------------------------------------------------------------

def payment_schedule(payment: dict, charge_date: date, today: date) -> None:
    """Set the charge date and the days the payment will be submitted/confirmed/paid out."""
    scheme = SCHEMES[payment["scheme"]]
    charge_date = roll_forward(charge_date, scheme.name)
    payment["charge_date"] = charge_date.isoformat()
    payment["_submit_on"] = max(subtract_working_days(charge_date, scheme.submit_before,
                                                      scheme.name), today + timedelta(days=1))
    payment["_confirm_on"] = add_working_days(charge_date, scheme.confirm_after, scheme.name)
    payment["_pay_out_on"] = add_working_days(charge_date, scheme.payout_after, scheme.name)


def payment_submit(state, payment: dict, at: datetime) -> None:
    payment["status"] = "submitted"
    state.emit("payments", "submitted", {"payment": payment["id"]},
               details("gocardless", "payment_submitted"), resource=payment, at=at)


def payment_confirm(state, payment: dict, at: datetime) -> None:
    payment["status"] = "confirmed"
    state.emit("payments", "confirmed", {"payment": payment["id"]},
               details("gocardless", "payment_confirmed"), resource=payment, at=at)


def payment_cancel(state, payment: dict, at: datetime, event_details: dict, *,
                   metadata=None, parent_event: str | None = None) -> None:
    payment["status"] = "cancelled"
    state.emit("payments", "cancelled",
               {"payment": payment["id"], "parent_event": parent_event},
               event_details, resource=payment, metadata=metadata, at=at)


# Causes Success+ retries: insufficient funds only (Bacs reports it as refer to payer);
# GoCardless, "Which failed payments can be retried with Success+?".
SUCCESS_PLUS_CAUSES = ("insufficient_funds", "refer_to_payer")


def payment_fail(state, payment: dict, at: datetime, *, late: bool = False,
                 cause: str | None = None) -> dict:
    """Fail a submitted (or, late, a paid-out) payment with the scheme's usual bank cause,
    or with ``cause`` (the control API's ``/payments/{id}/fail``)."""
    scheme = SCHEMES[payment["scheme"]]
    usual = "refer_to_payer" if scheme.name == "bacs" else "insufficient_funds"
    cause = cause or usual
    retry = (bool(payment.get("retry_if_possible")) and not late and payment["_retries"] < 3
             and cause in SUCCESS_PLUS_CAUSES)
    if cause == usual:
        event_details = bank_details(scheme.name, cause, scheme.reason_code_failed)
    else:
        event_details = {"origin": "bank", "cause": cause, "scheme": scheme.name,
                         "reason_code": None,
                         "description": DESCRIPTIONS.get(cause, f"The payment failed ({cause}).")}
    event_details["will_attempt_retry"] = retry
    if retry:
        payment["_autoretry_on"] = add_working_days(at.date(), 1, scheme.name)
    else:
        event_details["not_retried_reason"] = "other"
    payment["status"] = "failed"
    event = state.emit("payments", "failed", {"payment": payment["id"]}, event_details,
                       resource=payment, at=at)
    if late:
        _owe(state, payment, "payment_failed", ("late_failure_settled", payment["id"]))
    return event


def payment_charge_back(state, payment: dict, at: datetime) -> None:
    scheme = SCHEMES[payment["scheme"]]
    cause = "authorisation_disputed" if scheme.name == "bacs" else "refund_requested"
    payment["status"] = "charged_back"
    state.emit("payments", "charged_back", {"payment": payment["id"]},
               bank_details(scheme.name, cause, scheme.reason_code_chargeback),
               resource=payment, at=at)
    _owe(state, payment, "payment_charged_back", ("chargeback_settled", payment["id"]))
    vat = vat_on(SURCHARGE_FEE)
    state.unsettled[payment["currency"]].append({
        "type": "surcharge_fee",
        "amount": -(SURCHARGE_FEE + vat),
        "links": {"payment": payment["id"], "mandate": payment["links"]["mandate"]},
        "taxes": [_tax(-vat, payment["currency"])],
        "_settle": ("surcharge_fee_debited", payment["id"]),
    })


def payment_resubmit(state, payment: dict, at: datetime, event_details: dict, *,
                     charge_date: date | None = None, metadata=None) -> None:
    """Back to pending_submission after a failure (API retry or Success+ auto-retry)."""
    mandate = state.get("mandates", payment["links"]["mandate"])
    earliest = next_possible_charge_date(mandate, at.date()) or at.date()
    payment["_retries"] += 1
    payment.pop("_autoretry_on", None)
    payment["status"] = "pending_submission"
    payment_schedule(payment, max(charge_date or earliest, earliest), at.date())
    state.emit("payments", "resubmission_requested", {"payment": payment["id"]},
               event_details, resource=payment, metadata=metadata, at=at)


def _owe(state, payment: dict, item_type: str, settle: tuple) -> None:
    state.unsettled[payment["currency"]].append({
        "type": item_type,
        "amount": -payment["amount"],
        "links": {"payment": payment["id"], "mandate": payment["links"]["mandate"]},
        "_settle": settle,
    })


def _tax(amount: int, currency: str) -> dict:
    return {"amount": amount, "currency": currency, "destination_amount": amount,
            "destination_currency": currency, "exchange_rate": None, "tax_rate_id": "GB_VAT_1"}


# -- refunds ------------------------------------------------------------------------------

def refund_pay(state, refund: dict, at: datetime) -> None:
    refund["status"] = "paid"
    state.emit("refunds", "paid", {"refund": refund["id"]}, details("gocardless", "refund_paid"),
               resource=refund, at=at)
    state.unsettled[refund["currency"]].append({
        "type": "payment_refunded",
        "amount": -refund["amount"],
        "links": {"payment": refund["links"]["payment"], "mandate": refund["links"]["mandate"],
                  "refund": refund["id"]},
        "_settle": ("refund_settled", refund["id"]),
    })


def refund_fail(state, refund: dict, at: datetime) -> None:
    """The refund bounced: GoCardless will credit the money back in a later payout."""
    refund["status"] = "bounced"
    state.emit("refunds", "failed", {"refund": refund["id"]},
               details("gocardless", "refund_failed"), resource=refund, at=at)
    state.unsettled[refund["currency"]].append({
        "type": "refund_funds_returned",
        "amount": refund["amount"],
        "links": {"payment": refund["links"]["payment"], "mandate": refund["links"]["mandate"],
                  "refund": refund["id"]},
        "_settle": ("refund_funds_returned", refund["id"]),
    })


# -- payouts ------------------------------------------------------------------------------

def _fee_items(payment: dict) -> list[dict]:
    # An instant bank payment has no mandate.
    links = {"payment": payment["id"], "mandate": payment["links"].get("mandate")}
    fee = transaction_fee(payment["amount"])
    vat = vat_on(fee)
    items = [
        {"type": "payment_paid_out", "amount": payment["amount"], "links": dict(links)},
        {"type": "gocardless_fee", "amount": -(fee + vat), "links": dict(links),
         "taxes": [_tax(-vat, payment["currency"])]},
    ]
    if payment.get("app_fee"):
        items.append({"type": "app_fee", "amount": -payment["app_fee"], "links": dict(links)})
    return items


FEE_TYPES = ("gocardless_fee", "app_fee", "surcharge_fee")


def pay_out(state, currency: str, payments: list[dict], at: datetime, *,
            settle_all: bool = False) -> dict | None:
    """Pay out ``payments`` in one payout, netting fees and whatever debits/credits are owed.

    Owed debits are only taken while the payout stays positive (the rest waits for a later
    payout), unless ``settle_all`` (scenario simulators that promise settlement now).
    """
    items = [item for payment in payments for item in _fee_items(payment)]
    running = sum(item["amount"] for item in items)
    kept, settled = [], []
    for owed in state.unsettled[currency]:
        if settle_all or owed["amount"] > 0 or running + owed["amount"] > 0:
            running += owed["amount"]
            settled.append(owed)
        else:
            kept.append(owed)
    state.unsettled[currency] = kept
    if not payments and not settled:
        return None
    items += settled
    payout_id = state.new_id("payouts")
    creditor = state.get("creditors", state.creditor_id)
    payout = state.add("payouts", {
        "id": payout_id,
        "amount": running,
        "deducted_fees": -sum(i["amount"] for i in items if i["type"] in FEE_TYPES),
        "currency": currency,
        "created_at": iso_timestamp(at),
        "reference": f"{creditor['bank_reference_prefix']}-{payout_id[-6:]}",
        "arrival_date": None,
        "status": "pending",
        "payout_type": "merchant",
        "tax_currency": currency,
        "fx": {"fx_currency": currency, "fx_amount": None, "exchange_rate": None,
               "estimated_exchange_rate": None},
        "metadata": {},
        "links": {
            "creditor": state.creditor_id,
            "creditor_bank_account": creditor["links"].get(
                f"default_{currency.lower()}_payout_account"),
        },
    })
    state.payout_items[payout_id] = items
    for payment in payments:
        payment["status"] = "paid_out"
        payment["links"]["payout"] = payout_id
        state.emit("payments", "paid_out", {"payment": payment["id"], "payout": payout_id},
                   details("gocardless", "payment_paid_out"), resource=payment, at=at)
    for owed in settled:
        _SETTLERS[owed["_settle"][0]](state, owed["_settle"][1], payout_id, at)
    payout["status"] = "paid"
    payout["arrival_date"] = add_working_days(at.date(), 1, "bacs").isoformat()
    state.emit("payouts", "paid", {"payout": payout_id}, details("gocardless", "payout_paid"),
               resource=payout, at=at)
    return payout


def _settle_payment(action: str):
    def settle(state, payment_id: str, payout_id: str, at: datetime) -> None:
        payment = state.get("payments", payment_id)
        state.emit("payments", action, {"payment": payment_id, "payout": payout_id},
                   details("gocardless", action), resource=payment, at=at)
    return settle


def _settle_refund(action: str, cause: str, status: str | None):
    def settle(state, refund_id: str, payout_id: str, at: datetime) -> None:
        refund = state.get("refunds", refund_id)
        if status:
            refund["status"] = status
        state.emit("refunds", action, {"refund": refund_id, "payout": payout_id},
                   details("gocardless", cause), resource=refund, at=at)
    return settle


_SETTLERS = {
    "late_failure_settled": _settle_payment("late_failure_settled"),
    "chargeback_settled": _settle_payment("chargeback_settled"),
    "surcharge_fee_debited": _settle_payment("surcharge_fee_debited"),
    "refund_settled": _settle_refund("refund_settled", "refund_settled", None),
    "refund_funds_returned": _settle_refund("funds_returned", "refund_funds_returned",
                                            "funds_returned"),
}


# -- the daily run ------------------------------------------------------------------------

def process_until(state, today: date) -> None:
    """Run every day's scheduled work from the last processed day up to ``today``."""
    while state.processed_through < today:
        day = state.processed_through + timedelta(days=1)
        _process_day(state, day, day_moment(state, day))
        state.processed_through = day


def _process_day(state, day: date, at: datetime) -> None:
    from . import plans  # plans builds on this module

    plans.process(state, day, at)
    for mandate in state.resources["mandates"].values():
        if mandate["status"] == "pending_submission" and mandate.get("_submit_on", day) <= day:
            mandate_submit(state, mandate, at)
        elif mandate["status"] == "submitted" and mandate.get("_activate_on", day) <= day:
            mandate_activate(state, mandate, at)

    to_pay_out: dict[str, list[dict]] = defaultdict(list)
    for payment in state.resources["payments"].values():
        status = payment["status"]
        if status == "failed" and payment.get("_autoretry_on") and payment["_autoretry_on"] <= day:
            payment_resubmit(state, payment, at, details("gocardless", "payment_autoretried"))
        elif status == "pending_submission" and payment["_submit_on"] <= day:
            payment_submit(state, payment, at)
        elif status == "submitted" and payment["_confirm_on"] <= day:
            payment_confirm(state, payment, at)
        elif status == "confirmed" and payment["_pay_out_on"] <= day:
            to_pay_out[payment["currency"]].append(payment)

    for refund in state.resources["refunds"].values():
        if refund["status"] == "pending_submission" and refund["_submit_on"] <= day:
            refund["status"] = "submitted"
        elif refund["status"] == "submitted" and refund["_paid_on"] <= day:
            refund_pay(state, refund, at)

    for currency, payments in to_pay_out.items():
        pay_out(state, currency, payments, at)
