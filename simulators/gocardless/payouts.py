"""Handlers for payouts and payout items (notes sections 5.5 and 5.6)."""

from __future__ import annotations

from datetime import date

from . import errors, listing
from .clock import parse_timestamp
from .resources import update_metadata_only
from .state import public


def _minor_units(amount: int) -> str:
    """Payout item amounts are strings in minor units with one decimal place: ``"45.0"``."""
    return f"{amount}.0"


def render_item(item: dict) -> dict:
    """Every item has ``taxes`` (an array): the VAT on GoCardless and surcharge fees, empty
    for the others (payments, refunds, app fees)."""
    return {
        "type": item["type"],
        "amount": _minor_units(item["amount"]),
        "links": dict(item["links"]),
        "taxes": [
            {**tax, "amount": _minor_units(tax["amount"]),
             "destination_amount": _minor_units(tax["destination_amount"])}
            for tax in item.get("taxes", ())
        ],
    }


ITEMS_KEPT_MONTHS = 6
PAYOUT_ITEMS_GONE = ("Payout items can only be retrieved for payouts created in the last 6 "
                     "months")


def _months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped to the month's end)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


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
    payout = state.get("payouts", payout_id)
    if _months_before(state.clock.today(), ITEMS_KEPT_MONTHS) > (
            parse_timestamp(payout["created_at"]).date()):
        raise errors.ApiError(410, "invalid_api_usage", PAYOUT_ITEMS_GONE,
                              [{"reason": "gone", "message": PAYOUT_ITEMS_GONE}])
    items = state.payout_items[payout_id]
    # Items have no ids; their position in the payout is the cursor.
    cursors = {id(item): f"{payout_id}-{index}" for index, item in enumerate(items)}
    page, meta = listing.paginate(items, call.args, lambda item: cursors[id(item)])
    return 200, {"payout_items": [render_item(item) for item in page], "meta": meta}
