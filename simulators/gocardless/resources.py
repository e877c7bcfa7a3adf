"""Handlers for customers, bank accounts, mandates, creditors and billing requests/flows.

Each handler takes ``(state, call, **path_args)`` with ``state.lock`` held and returns
``(http_status, body)``; errors are raised as ``errors.ApiError``.
"""

from __future__ import annotations

from datetime import timedelta

from . import errors, lifecycle, listing, validation
from .clock import iso_timestamp
from .countries import ISO_3166_ALPHA2
from .schemes import DEFAULT_SCHEME_FOR_CURRENCY, SCHEMES
from .state import public

CUSTOMER_FIELDS = {
    "email", "given_name", "family_name", "company_name", "address_line1", "address_line2",
    "address_line3", "city", "region", "postal_code", "country_code", "language",
    "phone_number", "danish_identity_number", "swedish_identity_number",
}
FLOW_LIFETIME = timedelta(days=7)  # "Each flow currently lasts for 7 days"


def render_mandate(state, mandate: dict) -> dict:
    body = public(mandate)
    charge = lifecycle.next_possible_charge_date(mandate, state.clock.today())
    body["next_possible_charge_date"] = charge.isoformat() if charge else None
    return body


def _list(state, call, kind, filters, render=public):
    return listing.respond(state.newest_first(kind), call.args, kind, filters, render)


def _equals(call, param, value_of):
    return listing.equals(call.args, param, value_of)


def update_metadata_only(state, call, kind, resource_id, render=public):
    """PUT for resources whose only updatable field is ``metadata``."""
    resource = state.get(kind, resource_id)
    data = validation.envelope(call.body, kind)
    check = errors.Validation(kind)
    validation.reject_unknown(data, {"metadata"}, check)
    metadata = validation.metadata(data.get("metadata"), check)
    check.raise_if_any()
    resource["metadata"] = metadata
    return 200, {kind: render(resource)}


# -- customers ----------------------------------------------------------------------------

def new_customer(state, fields: dict, metadata=None) -> dict:
    customer = {"id": state.new_id("customers"), "created_at": state.now_iso()}
    customer.update({f: fields.get(f) for f in sorted(CUSTOMER_FIELDS)})
    customer["language"] = customer["language"] or "en"
    customer["metadata"] = dict(metadata or {})
    return state.add("customers", customer)


def _customer_fields(data: dict, check: errors.Validation) -> dict:
    validation.reject_unknown(data, CUSTOMER_FIELDS | {"metadata"}, check)
    fields = {}
    for field in CUSTOMER_FIELDS:
        fields[field] = validation.optional_string(data, field, check, max_length=255)
    country_code_check(fields.get("country_code"), check)
    return fields


def country_code_check(value, check: errors.Validation, pointer: str = "country_code") -> None:
    """``country_code`` is an ISO 3166-1 alpha-2 code (upper case), else ``is invalid``."""
    if value is not None and value not in ISO_3166_ALPHA2:
        check.add("country_code", "is invalid", pointer)


def customers_create(state, call):
    data = validation.envelope(call.body, "customers")
    check = errors.Validation("customers")
    fields = _customer_fields(data, check)
    metadata = validation.metadata(data.get("metadata"), check)
    if not fields["company_name"] and not (fields["given_name"] and fields["family_name"]):
        check.add("given_name", "is required unless company_name is given")
        check.add("family_name", "is required unless company_name is given")
    check.raise_if_any()
    return 201, {"customers": public(new_customer(state, fields, metadata))}


def customers_get(state, call, resource_id):
    return 200, {"customers": public(state.get("customers", resource_id))}


CUSTOMER_SORT = {"name": lambda r: ((r["family_name"] or "").lower(),
                                     (r["given_name"] or "").lower(), r["id"]),
                 "company_name": lambda r: ((r["company_name"] or "").lower(), r["id"]),
                 "created_at": lambda r: (r["created_at"], r["id"])}


def customers_list(state, call):
    args = call.args
    listing.check_params(args, listing.created_at_params() | {
        "currency", "sort_field", "sort_direction", "action_required"})
    sort_field, sort_direction = args.get("sort_field"), args.get("sort_direction")
    if sort_field is not None and sort_field not in CUSTOMER_SORT:
        raise errors.query_validation("sort_field", "must be one of name, company_name, "
                                      "created_at")
    if sort_direction is not None and sort_direction not in ("asc", "desc"):
        raise errors.query_validation("sort_direction", "must be one of asc, desc")
    if args.get("action_required") not in (None, "true", "false"):
        raise errors.query_validation("action_required", "must be one of true, false")
    filters = [listing.compare_filter(args, "created_at", lambda r: r["created_at"])]
    currency = args.get("currency")
    if currency is not None:
        # A customer's currencies are those of their bank accounts.
        holders = {a["links"]["customer"] for a in state.resources["customer_bank_accounts"]
                   .values() if a["currency"] == currency}
        filters.append(lambda r: r["id"] in holders)
    if args.get("action_required") == "true":
        filters.append(lambda r: False)  # nothing in the simulator needs the merchant's action
    records = state.newest_first("customers")
    if sort_field is not None:
        records.sort(key=CUSTOMER_SORT[sort_field], reverse=sort_direction == "desc")
    elif sort_direction == "asc":
        records.reverse()
    return listing.respond(records, args, "customers", filters, public)


def customers_update(state, call, resource_id):
    customer = state.get("customers", resource_id)
    data = validation.envelope(call.body, "customers")
    check = errors.Validation("customers")
    fields = _customer_fields(data, check)
    metadata = validation.metadata(data.get("metadata"), check) if "metadata" in data else None
    check.raise_if_any()
    customer.update({k: v for k, v in fields.items() if k in data})
    if metadata is not None:
        customer["metadata"] = metadata
    return 200, {"customers": public(customer)}


# -- customer bank accounts ---------------------------------------------------------------

def new_bank_account(state, customer_id: str, currency: str, holder: str, *,
                     account_number: str = "55779911", iban: str | None = None) -> dict:
    digits = iban or account_number
    return state.add("customer_bank_accounts", {
        "id": state.new_id("customer_bank_accounts"),
        "created_at": state.now_iso(),
        "account_holder_name": holder,
        "account_number_ending": digits[-2:],
        "account_type": None,
        "bank_name": "SIMULATED BANK PLC",
        "country_code": iban[:2] if iban else {"GBP": "GB", "EUR": "DE"}.get(currency, "GB"),
        "currency": currency,
        "enabled": True,
        "metadata": {},
        "payer_name_verification_result": None,
        "links": {"customer": customer_id},
    })


def bank_accounts_get(state, call, resource_id):
    return 200, {"customer_bank_accounts": public(state.get("customer_bank_accounts",
                                                           resource_id))}


def bank_accounts_list(state, call):
    listing.check_params(call.args, listing.created_at_params() | {"customer", "enabled"})
    filters = [
        listing.compare_filter(call.args, "created_at", lambda r: r["created_at"]),
        _equals(call, "customer", lambda r: r["links"]["customer"]),
        _equals(call, "enabled", lambda r: str(r["enabled"]).lower()),
    ]
    return _list(state, call, "customer_bank_accounts", filters)


def bank_accounts_update(state, call, resource_id):
    return update_metadata_only(state, call, "customer_bank_accounts", resource_id)


def bank_accounts_disable(state, call, resource_id):
    account = state.get("customer_bank_accounts", resource_id)
    validation.action_data(call.body)
    if not account["enabled"]:
        raise errors.invalid_state("disable_failed", "Bank account is already disabled")
    account["enabled"] = False
    return 200, {"customer_bank_accounts": public(account)}


def restricted_create(state, call):
    """Live accounts without approved payment pages must onboard through Billing Requests."""
    raise errors.invalid_api_usage(
        403, "forbidden",
        "Creating customer bank accounts and mandates directly is restricted: use the Billing "
        "Requests API",
    )


# -- mandates -----------------------------------------------------------------------------

def new_mandate(state, customer_id: str, bank_account_id: str, scheme: str, *,
                status: str = "pending_submission", metadata=None, reference=None) -> dict:
    mandate_id = state.new_id("mandates")
    mandate = state.add("mandates", {
        "id": mandate_id,
        "created_at": state.now_iso(),
        "reference": reference or f"SIM-{mandate_id[-8:]}",
        "scheme": scheme,
        "status": status,
        "payments_require_approval": False,
        "mandate_type": "bank_debit",
        "funds_settlement": "managed",
        "consent_type": None,
        "consent_parameters": None,
        "authorisation_source": None,
        "verified_at": None,
        "next_possible_standard_ach_charge_date": None,
        "metadata": dict(metadata or {}),
        "links": {"creditor": state.creditor_id, "customer": customer_id,
                  "customer_bank_account": bank_account_id},
    })
    if status == "pending_submission":
        lifecycle.mandate_schedule_submission(mandate, state.clock.today())
    return mandate


def mandates_get(state, call, resource_id):
    return 200, {"mandates": render_mandate(state, state.get("mandates", resource_id))}


def mandates_list(state, call):
    listing.check_params(call.args, listing.created_at_params() | {
        "customer", "customer_bank_account", "status", "scheme", "reference", "creditor",
        "mandate_type"})
    owners = [name for name in ("creditor", "customer", "customer_bank_account")
              if call.args.get(name)]
    if len(owners) > 1:
        raise errors.query_validation(owners[1], f"cannot be combined with {owners[0]}")
    filters = [
        listing.compare_filter(call.args, "created_at", lambda r: r["created_at"]),
        _equals(call, "customer", lambda r: r["links"]["customer"]),
        _equals(call, "customer_bank_account", lambda r: r["links"]["customer_bank_account"]),
        _equals(call, "creditor", lambda r: r["links"]["creditor"]),
        _equals(call, "status", lambda r: r["status"]),
        _equals(call, "scheme", lambda r: r["scheme"]),
        _equals(call, "reference", lambda r: r["reference"]),
        _equals(call, "mandate_type", lambda r: r["mandate_type"]),
    ]
    return _list(state, call, "mandates", filters, lambda r: render_mandate(state, r))


def mandates_update(state, call, resource_id):
    return update_metadata_only(state, call, "mandates", resource_id,
                                lambda r: render_mandate(state, r))


def mandates_cancel(state, call, resource_id):
    mandate = state.get("mandates", resource_id)
    data = validation.action_data(call.body)
    check = errors.Validation("data")
    validation.reject_unknown(data, {"metadata"}, check)
    metadata = validation.metadata(data.get("metadata"), check)
    check.raise_if_any()
    if mandate["status"] not in (*lifecycle.MANDATE_USABLE, "suspended_by_payer"):
        raise errors.invalid_state("mandate_already_cancelled",
                                   "Mandate cannot be cancelled in its current state")
    lifecycle.mandate_end(
        state, mandate, "cancelled", "cancelled", lifecycle.details("api", "mandate_cancelled"),
        state.clock.now(), metadata=metadata,
        payment_details=lifecycle.details("api", "mandate_cancelled",
                                          description_key="payment_cancelled"),
    )
    return 200, {"mandates": render_mandate(state, mandate)}


def mandates_reinstate(state, call, resource_id):
    mandate = state.get("mandates", resource_id)
    data = validation.action_data(call.body)
    check = errors.Validation("data")
    validation.reject_unknown(data, {"metadata"}, check)
    metadata = validation.metadata(data.get("metadata"), check)
    check.raise_if_any()
    if mandate["status"] not in ("cancelled", "expired"):
        raise errors.invalid_state("mandate_not_inactive",
                                   "Mandate must be cancelled or expired to be reinstated")
    if mandate.get("_reinstatements", 0) >= 10:
        raise errors.invalid_state("mandate_not_inactive", "Mandate was reinstated too often")
    mandate["_reinstatements"] = mandate.get("_reinstatements", 0) + 1
    mandate["_reinstating"] = True
    mandate["status"] = "pending_submission"
    lifecycle.mandate_schedule_submission(mandate, state.clock.today())
    state.emit("mandates", "resubmission_requested", {"mandate": mandate["id"]},
               lifecycle.details("api", "resubmission_requested"), resource=mandate,
               metadata=metadata)
    return 200, {"mandates": render_mandate(state, mandate)}


# -- creditors ----------------------------------------------------------------------------

def creditors_get(state, call, resource_id):
    return 200, {"creditors": public(state.get("creditors", resource_id))}


def creditors_list(state, call):
    listing.check_params(call.args, listing.created_at_params())
    return _list(state, call, "creditors",
                 [listing.compare_filter(call.args, "created_at", lambda r: r["created_at"])])


# -- billing requests ---------------------------------------------------------------------

MANDATE_REQUEST_FIELDS = {"currency", "scheme", "verify", "description", "metadata",
                          "funds_settlement", "consent_type", "constraints", "sweeping",
                          "authorisation_source"}
VERIFY_VALUES = ("minimum", "recommended", "when_available", "always")


def _mandate_request(state, data, check: errors.Validation) -> dict | None:
    request = data.get("mandate_request")
    if not isinstance(request, dict):
        check.add("mandate_request", "or payment_request is required")
        return None
    for key in request:
        if key not in MANDATE_REQUEST_FIELDS:
            check.add(key, "is not a permitted parameter", f"mandate_request/{key}")
    currency, scheme = request.get("currency"), request.get("scheme")
    if scheme is None:
        scheme = DEFAULT_SCHEME_FOR_CURRENCY.get(currency)
    if scheme not in SCHEMES or scheme not in state.schemes:
        check.add("scheme", "is not enabled for this creditor", "mandate_request/scheme")
        return None
    if currency is not None and currency != SCHEMES[scheme].currency:
        check.add("currency", f"must be {SCHEMES[scheme].currency} for {scheme}",
                  "mandate_request/currency")
    verify = request.get("verify", "recommended")
    if verify not in VERIFY_VALUES:
        check.add("verify", "is invalid", "mandate_request/verify")
    metadata = validation.metadata(request.get("metadata"), check, "mandate_request/metadata")
    return {
        "currency": SCHEMES[scheme].currency,
        "scheme": scheme,
        "verify": verify,
        "description": request.get("description"),
        "funds_settlement": request.get("funds_settlement", "managed"),
        "consent_type": request.get("consent_type"),
        "constraints": request.get("constraints"),
        "sweeping": bool(request.get("sweeping", False)),
        "authorisation_source": request.get("authorisation_source"),
        "metadata": metadata,
        "links": {},
    }


def _actions(customer_collected: bool, *, bank_account: bool = True) -> list[dict]:
    def action(kind, status, requires=(), completes=()):
        return {"type": kind, "required": True, "completes_actions": list(completes),
                "requires_actions": list(requires), "status": status}

    actions = [
        action("choose_currency", "completed"),
        action("collect_customer_details", "completed" if customer_collected else "pending",
               requires=["choose_currency"]),
    ]
    if bank_account:
        actions += [
            action("collect_bank_account", "pending", completes=["choose_currency"]),
            action("confirm_payer_details", "pending",
                   requires=["collect_customer_details", "collect_bank_account"]),
        ]
    else:
        # An instant payment: the payer picks their bank and authorises it there.
        actions += [
            action("select_institution", "pending", requires=["collect_customer_details"]),
            action("bank_authorisation", "pending", requires=["select_institution"]),
        ]
    return actions


PAYMENT_REQUEST_FIELDS = {"amount", "currency", "description", "metadata", "app_fee",
                          "reference", "scheme", "funds_settlement", "retry_if_possible"}
# Instant Bank Pay: GBP over Faster Payments, EUR over SEPA credit transfers ("Take a one-off
# Instant bank payment"; docs/simulator-gocardless.md, "Billing requests for payments").
INSTANT_SCHEMES = {"GBP": "faster_payments", "EUR": "sepa_credit_transfer"}


def _amount(request: dict, check: errors.Validation) -> int | None:
    """Minor units; the guide's examples send a string of digits ("500"), the SDK an integer."""
    value = request.get("amount")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if value is None:
        check.add("amount", "is required", "payment_request/amount")
    elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        check.add("amount", "must be greater than 0", "payment_request/amount")
        return None
    return value


def _payment_request(state, data, check: errors.Validation,
                     mandate_request: dict | None) -> dict | None:
    request = data.get("payment_request")
    if request is None:
        return None
    if not isinstance(request, dict):
        check.add("payment_request", "must be an object")
        return None
    for key in request:
        if key not in PAYMENT_REQUEST_FIELDS:
            check.add(key, "is not a permitted parameter", f"payment_request/{key}")
    amount = _amount(request, check)
    currency = request.get("currency")
    if currency is None:
        check.add("currency", "is required", "payment_request/currency")
    elif mandate_request is not None:
        # Paid by Direct Debit on the mandate the same request sets up.
        if currency != mandate_request["currency"]:
            check.add("currency", "must match the mandate request's currency",
                      "payment_request/currency")
        scheme = mandate_request["scheme"]
    elif currency not in INSTANT_SCHEMES:
        check.add("currency", "is not supported for instant payments (add a "
                  "mandate_request to collect it by Direct Debit)", "payment_request/currency")
    description = request.get("description")
    if description is not None and not isinstance(description, str):
        check.add("description", "must be a string", "payment_request/description")
    metadata = validation.metadata(request.get("metadata"), check, "payment_request/metadata")
    if amount is None or currency is None:
        return None
    if mandate_request is None:
        scheme = INSTANT_SCHEMES.get(currency)
        if scheme is None:
            return None
    elif scheme in SCHEMES:
        rule = SCHEMES[scheme]
        if amount < rule.minimum or amount > rule.maximum:
            check.add("amount", f"must be between {rule.minimum} and {rule.maximum} for "
                      f"{scheme}", "payment_request/amount")
    return {
        "amount": amount,
        "currency": currency,
        "description": description,
        "scheme": scheme,
        "metadata": metadata,
        "app_fee": request.get("app_fee"),
        "reference": request.get("reference"),
        "funds_settlement": request.get("funds_settlement", "managed"),
        "retry_if_possible": bool(request.get("retry_if_possible", False)),
        "links": {},
    }


def billing_requests_create(state, call):
    data = validation.envelope(call.body, "billing_requests")
    check = errors.Validation("billing_requests")
    validation.reject_unknown(data, {"mandate_request", "payment_request", "metadata", "links",
                                     "fallback_enabled", "purpose_code"}, check)
    mandate_request = None
    if "mandate_request" in data or "payment_request" not in data:
        mandate_request = _mandate_request(state, data, check)
    payment_request = _payment_request(state, data, check, mandate_request)
    metadata = validation.metadata(data.get("metadata"), check)
    links = validation.links(data, check, {"customer", "creditor"})
    customer = state.find("customers", links.get("customer"))
    if links.get("customer") and customer is None:
        check.add("customer", "not found", "links/customer")
    check.raise_if_any()
    if customer is None:
        # The real API creates an empty customer straight away; the flow fills it in.
        customer = new_customer(state, {})
    collected = bool(customer["email"] and (customer["company_name"] or customer["family_name"]))
    request_id = state.new_id("billing_requests")
    request_links = {
        "creditor": state.creditor_id,
        "organisation": state.organisation_id,
        "customer": customer["id"],
        "customer_billing_detail": state.new_id("customer_billing_details"),
    }
    if mandate_request is not None:
        mandate_request["links"] = {}
        request_links["mandate_request"] = state.new_id("mandate_requests")
    if payment_request is not None:
        request_links["payment_request"] = state.new_id("payment_requests")
    billing_request = state.add("billing_requests", {
        "id": request_id,
        "created_at": state.now_iso(),
        "status": "pending",
        "mandate_request": mandate_request,
        "payment_request": payment_request,
        "subscription_request": None,
        "instalment_schedule_request": None,
        "metadata": metadata,
        "fallback_enabled": bool(data.get("fallback_enabled", False)),
        "fallback_occurred": False,
        "purpose_code": data.get("purpose_code"),
        "payment_purpose_code": None,
        "payment_context_code": None,
        "actions": _actions(collected, bank_account=mandate_request is not None),
        "resources": {"customer": public(customer), "customer_billing_detail": None,
                      "customer_bank_account": None},
        "links": request_links,
    })
    state.emit("billing_requests", "created", {"billing_request": request_id,
                                               "customer": customer["id"]},
               {"origin": "api", "cause": "billing_request_created",
                "description": "This billing request has been created."},
               resource=billing_request)
    return 201, {"billing_requests": public(billing_request)}


def billing_requests_get(state, call, resource_id):
    return 200, {"billing_requests": public(state.get("billing_requests", resource_id))}


def billing_requests_list(state, call):
    listing.check_params(call.args, listing.created_at_params() | {"customer", "status"})
    filters = [
        listing.compare_filter(call.args, "created_at", lambda r: r["created_at"]),
        _equals(call, "customer", lambda r: r["links"].get("customer")),
        _equals(call, "status", lambda r: r["status"]),
    ]
    return _list(state, call, "billing_requests", filters)


def billing_requests_cancel(state, call, resource_id):
    billing_request = state.get("billing_requests", resource_id)
    data = validation.action_data(call.body)
    if billing_request["status"] in ("fulfilled", "cancelled"):
        raise errors.invalid_state("billing_request_not_cancellable",
                                   "Billing request cannot be cancelled in its current state")
    billing_request["status"] = "cancelled"
    state.emit("billing_requests", "cancelled", {"billing_request": resource_id},
               {"origin": "api", "cause": "billing_request_cancelled",
                "description": "This billing request has been cancelled."},
               resource=billing_request, metadata=data.get("metadata"))
    return 200, {"billing_requests": public(billing_request)}


FLOW_FIELDS = {"redirect_uri", "exit_uri", "prefilled_customer", "prefilled_bank_account",
               "lock_bank_account", "lock_currency", "lock_customer_details", "language",
               "show_redirect_buttons", "show_success_redirect_button", "skip_success_screen",
               "session_token", "auto_fulfil", "customer_details_captured", "links"}


def billing_request_flows_create(state, call):
    data = validation.envelope(call.body, "billing_request_flows")
    check = errors.Validation("billing_request_flows")
    validation.reject_unknown(data, FLOW_FIELDS, check)
    links = validation.links(data, check, {"billing_request"})
    billing_request = state.find("billing_requests", links.get("billing_request"))
    if billing_request is None:
        check.add("billing_request", "not found" if links.get("billing_request")
                  else "is required", "links/billing_request")
    for field in ("prefilled_customer", "prefilled_bank_account"):
        if data.get(field) is not None and not isinstance(data[field], dict):
            check.add(field, "must be an object")
    if isinstance(data.get("prefilled_customer"), dict):
        country_code_check(data["prefilled_customer"].get("country_code"), check,
                           "prefilled_customer/country_code")
    check.raise_if_any()
    if billing_request["status"] != "pending":
        raise errors.invalid_state("billing_request_not_pending",
                                   "Billing request is not pending")
    created = state.clock.now()
    flow_id = state.new_id("billing_request_flows")
    flow = state.add("billing_request_flows", {
        "id": flow_id,
        "created_at": iso_timestamp(created),
        "expires_at": iso_timestamp(created + FLOW_LIFETIME),
        "authorisation_url": f"{call.base_url}/flows/{flow_id}",
        "redirect_uri": data.get("redirect_uri"),
        "exit_uri": data.get("exit_uri"),
        "prefilled_customer": data.get("prefilled_customer") or {},
        "prefilled_bank_account": data.get("prefilled_bank_account") or {},
        "lock_bank_account": bool(data.get("lock_bank_account", False)),
        "lock_currency": bool(data.get("lock_currency", False)),
        "lock_customer_details": bool(data.get("lock_customer_details", False)),
        "language": data.get("language"),
        "show_redirect_buttons": bool(data.get("show_redirect_buttons", False)),
        "show_success_redirect_button": bool(data.get("show_success_redirect_button", False)),
        "skip_success_screen": bool(data.get("skip_success_screen", False)),
        "session_token": data.get("session_token"),
        "auto_fulfil": bool(data.get("auto_fulfil", True)),
        "customer_details_captured": False,
        "links": {"billing_request": billing_request["id"]},
        "_expires": created + FLOW_LIFETIME,
    })
    state.emit("billing_requests", "flow_created",
               {"billing_request": billing_request["id"], "billing_request_flow": flow_id},
               {"origin": "api", "cause": "billing_request_flow_created",
                "description": "A billing request flow has been created."},
               resource=billing_request)
    return 201, {"billing_request_flows": public(flow)}
