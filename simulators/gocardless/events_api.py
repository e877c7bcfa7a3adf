"""GET /events and GET /events/{id} (notes section 4.2)."""

from __future__ import annotations

from . import errors, listing, plans
from .resources import render_mandate
from .state import public

RESOURCE_TYPES = ("billing_requests", "creditors", "customers", "exports",
                  "instalment_schedules", "mandates", "organisations", "outbound_payments",
                  "payer_authorisations", "payments", "payment_account_transactions",
                  "payouts", "refunds", "scheme_identifiers", "subscriptions")
# Single-resource filters: ``payment=PM…`` returns every event linking that payment.
ID_FILTERS = ("payment", "mandate", "payout", "refund", "subscription", "instalment_schedule",
              "billing_request", "creditor", "export", "payer_authorisation",
              "scheme_identifier", "outbound_payment", "payment_account_transaction")
# include=<singular> -> the store its linked resources come from.
INCLUDABLE = {"payment": "payments", "mandate": "mandates", "payout": "payouts",
              "refund": "refunds", "billing_request": "billing_requests",
              "creditor": "creditors", "subscription": "subscriptions",
              "instalment_schedule": "instalment_schedules"}


def events_get(state, call, resource_id):
    event = state.events_by_id.get(resource_id)
    if event is None:
        raise errors.not_found()
    return 200, {"events": dict(event)}


def events_list(state, call):
    args = call.args
    listing.check_params(args, listing.created_at_params() | set(ID_FILTERS) | {
        "resource_type", "action", "include", "parent_event"})
    resource_type = args.get("resource_type")
    if resource_type is not None and resource_type not in RESOURCE_TYPES:
        raise errors.query_validation("resource_type", "is invalid")
    id_filters = [(name, args[name]) for name in ID_FILTERS if name in args]
    if len(id_filters) > 1:
        raise errors.query_validation(id_filters[1][0],
                                      "only one resource id filter can be given")
    if id_filters and resource_type:
        raise errors.query_validation("resource_type",
                                      f"cannot be combined with {id_filters[0][0]}")
    include = args.get("include")
    if include is not None:
        if not resource_type:
            raise errors.query_validation("include", "requires resource_type")
        if INCLUDABLE.get(include) != resource_type:
            raise errors.query_validation("include", f"must match resource_type {resource_type}")

    action, parent = args.get("action"), args.get("parent_event")
    created = listing.compare_filter(args, "created_at", lambda e: e["created_at"])

    def accept(event):
        return (
            (resource_type is None or event["resource_type"] == resource_type)
            and (action is None or event["action"] == action)
            and (parent is None or event["links"].get("parent_event") == parent)
            and all(event["links"].get(name) == value for name, value in id_filters)
            and created(event)
        )

    records = [e for e in reversed(state.events) if accept(e)]
    page, meta = listing.paginate(records, args, lambda e: e["id"])
    body = {"events": [dict(e) for e in page], "meta": meta}
    if include:
        store = INCLUDABLE[include]
        linked_ids = dict.fromkeys(e["links"][include] for e in page if include in e["links"])
        render = {"mandates": lambda r: render_mandate(state, r),
                  "subscriptions": lambda r: plans.render_subscription(state, r)}.get(
                      store, public)
        body["linked"] = {store: [render(state.resources[store][rid]) for rid in linked_ids
                                  if rid in state.resources[store]]}
    return 200, body
