"""Subscriptions and instalment schedules: plans that create payments themselves (notes
section 5.8; field rules from the API reference as generated into the official clients).

Payments a plan creates carry ``links.subscription`` / ``links.instalment_schedule``, the
plan's amount and currency, its ``name`` as description and ``payment_reference`` as
reference, and **no metadata** -- then follow the ordinary payment timetable (lifecycle.py).

- A subscription creates each payment on the day its charge date comes within the scheme's
  lead time (charge date - lead working days; at once when that day has passed), emitting
  ``payments created`` (origin gocardless, cause payment_created) and ``subscriptions
  payment_created``; after its last payment (``count`` / ``end_date``) it is ``finished``.
- An instalment schedule is ``pending`` when created; at the next API call or clock step it
  creates all its payments (charge dates rolled forward to the mandate's
  ``next_possible_charge_date``; ``payments created`` with origin api, cause
  instalment_schedule_created) and turns ``active``, or ``creation_failed`` with
  ``payment_errors`` when an instalment is not a valid payment. Then ``errored`` when one of
  its payments fails, ``active`` again (``resumed``) once none is failed, ``completed`` when
  every payment is collected (confirmed or paid out).

Callers hold ``state.lock``.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

from . import errors, listing, validation
from .clock import iso_timestamp, roll_forward, subtract_working_days
from .lifecycle import MANDATE_USABLE, next_possible_charge_date, payment_cancel, payment_schedule
from .payments import CURRENCIES, new_payment
from .schemes import SCHEMES
from .state import public

INTERVAL_UNITS = ("weekly", "monthly", "yearly")
MONTHS = tuple(calendar.month_name[m].lower() for m in range(1, 13))
# "Must result in at least one charge date per year."
MAX_INTERVAL = {"weekly": 52, "monthly": 12, "yearly": 1}
MAX_AMENDMENTS = 10
UPCOMING = 10

SUBSCRIPTION_FIELDS = {"amount", "currency", "name", "interval_unit", "interval",
                       "day_of_month", "month", "start_date", "end_date", "count",
                       "payment_reference", "retry_if_possible", "app_fee", "metadata", "links"}
SUBSCRIPTION_UPDATE_FIELDS = {"amount", "app_fee", "metadata", "name", "payment_reference",
                              "retry_if_possible"}
SCHEDULE_FIELDS = {"name", "currency", "total_amount", "instalments", "payment_reference",
                   "retry_if_possible", "app_fee", "metadata", "links"}


def _details(origin: str, cause: str, description: str) -> dict:
    return {"origin": origin, "cause": cause, "description": description}


def _at(state, at: datetime | None) -> datetime:
    return at or state.clock.now()


# -- charge dates -------------------------------------------------------------------------

def _day_in_month(year: int, month: int, day_of_month: int | None, fallback: int) -> date:
    last = calendar.monthrange(year, month)[1]
    if day_of_month == -1:
        return date(year, month, last)
    return date(year, month, min(day_of_month or fallback, last))


def _cycle_date(plan: dict, cycle: int) -> date:
    """The (unrolled) charge date of the ``cycle``-th interval after the anchor."""
    anchor: date = plan["_anchor"]
    unit, interval = plan["interval_unit"], plan["interval"]
    if unit == "weekly":
        return date.fromordinal(anchor.toordinal() + 7 * interval * cycle)
    months = (interval if unit == "monthly" else 12 * interval) * cycle
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    return _day_in_month(year, month + 1, plan.get("day_of_month"), plan["_anchor_day"])


def _first_matching(base: date, unit: str, day_of_month: int | None,
                    month: str | None) -> date:
    """The first date on or after ``base`` that fits ``day_of_month`` / ``month``."""
    if unit == "weekly" or (day_of_month is None and month is None):
        return base
    month_number = MONTHS.index(month) + 1 if month else None
    year, current = base.year, base.month
    for _ in range(25):
        if month_number is None or current == month_number:
            candidate = _day_in_month(year, current, day_of_month, base.day)
            if candidate >= base:
                return candidate
        year, current = (year + 1, 1) if current == 12 else (year, current + 1)
    raise AssertionError("no matching date within two years")


def _scheme_of(state, plan: dict):
    return SCHEMES[state.get("mandates", plan["links"]["mandate"])["scheme"]]


def _ended(plan: dict, cycle: int) -> bool:
    if plan.get("count") is not None and plan["_created"] >= plan["count"]:
        return True
    end = plan.get("_end")
    return end is not None and _cycle_date(plan, cycle) >= end


def upcoming_payments(state, plan: dict) -> list[dict]:
    """Up to 10 payments still to be created: charge date (working day) and amount."""
    if plan["status"] not in ("active", "pending_customer_approval") and not (
            plan["status"] == "paused" and plan.get("_resume_cycle") is not None):
        return []
    scheme = _scheme_of(state, plan)
    upcoming, cycle, created = [], plan["_cycle"], plan["_created"]
    if plan["status"] == "paused":
        cycle = plan["_resume_cycle"]
    while len(upcoming) < UPCOMING:
        if plan.get("count") is not None and created >= plan["count"]:
            break
        day = _cycle_date(plan, cycle)
        if plan.get("_end") is not None and day >= plan["_end"]:
            break
        upcoming.append({"charge_date": roll_forward(day, scheme.name).isoformat(),
                         "amount": plan["amount"]})
        cycle, created = cycle + 1, created + 1
    return upcoming


def _earliest_after_resume(state, plan: dict) -> str | None:
    if plan["status"] != "paused":
        return None
    return roll_forward(_cycle_date(plan, _resume_cycle(state, plan)),
                        _scheme_of(state, plan).name).isoformat()


def _resume_cycle(state, plan: dict) -> int:
    """The first cycle whose charge date the mandate can still make, from today."""
    mandate = state.get("mandates", plan["links"]["mandate"])
    earliest = next_possible_charge_date(mandate, state.clock.today()) or state.clock.today()
    cycle = plan["_cycle"]
    while _cycle_date(plan, cycle) < earliest:
        cycle += 1
    return cycle


def render_subscription(state, plan: dict) -> dict:
    body = public(plan)
    body["upcoming_payments"] = upcoming_payments(state, plan)
    body["earliest_charge_date_after_resume"] = _earliest_after_resume(state, plan)
    return body


def _count_end_date(plan: dict, first_cycle: int) -> str | None:
    """The charge date of the last payment of a subscription with a ``count``."""
    left = plan["count"] - plan["_created"]
    return _cycle_date(plan, first_cycle + left - 1).isoformat() if left > 0 else None


# -- subscriptions: creation ----------------------------------------------------------------

def _integer(data: dict, field: str, check, *, minimum=None, maximum=None, allowed=()):
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        check.add(field, "must be a number")
        return None
    if value in allowed:
        return value
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        check.add(field, "is invalid")
        return None
    return value


def _mandate_for(state, data: dict, check) -> dict | None:
    links = validation.links(data, check, {"mandate"})
    mandate = state.find("mandates", links.get("mandate"))
    if mandate is None:
        check.add("mandate", "not found" if links.get("mandate") else "is required",
                  "links/mandate")
    return mandate


def _amount_in_scheme(scheme, amount, check, field="amount", pointer=None) -> None:
    if amount is None:
        return
    if amount < scheme.minimum:
        check.add(field, f"must be greater than or equal to {scheme.minimum}", pointer)
    if amount > scheme.maximum:
        check.add(field, f"must be less than or equal to {scheme.maximum}", pointer)


def subscriptions_create(state, call):
    data = validation.envelope(call.body, "subscriptions")
    check = errors.Validation("subscriptions")
    validation.reject_unknown(data, SUBSCRIPTION_FIELDS, check)
    amount = validation.positive_integer(data, "amount", check)
    currency = data.get("currency")
    if currency is None:
        check.add("currency", "is required")
    elif currency not in CURRENCIES:
        check.add("currency", "is not a supported currency")
    unit = data.get("interval_unit")
    if unit is None:
        check.add("interval_unit", "is required")
    elif unit not in INTERVAL_UNITS:
        check.add("interval_unit", "must be one of weekly, monthly, yearly")
    interval = _integer(data, "interval", check, minimum=1,
                        maximum=MAX_INTERVAL.get(unit, 52))
    day_of_month = _integer(data, "day_of_month", check, minimum=1, maximum=28,
                            allowed=(-1,))
    month = data.get("month")
    if month is not None and (month not in MONTHS or unit != "yearly"):
        check.add("month", "must be a lower-case month name and needs interval_unit yearly")
    if day_of_month is not None and unit == "weekly":
        check.add("day_of_month", "cannot be given for a weekly subscription")
    count = _integer(data, "count", check, minimum=1)
    start_date = validation.iso_date(data, "start_date", check)
    end_date = validation.iso_date(data, "end_date", check)
    name = validation.optional_string(data, "name", check, max_length=255)
    metadata = validation.metadata(data.get("metadata"), check)
    retry = data.get("retry_if_possible", False)
    if not isinstance(retry, bool):
        check.add("retry_if_possible", "must be a boolean")
    app_fee = _integer(data, "app_fee", check, minimum=1)
    mandate = _mandate_for(state, data, check)
    check.raise_if_any()

    scheme = SCHEMES[mandate["scheme"]]
    if currency != scheme.currency:
        check.add("currency", f"must be {scheme.currency} for a {scheme.name} mandate")
    _amount_in_scheme(scheme, amount, check)
    reference = validation.optional_string(data, "payment_reference", check,
                                           max_length=scheme.reference_max)
    check.raise_if_any()
    if mandate["status"] not in MANDATE_USABLE:
        raise errors.invalid_state("mandate_is_inactive",
                                   "The mandate for this subscription is inactive")
    earliest = next_possible_charge_date(mandate, state.clock.today())
    if start_date is not None and start_date < earliest:
        check.add("start_date", "must be on or after mandate's next_possible_charge_date "
                  f"({earliest.isoformat()})")
    anchor = _first_matching(start_date or earliest, unit, day_of_month, month)
    if end_date is not None and end_date <= anchor:
        check.add("end_date", "must be after start_date")
    check.raise_if_any()

    subscription = state.add("subscriptions", {
        "id": state.new_id("subscriptions"),
        "created_at": state.now_iso(),
        "amount": amount,
        "currency": currency,
        "status": "active",
        "name": name,
        "start_date": anchor.isoformat(),
        "end_date": end_date.isoformat() if end_date else None,
        "interval": interval or 1,
        "interval_unit": unit,
        "day_of_month": day_of_month,
        "month": month,
        "count": count,
        "payment_reference": reference,
        "app_fee": app_fee,
        "retry_if_possible": retry,
        "parent_plan_paused": False,
        "metadata": metadata,
        "links": {"mandate": mandate["id"]},
        "_anchor": anchor,
        "_anchor_day": anchor.day,
        "_end": end_date,
        "_cycle": 0,
        "_created": 0,
        "_amendments": 0,
        "_resume_cycle": None,
    })
    state.emit("subscriptions", "created", {"subscription": subscription["id"]},
               _details("api", "subscription_created", "Subscription created via the API."),
               resource=subscription)
    subscription_create_due(state, subscription, state.clock.today(), state.clock.now())
    return 201, {"subscriptions": render_subscription(state, subscription)}


def subscription_create_due(state, plan: dict, day: date, at: datetime) -> None:
    """Create every payment whose creation day has come (and resume a pause that is over)."""
    if plan["status"] == "paused" and plan.get("_resume_cycle") is not None:
        if _creation_day(state, plan, plan["_resume_cycle"]) > day:
            return
        plan["_cycle"], plan["_resume_cycle"] = plan["_resume_cycle"], None
        plan["status"] = "active"
        state.emit("subscriptions", "resumed", {"subscription": plan["id"]},
                   _details("gocardless", "subscription_resumed",
                            "The subscription was resumed."), resource=plan, at=at)
    if plan["status"] != "active":
        return
    mandate = state.get("mandates", plan["links"]["mandate"])
    while not _ended(plan, plan["_cycle"]) and _creation_day(state, plan, plan["_cycle"]) <= day:
        if mandate["status"] not in MANDATE_USABLE:
            return
        _create_payment(state, plan, mandate, _cycle_date(plan, plan["_cycle"]), day, at)
        plan["_cycle"] += 1
        plan["_created"] += 1
    if _ended(plan, plan["_cycle"]):
        plan["status"] = "finished"
        state.emit("subscriptions", "finished", {"subscription": plan["id"]},
                   _details("gocardless", "subscription_finished",
                            "The subscription has finished."), resource=plan, at=at)


def _creation_day(state, plan: dict, cycle: int) -> date:
    scheme = _scheme_of(state, plan)
    charge = roll_forward(_cycle_date(plan, cycle), scheme.name)
    return subtract_working_days(charge, scheme.lead_days, scheme.name)


def _create_payment(state, plan: dict, mandate: dict, charge: date, day: date,
                    at: datetime) -> dict:
    earliest = next_possible_charge_date(mandate, day) or day
    payment = new_payment(state, mandate, plan["amount"], charge_date=max(charge, earliest),
                          reference=plan["payment_reference"], description=plan["name"],
                          retry_if_possible=plan["retry_if_possible"], app_fee=plan["app_fee"])
    payment_schedule(payment, max(charge, earliest), day)  # timetable from the day of creation
    payment["created_at"] = iso_timestamp(at)
    payment["links"]["subscription"] = plan["id"]
    state.emit("payments", "created", {"payment": payment["id"], "subscription": plan["id"]},
               _details("gocardless", "payment_created", "Payment created by a subscription."),
               resource=payment, at=at)
    state.emit("subscriptions", "payment_created",
               {"subscription": plan["id"], "payment": payment["id"]},
               _details("gocardless", "payment_created", "Payment created by a subscription."),
               resource=plan, at=at)
    return payment


# -- subscriptions: reading, changing ---------------------------------------------------------

def subscriptions_get(state, call, resource_id):
    return 200, {"subscriptions": render_subscription(state, state.get("subscriptions",
                                                                        resource_id))}


STATUSES = ("pending_customer_approval", "customer_approval_denied", "active", "finished",
            "cancelled", "paused")


def _mandates_of_customer(state, customer: str) -> set[str]:
    return {m["id"] for m in state.resources["mandates"].values()
            if m["links"]["customer"] == customer}


def _status_filter(args, allowed, at_most: int):
    wanted = args.get("status")
    if wanted is None:
        return lambda record: True
    values = wanted.split(",")
    if len(values) > at_most or any(v not in allowed for v in values):
        raise errors.query_validation("status", f"must be at most {at_most} valid statuses")
    return lambda record: record["status"] in values


def _plan_list(state, call, kind, statuses, at_most, render):
    args = call.args
    listing.check_params(args, listing.created_at_params() | {"customer", "mandate", "status"})
    filters = [
        listing.compare_filter(args, "created_at", lambda r: r["created_at"]),
        listing.equals(args, "mandate", lambda r: r["links"]["mandate"]),
        _status_filter(args, statuses, at_most),
    ]
    if args.get("customer"):
        mandates = _mandates_of_customer(state, args["customer"])
        filters.append(lambda r: r["links"]["mandate"] in mandates)
    return listing.respond(state.newest_first(kind), args, kind, filters, render)


def subscriptions_list(state, call):
    return _plan_list(state, call, "subscriptions", STATUSES, 4,
                      lambda r: render_subscription(state, r))


def subscriptions_update(state, call, resource_id):
    plan = state.get("subscriptions", resource_id)
    data = validation.envelope(call.body, "subscriptions")
    check = errors.Validation("subscriptions")
    validation.reject_unknown(data, SUBSCRIPTION_UPDATE_FIELDS, check)
    amount = validation.positive_integer(data, "amount", check, required=False)
    name = validation.optional_string(data, "name", check, max_length=255)
    metadata = validation.metadata(data.get("metadata"), check) if "metadata" in data else None
    if "retry_if_possible" in data and not isinstance(data["retry_if_possible"], bool):
        check.add("retry_if_possible", "must be a boolean")
    app_fee = _integer(data, "app_fee", check, minimum=1)
    scheme = _scheme_of(state, plan)
    _amount_in_scheme(scheme, amount, check)
    reference = validation.optional_string(data, "payment_reference", check,
                                           max_length=scheme.reference_max)
    check.raise_if_any()
    if plan["status"] == "finished":
        raise errors.invalid_state("subscription_already_ended",
                                   "The subscription has taken all its payments")
    if plan["status"] not in ("active", "pending_customer_approval"):
        raise errors.invalid_state("subscription_not_active", "The subscription is not active")
    amended = amount is not None and amount != plan["amount"]
    if amended and plan["_amendments"] >= MAX_AMENDMENTS:
        raise errors.invalid_state("number_of_subscription_amendments_exceeded",
                                   "The subscription amount has already been changed 10 times")
    for field, value in (("name", name), ("payment_reference", reference),
                         ("app_fee", app_fee)):
        if field in data:
            plan[field] = value
    if "retry_if_possible" in data:
        plan["retry_if_possible"] = data["retry_if_possible"]
    if metadata is not None:
        plan["metadata"] = metadata
    if amended:
        plan["amount"] = amount
        plan["_amendments"] += 1
        state.emit("subscriptions", "amended", {"subscription": plan["id"]},
                   _details("api", "subscription_amended",
                            "Subscription amount has been amended."), resource=plan)
    return 200, {"subscriptions": render_subscription(state, plan)}


def _action_data(call, extra=()) -> dict:
    data = validation.action_data(call.body)
    check = errors.Validation("data")
    validation.reject_unknown(data, {"metadata", *extra}, check)
    data = dict(data)
    data["metadata"] = validation.metadata(data.get("metadata"), check)
    if "pause_cycles" in data:
        data["pause_cycles"] = _integer(data, "pause_cycles", check, minimum=1)
    check.raise_if_any()
    return data


def subscriptions_pause(state, call, resource_id):
    plan = state.get("subscriptions", resource_id)
    data = _action_data(call, ("pause_cycles",))
    cycles = data.get("pause_cycles")
    if plan["status"] in ("finished", "cancelled"):
        raise errors.invalid_state("subscription_already_ended", "The subscription has ended")
    if plan["status"] == "paused":
        if plan.get("_resume_cycle") is None:
            raise errors.invalid_state("subscription_cannot_be_paused",
                                       "The subscription is already paused")
        if cycles is not None:
            raise errors.invalid_state("subscription_paused_cannot_update_cycles",
                                       "The subscription is already paused for a number of "
                                       "cycles")
    elif plan.get("end_date") is not None and plan.get("count") is None:
        raise errors.invalid_state("subscription_cannot_be_paused",
                                   "Only subscriptions with a count or without an end can be "
                                   "paused")
    elif plan["status"] != "active":
        raise errors.invalid_state("subscription_cannot_be_paused",
                                   "The subscription cannot be paused")
    if cycles is not None:
        plan["_resume_cycle"] = _resume_cycle(state, plan) + cycles
        if plan.get("count") is not None:
            plan["end_date"] = _count_end_date(plan, plan["_resume_cycle"])
    else:
        plan["_resume_cycle"] = None
        if plan.get("count") is not None:
            plan["end_date"] = None
    plan["status"] = "paused"
    state.emit("subscriptions", "paused", {"subscription": plan["id"]},
               _details("api", "subscription_paused", "The subscription has been paused."),
               resource=plan, metadata=data["metadata"])
    return 200, {"subscriptions": render_subscription(state, plan)}


def subscriptions_resume(state, call, resource_id):
    plan = state.get("subscriptions", resource_id)
    data = _action_data(call)
    if plan["status"] != "paused":
        raise errors.invalid_state("subscription_not_paused", "The subscription is not paused")
    plan["_cycle"] = _resume_cycle(state, plan)
    plan["_resume_cycle"] = None
    plan["status"] = "active"
    if plan.get("count") is not None:
        plan["end_date"] = _count_end_date(plan, plan["_cycle"])
    state.emit("subscriptions", "resumed", {"subscription": plan["id"]},
               _details("api", "subscription_resumed", "The subscription was resumed."),
               resource=plan, metadata=data["metadata"])
    subscription_create_due(state, plan, state.clock.today(), state.clock.now())
    return 200, {"subscriptions": render_subscription(state, plan)}


def subscriptions_cancel(state, call, resource_id):
    plan = state.get("subscriptions", resource_id)
    data = _action_data(call)
    if plan["status"] in ("cancelled", "finished"):
        raise errors.invalid_state("cancellation_failed",
                                   "The subscription is already cancelled or finished")
    event = _end_plan(state, plan, "subscriptions", "subscription",
                      _details("api", "subscription_cancelled",
                               "The subscription has been cancelled at your request."),
                      state.clock.now(), metadata=data["metadata"])
    # "Any metadata supplied to this endpoint will be stored on the payment cancellation
    # event it causes."
    _cancel_pending_payments(state, "subscription", plan["id"], state.clock.now(),
                             _details("api", "payment_cancelled",
                                      "This payment was cancelled at your request."),
                             event["id"], data["metadata"])
    return 200, {"subscriptions": render_subscription(state, plan)}


def _end_plan(state, plan, kind, link, event_details, at, *, metadata=None,
              parent_event=None) -> dict:
    plan["status"] = "cancelled"
    plan["_resume_cycle"] = None
    return state.emit(kind, "cancelled", {link: plan["id"], "parent_event": parent_event},
                      event_details, resource=plan, metadata=metadata, at=at)


def _cancel_pending_payments(state, link, plan_id, at, event_details, parent_event,
                             metadata=None) -> None:
    for payment in state.resources["payments"].values():
        if payment["links"].get(link) == plan_id and payment["status"] in (
                "pending_customer_approval", "pending_submission"):
            payment_cancel(state, payment, at, event_details, metadata=metadata,
                           parent_event=parent_event)


# -- instalment schedules -----------------------------------------------------------------------

def _instalments_with_dates(value, check) -> list[dict]:
    if not isinstance(value, list) or not value:
        check.add("instalments", "must be a non-empty list")
        return []
    instalments = []
    for index, item in enumerate(value):
        pointer = f"instalments/{index}"
        if not isinstance(item, dict):
            check.add("instalments", "must be objects", pointer)
            continue
        for key in item:
            if key not in ("amount", "charge_date", "description"):
                check.add(key, "is not a permitted parameter", f"{pointer}/{key}")
        amount = item.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            check.add("amount", "must be a number greater than 0", f"{pointer}/amount")
            amount = None
        charge = None
        if item.get("charge_date") is not None:
            charge = validation.iso_date({"charge_date": item["charge_date"]}, "charge_date",
                                         _Pointing(check, f"{pointer}/charge_date"))
        instalments.append({"amount": amount, "charge_date": charge,
                            "description": item.get("description")})
    return instalments


class _Pointing:
    """A Validation view that puts every error at one pointer (nested fields)."""

    def __init__(self, check, pointer: str) -> None:
        self.check, self.pointer = check, pointer

    def add(self, field, message, pointer=None) -> None:
        self.check.add(field, message, self.pointer)


def _instalments_with_schedule(state, value, mandate, check) -> list[dict]:
    if not isinstance(value, dict):
        check.add("instalments", "must be an object")
        return []
    for key in value:
        if key not in ("start_date", "interval_unit", "interval", "amounts"):
            check.add(key, "is not a permitted parameter", f"instalments/{key}")
    unit = value.get("interval_unit")
    if unit not in INTERVAL_UNITS:
        check.add("interval_unit", "must be one of weekly, monthly, yearly",
                  "instalments/interval_unit")
    interval = value.get("interval")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        check.add("interval", "must be a number greater than or equal to 1",
                  "instalments/interval")
    amounts = value.get("amounts")
    if not isinstance(amounts, list) or not amounts or any(
            isinstance(a, bool) or not isinstance(a, int) or a <= 0 for a in amounts):
        check.add("amounts", "must be a non-empty list of numbers greater than 0",
                  "instalments/amounts")
    start = None
    if value.get("start_date") is not None:
        start = validation.iso_date({"start_date": value["start_date"]}, "start_date",
                                    _Pointing(check, "instalments/start_date"))
    if check.errors or mandate is None:
        return []
    earliest = next_possible_charge_date(mandate, state.clock.today()) or state.clock.today()
    if start is not None and start < earliest:
        check.add("start_date", "must be on or after mandate's next_possible_charge_date "
                  f"({earliest.isoformat()})", "instalments/start_date")
        return []
    anchor = start or earliest
    plan = {"_anchor": anchor, "_anchor_day": anchor.day, "interval_unit": unit,
            "interval": interval}
    return [{"amount": amount, "charge_date": _cycle_date(plan, index), "description": None}
            for index, amount in enumerate(amounts)]


def _create_schedule(state, call, mode: str | None):
    data = validation.envelope(call.body, "instalment_schedules")
    check = errors.Validation("instalment_schedules")
    validation.reject_unknown(data, SCHEDULE_FIELDS, check)
    name = validation.optional_string(data, "name", check, max_length=100)
    if not name:
        check.add("name", "is required")
    currency = data.get("currency")
    if currency is None:
        check.add("currency", "is required")
    elif currency not in CURRENCIES:
        check.add("currency", "is not a supported currency")
    total = validation.positive_integer(data, "total_amount", check)
    metadata = validation.metadata(data.get("metadata"), check)
    retry = data.get("retry_if_possible", False)
    if not isinstance(retry, bool):
        check.add("retry_if_possible", "must be a boolean")
    app_fee = _integer(data, "app_fee", check, minimum=1)
    mandate = _mandate_for(state, data, check)
    raw = data.get("instalments")
    if mode is None:  # POST /instalment_schedules: the shape of instalments tells which
        mode = "with_schedule" if isinstance(raw, dict) else "with_dates"
    if mode == "with_dates":
        instalments = _instalments_with_dates(raw, check)
    else:
        instalments = _instalments_with_schedule(state, raw, mandate, check)
    if total is not None and instalments and all(i["amount"] for i in instalments) and (
            sum(i["amount"] for i in instalments) != total):
        check.add("total_amount", "must equal the sum of the instalment amounts")
    check.raise_if_any()
    if mandate["status"] not in MANDATE_USABLE:
        raise errors.invalid_state("mandate_is_inactive",
                                   "The mandate for this instalment schedule is inactive")
    schedule = state.add("instalment_schedules", {
        "id": state.new_id("instalment_schedules"),
        "created_at": state.now_iso(),
        "name": name,
        "currency": currency,
        "total_amount": total,
        "status": "pending",
        "payment_errors": {},
        "metadata": metadata,
        "links": {"mandate": mandate["id"], "customer": mandate["links"]["customer"],
                  "payments": []},
        "_instalments": instalments,
        "_reference": data.get("payment_reference"),
        "_retry": retry,
        "_app_fee": app_fee,
    })
    state.emit("instalment_schedules", "created", {"instalment_schedule": schedule["id"]},
               _details("api", "instalment_schedule_created",
                        "Instalment schedule has been created via the API"),
               resource=schedule)
    return 201, {"instalment_schedules": public(schedule)}


def instalment_schedules_create(state, call):
    return _create_schedule(state, call, None)


def instalment_schedules_create_with_dates(state, call):
    return _create_schedule(state, call, "with_dates")


def instalment_schedules_create_with_schedule(state, call):
    return _create_schedule(state, call, "with_schedule")


def _payment_errors(scheme, schedule) -> dict:
    problems: dict[str, list[dict]] = {}
    for index, instalment in enumerate(schedule["_instalments"]):
        check = errors.Validation("payments")
        if schedule["currency"] != scheme.currency:
            check.add("currency", f"must be {scheme.currency} for a {scheme.name} mandate")
        _amount_in_scheme(scheme, instalment["amount"], check)
        if scheme.reference_max is not None and schedule["_reference"] and len(
                schedule["_reference"]) > scheme.reference_max:
            check.add("reference", f"is too long (maximum is {scheme.reference_max} "
                      "characters)")
        if check.errors:
            problems[str(index)] = [{"field": e["field"], "message": e["message"]}
                                    for e in check.errors]
    return problems


def _activate_schedule(state, schedule: dict, at: datetime) -> None:
    """The asynchronous part of creation: make the payments, or fail."""
    mandate = state.get("mandates", schedule["links"]["mandate"])
    scheme = SCHEMES[mandate["scheme"]]
    problems = _payment_errors(scheme, schedule)
    if problems or mandate["status"] not in MANDATE_USABLE:
        schedule["status"] = "creation_failed"
        schedule["payment_errors"] = problems or {"0": [
            {"field": "mandate", "message": "is inactive"}]}
        state.emit("instalment_schedules", "creation_failed",
                   {"instalment_schedule": schedule["id"]},
                   _details("api", "instalment_schedule_creation_failed",
                            "Instalment schedule failed to be created"),
                   resource=schedule, at=at)
        return
    today = at.date()
    earliest = next_possible_charge_date(mandate, today) or today
    for instalment in schedule["_instalments"]:
        charge = max(instalment["charge_date"] or earliest, earliest)
        payment = new_payment(state, mandate, instalment["amount"], charge_date=charge,
                              reference=schedule["_reference"],
                              description=instalment["description"] or schedule["name"],
                              retry_if_possible=schedule["_retry"],
                              app_fee=schedule["_app_fee"])
        payment_schedule(payment, charge, today)
        payment["created_at"] = iso_timestamp(at)
        payment["links"]["instalment_schedule"] = schedule["id"]
        schedule["links"]["payments"].append(payment["id"])
        state.emit("payments", "created",
                   {"payment": payment["id"], "instalment_schedule": schedule["id"]},
                   _details("api", "instalment_schedule_created",
                            "Payment created by an instalment schedule."),
                   resource=payment, at=at)
    schedule["status"] = "active"


COLLECTED = ("confirmed", "paid_out")
FAILED = ("failed", "charged_back")


def _sync_schedule(state, schedule: dict, at: datetime) -> None:
    payments = [state.get("payments", pid) for pid in schedule["links"]["payments"]]
    failed = [p for p in payments if p["status"] in FAILED]
    link = {"instalment_schedule": schedule["id"]}
    if schedule["status"] == "active" and failed:
        schedule["status"] = "errored"
        late = any(p["links"].get("payout") for p in failed)
        cause = "instalment_schedule_errored_late" if late else "instalment_schedule_errored"
        description = ("One or more payments in the instalment schedule has had a late "
                       "failure" if late else "Instalment schedule has errored")
        state.emit("instalment_schedules", "errored", link,
                   _details("gocardless", cause, description), resource=schedule, at=at)
    elif schedule["status"] == "errored" and not failed:
        schedule["status"] = "active"
        state.emit("instalment_schedules", "resumed", link,
                   _details("gocardless", "instalment_schedule_resumed",
                            "Instalment schedule has resumed"), resource=schedule, at=at)
    if schedule["status"] == "active" and payments and all(
            p["status"] in COLLECTED for p in payments):
        schedule["status"] = "completed"
        state.emit("instalment_schedules", "completed", link,
                   _details("gocardless", "instalment_schedule_completed",
                            "Instalment schedule has completed"), resource=schedule, at=at)


def instalment_schedules_get(state, call, resource_id):
    return 200, {"instalment_schedules": public(state.get("instalment_schedules", resource_id))}


SCHEDULE_STATUSES = ("pending", "active", "creation_failed", "completed", "cancelled",
                     "errored")


def instalment_schedules_list(state, call):
    return _plan_list(state, call, "instalment_schedules", SCHEDULE_STATUSES, 5, public)


def instalment_schedules_update(state, call, resource_id):
    schedule = state.get("instalment_schedules", resource_id)
    data = validation.envelope(call.body, "instalment_schedules")
    check = errors.Validation("instalment_schedules")
    validation.reject_unknown(data, {"metadata"}, check)
    metadata = validation.metadata(data.get("metadata"), check)
    check.raise_if_any()
    schedule["metadata"] = metadata
    return 200, {"instalment_schedules": public(schedule)}


def instalment_schedules_cancel(state, call, resource_id):
    schedule = state.get("instalment_schedules", resource_id)
    data = _action_data(call)
    if schedule["status"] in ("cancelled", "completed"):
        raise errors.invalid_state("cancellation_failed",
                                   "The instalment schedule is already cancelled or completed")
    at = state.clock.now()
    event = _end_plan(state, schedule, "instalment_schedules", "instalment_schedule",
                      _details("api", "instalment_schedule_cancelled",
                               "Instalment schedule has been cancelled"), at,
                      metadata=data["metadata"])
    _cancel_pending_payments(state, "instalment_schedule", schedule["id"], at,
                             _details("api", "instalment_schedule_cancelled",
                                      "This payment was cancelled because its instalment "
                                      "schedule was cancelled."), event["id"])
    return 200, {"instalment_schedules": public(schedule)}


# -- the clock and the mandate ------------------------------------------------------------------

def process(state, day: date, at: datetime) -> None:
    """Plans' work up to ``day``: due subscription payments, pending schedules, statuses."""
    for plan in state.resources["subscriptions"].values():
        if plan["status"] in ("active", "paused"):
            subscription_create_due(state, plan, day, at)
    for schedule in state.resources["instalment_schedules"].values():
        if schedule["status"] == "pending":
            _activate_schedule(state, schedule, at)
        if schedule["status"] in ("active", "errored"):
            _sync_schedule(state, schedule, at)


def settle(state) -> None:
    """After every API call and clock step: schedules created since finish creating, and
    schedule statuses follow their payments (failures from scenarios, collections)."""
    process(state, state.clock.today(), state.clock.now())


def mandate_ended(state, mandate: dict, event: dict, at: datetime) -> None:
    """The mandate was cancelled/failed/expired: its plans are cancelled too."""
    origin, cause = event["details"]["origin"], event["details"]["cause"]
    for plan in state.resources["subscriptions"].values():
        if plan["links"]["mandate"] == mandate["id"] and plan["status"] in (
                "active", "paused", "pending_customer_approval"):
            sub_cause = "mandate_cancelled" if origin == "api" else cause
            _end_plan(state, plan, "subscriptions", "subscription",
                      _details(origin, sub_cause, "The subscription was cancelled because its "
                               "mandate was cancelled."), at, parent_event=event["id"])
    schedule_cause = {"failed": "mandate_failed", "expired": "mandate_expired"}.get(
        mandate["status"], "mandate_cancelled")
    for schedule in state.resources["instalment_schedules"].values():
        if schedule["links"]["mandate"] == mandate["id"] and schedule["status"] in (
                "pending", "active", "errored"):
            _end_plan(state, schedule, "instalment_schedules", "instalment_schedule",
                      _details("gocardless", schedule_cause,
                               "Instalment schedule has been cancelled"), at,
                      parent_event=event["id"])


def mandate_replaced(state, old_id: str, new_id: str) -> None:
    for kind in ("subscriptions", "instalment_schedules"):
        for plan in state.resources[kind].values():
            if plan["links"]["mandate"] == old_id and plan["status"] not in (
                    "cancelled", "finished", "completed", "creation_failed"):
                plan["links"]["mandate"] = new_id
