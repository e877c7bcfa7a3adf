"""Handlers for payouts and payout items (notes sections 5.5 and 5.6)."""

from __future__ import annotations

from . import errors, listing
from .resources import update_metadata_only
from .state import public


def _minor_units(amount: int) -> str:
    """Payout item amounts are strings in minor units with one decimal place: ``"45.0"``."""
    return f"{amount}.0"


def render_item(item: dict) -> dict:
    body = {"type": item["type"], "amount": _minor_units(item["amount"]),
            "links": dict(item["links"])}
    if "taxes" in item:
        body["taxes"] = [
            {**tax, "amount": _minor_units(tax["amount"]),
             "destination_amount": _minor_units(tax["destination_amount"])}
            for tax in item["taxes"]
        ]
    return body


def payouts_get(state, call, resource_id):
    return 200, {"payouts": public(state.get("payouts", resource_id))}


def payouts_list(state, call):
    args = call.args
    listing.check_params(args, listing.created_at_params() | {
        "currency", "status", "payout_type", "reference", "creditor", "creditor_bank_account"})
    filters = [listing.compare_filter(args, "created_at", lambda r: r["created_at"])]
    filters += [listing.equals(args, field, lambda r, f=field: r[f])
                for field in ("currency", "status", "payout_type", "reference")]
    filters += [listing.equals(args, link, lambda r, k=link: r["links"].get(k))
                for link in ("creditor", "creditor_bank_account")]
    return listing.respond(state.newest_first("payouts"), args, "payouts", filters, public)


def payouts_update(state, call, resource_id):
    return update_metadata_only(state, call, "payouts", resource_id)


def payout_items_list(state, call):
    listing.check_params(call.args, {"payout", "include_2020_tax_cutover"})
    payout_id = call.args.get("payout")
    if not payout_id:
        raise errors.query_validation("payout", "is required")
    state.get("payouts", payout_id)
    items = state.payout_items[payout_id]
    # Items have no ids; their position in the payout is the cursor.
    cursors = {id(item): f"{payout_id}-{index}" for index, item in enumerate(items)}
    page, meta = listing.paginate(items, call.args, lambda item: cursors[id(item)])
    return 200, {"payout_items": [render_item(item) for item in page], "meta": meta}
