"""Handlers for payments and refunds (notes sections 5.4, 5.7, 6)."""

from __future__ import annotations

from datetime import date

from . import errors, lifecycle, listing, validation
from .clock import add_working_days, roll_forward
from .resources import update_metadata_only
from .schemes import REFUND_REFERENCE_MAX, SCHEMES
from .state import public

PAYMENT_FIELDS = {"amount", "currency", "charge_date", "reference", "description", "metadata",
                  "retry_if_possible", "app_fee", "faster_ach", "links"}
CURRENCIES = {"AUD", "CAD", "DKK", "EUR", "GBP", "NZD", "SEK", "USD"}


def new_payment(state, mandate: dict, amount: int, *, charge_date: date | None = None,
                reference=None, description=None, metadata=None, retry_if_possible=False,
                app_fee=None, status: str = "pending_submission") -> dict:
    """A payment on ``mandate``; pending ones get their scheme timetable."""
    scheme = SCHEMES[mandate["scheme"]]
    today = state.clock.today()
    earliest = lifecycle.next_possible_charge_date(mandate, today) or today
    payment = state.add("payments", {
        "id": state.new_id("payments"),
        "created_at": state.now_iso(),
        "charge_date": None,
        "amount": amount,
        "amount_refunded": 0,
        "description": description,
        "currency": scheme.currency,
        "status": status,
        "reference": reference,
        "metadata": dict(metadata or {}),
        "retry_if_possible": bool(retry_if_possible),
        "app_fee": app_fee,
        "scheme": scheme.name,
        "faster_ach": False,
        "fx": {"fx_currency": scheme.currency, "fx_amount": None, "exchange_rate": None,
               "estimated_exchange_rate": None},
        "links": {"mandate": mandate["id"], "creditor": state.creditor_id},
        "_retries": 0,
    })
    lifecycle.payment_schedule(payment, charge_date or earliest, today)
    return payment


def payments_create(state, call):
    data = validation.envelope(call.body, "payments")
    check = errors.Validation("payments")
    validation.reject_unknown(data, PAYMENT_FIELDS, check)
    amount = validation.positive_integer(data, "amount", check)
    currency = data.get("currency")
    if currency is None:
        check.add("currency", "is required")
    elif currency not in CURRENCIES:
        check.add("currency", "is not a supported currency")
    charge_date = validation.iso_date(data, "charge_date", check)
    metadata = validation.metadata(data.get("metadata"), check)
    description = validation.optional_string(data, "description", check, max_length=255)
    app_fee = data.get("app_fee")
    if app_fee is not None:
        validation.positive_integer(data, "app_fee", check)
    links = validation.links(data, check, {"mandate"})
    mandate = state.find("mandates", links.get("mandate"))
    if mandate is None:
        check.add("mandate", "not found" if links.get("mandate") else "is required",
                  "links/mandate")
    check.raise_if_any()

    scheme = SCHEMES[mandate["scheme"]]
    if currency != scheme.currency:
        check.add("currency", f"must be {scheme.currency} for a {scheme.name} mandate")
    if amount < scheme.minimum:
        check.add("amount", f"must be greater than or equal to {scheme.minimum}")
    if amount > scheme.maximum:
        check.add("amount", f"must be less than or equal to {scheme.maximum}")
    reference = validation.optional_string(data, "reference", check,
                                           max_length=scheme.reference_max)
    check.raise_if_any()
    if mandate["status"] not in lifecycle.MANDATE_USABLE:
        raise errors.invalid_state("mandate_is_inactive",
                                   "The mandate for this payment is inactive")
    earliest = lifecycle.next_possible_charge_date(mandate, state.clock.today())
    if charge_date is not None and roll_forward(charge_date, scheme.name) < earliest:
        check.add("charge_date", "must be on or after mandate's next_possible_charge_date "
                  f"({earliest.isoformat()})")
        check.raise_if_any()

    payment = new_payment(state, mandate, amount, charge_date=charge_date, reference=reference,
                          description=description, metadata=metadata,
                          retry_if_possible=data.get("retry_if_possible", False), app_fee=app_fee)
    state.emit("payments", "created", {"payment": payment["id"]},
               lifecycle.details("api", "payment_created"), resource=payment)
    return 201, {"payments": public(payment)}


def payments_get(state, call, resource_id):
    return 200, {"payments": public(state.get("payments", resource_id))}


SORT_FIELDS = {"charge_date": lambda r: (r["charge_date"] or "", r["id"]),
               "amount": lambda r: (r["amount"], r["id"])}


def payments_list(state, call):
    args = call.args
    listing.check_params(args, listing.created_at_params()
                         | listing.created_at_params("charge_date")
                         | {"customer", "mandate", "status", "currency", "creditor",
                            "subscription", "sort_field", "sort_direction"})
    if args.get("customer") and args.get("creditor"):
        raise errors.query_validation("creditor", "cannot be combined with customer")
    sort_field, sort_direction = args.get("sort_field"), args.get("sort_direction")
    if sort_field is not None and sort_field not in SORT_FIELDS:
        raise errors.query_validation("sort_field", "must be one of charge_date, amount")
    if sort_direction is not None and sort_direction not in ("asc", "desc"):
        raise errors.query_validation("sort_direction", "must be one of asc, desc")
    filters = [
        listing.compare_filter(args, "created_at", lambda r: r["created_at"]),
        listing.compare_filter(args, "charge_date", lambda r: r["charge_date"],
                               parse=_parse_date),
        listing.equals(args, "mandate", lambda r: r["links"]["mandate"]),
        listing.equals(args, "status", lambda r: r["status"]),
        listing.equals(args, "currency", lambda r: r["currency"]),
        listing.equals(args, "creditor", lambda r: r["links"]["creditor"]),
        listing.equals(args, "subscription", lambda r: r["links"].get("subscription")),
    ]
    customer = args.get("customer")
    if customer:
        # Payments link mandates, mandates link customers.
        mandates = {m["id"] for m in state.resources["mandates"].values()
                    if m["links"]["customer"] == customer}
        filters.append(lambda r: r["links"]["mandate"] in mandates)
    records = state.newest_first("payments")
    if sort_field is not None:
        records.sort(key=SORT_FIELDS[sort_field], reverse=sort_direction == "desc")
    elif sort_direction == "asc":
        records.reverse()
    return listing.respond(records, args, "payments", filters, public)


def _parse_date(value: str):
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def payments_update(state, call, resource_id):
    """PUT accepts ``metadata`` and ``retry_if_possible`` (payment update request)."""
    payment = state.get("payments", resource_id)
    data = validation.envelope(call.body, "payments")
    check = errors.Validation("payments")
    validation.reject_unknown(data, {"metadata", "retry_if_possible"}, check)
    metadata = validation.metadata(data.get("metadata"), check) if "metadata" in data else None
    retry = data.get("retry_if_possible")
    if "retry_if_possible" in data and not isinstance(retry, bool):
        check.add("retry_if_possible", "must be a boolean")
    check.raise_if_any()
    if metadata is not None:
        payment["metadata"] = metadata
    if "retry_if_possible" in data:
        payment["retry_if_possible"] = retry
    return 200, {"payments": public(payment)}


def _action_metadata(call) -> dict:
    data = validation.action_data(call.body)
    check = errors.Validation("data")
    validation.reject_unknown(data, {"metadata", "charge_date"}, check)
    metadata = validation.metadata(data.get("metadata"), check)
    charge_date = validation.iso_date(data, "charge_date", check)
    check.raise_if_any()
    return {"metadata": metadata, "charge_date": charge_date}


def payments_cancel(state, call, resource_id):
    payment = state.get("payments", resource_id)
    metadata = _action_metadata(call)["metadata"]
    if payment["status"] not in ("pending_submission", "pending_customer_approval"):
        raise errors.invalid_state("cancellation_failed",
                                   "This payment has already been submitted to the banks and "
                                   "cannot be cancelled")
    lifecycle.payment_cancel(state, payment, state.clock.now(),
                             lifecycle.details("api", "payment_cancelled"), metadata=metadata)
    return 200, {"payments": public(payment)}


def payments_retry(state, call, resource_id):
    payment = state.get("payments", resource_id)
    data = _action_metadata(call)
    mandate = state.get("mandates", payment["links"]["mandate"])
    if payment["status"] != "failed":
        raise errors.invalid_state("retry_failed", "Only failed payments can be retried")
    if mandate["status"] not in lifecycle.MANDATE_USABLE:
        raise errors.invalid_state("retry_failed", "The mandate for this payment is inactive")
    if payment["_retries"] >= 3:
        raise errors.invalid_state("retry_failed", "This payment has been retried 3 times")
    lifecycle.payment_resubmit(state, payment, state.clock.now(),
                               lifecycle.details("api", "payment_retried"),
                               charge_date=data["charge_date"], metadata=data["metadata"])
    return 200, {"payments": public(payment)}


# -- refunds ------------------------------------------------------------------------------

REFUNDABLE = ("confirmed", "paid_out")


def refunds_create(state, call):
    data = validation.envelope(call.body, "refunds")
    check = errors.Validation("refunds")
    validation.reject_unknown(data, {"amount", "total_amount_confirmation", "reference",
                                     "metadata", "links"}, check)
    amount = validation.positive_integer(data, "amount", check)
    links = validation.links(data, check, {"payment", "mandate"})
    # "Must be supplied if links[payment] is present."
    confirmation = validation.positive_integer(data, "total_amount_confirmation", check,
                                               required=bool(links.get("payment")))
    metadata = validation.metadata(data.get("metadata"), check)
    if links.get("mandate"):
        check.add("mandate", "mandate refunds are not enabled", "links/mandate")
    payment = state.find("payments", links.get("payment"))
    if payment is None and not links.get("mandate"):
        check.add("payment", "not found" if links.get("payment") else "is required",
                  "links/payment")
    reference = validation.optional_string(
        data, "reference", check,
        max_length=REFUND_REFERENCE_MAX.get(payment["scheme"]) if payment else None)
    check.raise_if_any()
    if payment["status"] not in REFUNDABLE:
        raise errors.invalid_state("refund_payment_invalid_state",
                                   "Refunds can only be made against collected payments")
    if confirmation is not None and confirmation != payment["amount_refunded"] + amount:
        raise errors.invalid_state("total_amount_confirmation_invalid",
                                   "total_amount_confirmation does not match the total refunded "
                                   "for the payment after this refund")
    if payment["amount_refunded"] + amount > payment["amount"]:
        raise errors.invalid_state("available_refund_amount_insufficient",
                                   "The payment does not have enough refundable amount left")
    payment["amount_refunded"] += amount
    today = state.clock.today()
    submit_on = add_working_days(today, 1, payment["scheme"])
    refund = state.add("refunds", {
        "id": state.new_id("refunds"),
        "created_at": state.now_iso(),
        "amount": amount,
        "currency": payment["currency"],
        "reference": reference,
        "status": "pending_submission",
        "metadata": metadata,
        "fx": {"fx_currency": payment["currency"], "fx_amount": None, "exchange_rate": None,
               "estimated_exchange_rate": None},
        "links": {"payment": payment["id"], "mandate": payment["links"]["mandate"]},
        "_submit_on": submit_on,
        "_paid_on": add_working_days(submit_on, 1, payment["scheme"]),
    })
    state.emit("refunds", "created", {"refund": refund["id"], "payment": payment["id"],
                                      "mandate": payment["links"]["mandate"]},
               lifecycle.details("api", "refund_created"), resource=refund)
    return 201, {"refunds": public(refund)}


def refunds_get(state, call, resource_id):
    return 200, {"refunds": public(state.get("refunds", resource_id))}


def refunds_list(state, call):
    args = call.args
    listing.check_params(args, listing.created_at_params() | {"payment", "mandate",
                                                              "refund_type"})
    refund_type = args.get("refund_type", "payment")
    if refund_type not in ("payment", "mandate"):
        raise errors.query_validation("refund_type", "must be one of payment, mandate")
    filters = [
        listing.compare_filter(args, "created_at", lambda r: r["created_at"]),
        listing.equals(args, "payment", lambda r: r["links"]["payment"]),
        listing.equals(args, "mandate", lambda r: r["links"]["mandate"]),
        # Refunds against payments carry links.payment; mandate refunds do not.
        lambda r: bool(r["links"].get("payment")) == (refund_type == "payment"),
    ]
    return listing.respond(state.newest_first("refunds"), args, "refunds", filters, public)


def refunds_update(state, call, resource_id):
    return update_metadata_only(state, call, "refunds", resource_id)
