"""Cursor pagination and the common list filters (notes section 4.1).

Lists are newest first. ``after=X`` pages towards older records, ``before=X`` towards newer
ones; ``meta.cursors.after`` is null on the last (oldest) page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from . import errors
from .clock import parse_timestamp

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
COMPARISONS = ("gt", "gte", "lt", "lte")
CURSOR_PARAMS = {"limit", "after", "before"}


def created_at_params(field: str = "created_at") -> set[str]:
    return {f"{field}[{op}]" for op in COMPARISONS}


def check_params(params, allowed: Iterable[str]) -> None:
    """Unknown query parameters are an error, like the real API's strict validation."""
    allowed = set(allowed) | CURSOR_PARAMS
    for key in params:
        if key not in allowed:
            raise errors.query_validation(key, "is not a permitted parameter")


def parse_limit(params) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise errors.query_validation("limit", "must be a number") from None
    if limit < 1 or limit > MAX_LIMIT:
        raise errors.query_validation("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def compare_filter(params, field: str, value_of: Callable[[dict], str | None],
                   parse=parse_timestamp) -> Callable[[dict], bool]:
    """``field[gt|gte|lt|lte]`` as one predicate (timestamps, or dates via ``parse``)."""
    bounds = []
    for op in COMPARISONS:
        raw = params.get(f"{field}[{op}]")
        if raw is None:
            continue
        bound = parse(raw)
        if bound is None:
            raise errors.query_validation(f"{field}[{op}]", "is not a valid value")
        bounds.append((op, bound))

    def accept(record: dict) -> bool:
        raw_value = value_of(record)
        if raw_value is None:
            return not bounds
        value = parse(raw_value)
        for op, bound in bounds:
            if (op == "gt" and not value > bound) or (op == "gte" and not value >= bound) or (
                op == "lt" and not value < bound) or (op == "lte" and not value <= bound):
                return False
        return True

    return accept


def paginate(records: list, params, cursor_of: Callable[[dict], str]) -> tuple[list, dict]:
    """One page of ``records`` (already newest first) and the ``meta`` object for it."""
    limit = parse_limit(params)
    after, before = params.get("after"), params.get("before")
    positions = None
    if after or before:
        positions = {cursor_of(record): index for index, record in enumerate(records)}
    start, end = 0, len(records)
    if after:
        if after not in positions:
            raise errors.query_validation("after", "is not a valid cursor")
        start = positions[after] + 1
    if before:
        if before not in positions:
            raise errors.query_validation("before", "is not a valid cursor")
        end = positions[before]
    if before and not after:
        start = max(start, end - limit)  # the records just newer than the cursor
    page = records[start:min(end, start + limit)]
    stop = start + len(page)
    meta = {
        "cursors": {
            "before": cursor_of(page[0]) if page and start > 0 else None,
            "after": cursor_of(page[-1]) if page and stop < len(records) else None,
        },
        "limit": limit,
    }
    return page, meta


def equals(args, param: str, value_of: Callable[[dict], str | None]) -> Callable[[dict], bool]:
    """``param=a,b``: the record's value is one of them (no parameter: everything)."""
    wanted = args.get(param)
    if wanted is None:
        return lambda record: True
    wanted_set = set(wanted.split(","))
    return lambda record: value_of(record) in wanted_set


def respond(records: list, args, kind: str, filters, render) -> tuple[int, dict]:
    """The list response for ``records`` (newest first) passing every filter."""
    selected = [r for r in records if all(f(r) for f in filters)]
    page, meta = paginate(selected, args, lambda r: r["id"])
    return 200, {kind: [render(r) for r in page], "meta": meta}
