"""Answering an OData GET on a collection: validation of the query options Exact enforces,
filtering, ordering and lazy paging with ``$skiptoken`` continuation."""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from .errors import SELECT_REQUIRED, ApiError
from .odata import GUID, INT32, INT64, Field, compile_filter, parse_orderby, parse_select, to_json
from .state import Division
from .views import BY_PATH, View

KNOWN_OPTIONS = {"$select", "$filter", "$top", "$skip", "$skiptoken", "$inlinecount",
                 "$orderby", "$expand", "$format"}
# The wording is the simulator's: Exact documents that new endpoints do not support $skip,
# not the text of the refusal.
SKIP_UNSUPPORTED = ("The query option '$skip' is not supported by this endpoint. Follow the "
                    "__next link ($skiptoken) instead.")


class Request:
    """What the query engine needs from an HTTP request."""

    def __init__(self, args: dict[str, str], base_url: str, division: int | None, ctx: Any):
        self.args = args
        self.base_url = base_url.rstrip("/")
        self.division = division
        self.ctx = ctx

    def entity_url(self, path: str) -> str:
        prefix = f"/api/v1/{self.division}" if self.division is not None else "/api/v1"
        return f"{self.base_url}{prefix}/{path}"


def key_literal(field: Field, value: Any) -> str:
    if field.type == GUID:
        return f"guid'{value}'"
    if field.type == INT64:
        return f"{value}L"
    if field.type == INT32:
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def parse_key_literal(field: Field, text: str) -> Any:
    try:
        if field.type == GUID and text.lower().startswith("guid'") and text.endswith("'"):
            return text[5:-1].lower()
        if field.type in (INT32, INT64):
            return int(text.rstrip("Ll"))
    except ValueError:
        pass
    raise ApiError(400, f"Bad Request - Error in query syntax: '{text}'.")


def check_options(args: dict[str, str]) -> None:
    for name in args:
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise ApiError(
                400,
                f"The query parameter '{name}' begins with a system-reserved '$' character "
                "but is not recognized.",
            )


def serialize(view: View, req: Request, row: Any, fields: list[Field], key: Field,
              expand: set[str], nav_selected: set[str]) -> dict:
    uri = req.entity_url(f"{view.path}({key_literal(key, key.get(row))})")
    out: dict[str, Any] = {"__metadata": {"uri": uri, "type": view.entity_type}}
    for f in fields:
        out[f.name] = to_json(f.get(row))
    for nav in sorted(nav_selected | expand):
        if nav in expand:
            line_view_path, lines_of = view.nav[nav]
            line_view = BY_PATH[line_view_path.lower()]
            div = req.ctx.division
            line_fields = line_view.fields(div, req.ctx)
            line_key = line_fields[line_view.key]
            out[nav] = {"results": [
                serialize(line_view, req, ln, list(line_fields.values()), line_key, set(), set())
                for ln in lines_of(row)
            ]}
        else:
            out[nav] = {"__deferred": {"uri": f"{uri}/{nav}"}}
    return out


def get_collection(view: View, div: Division, req: Request) -> dict:
    args = req.args
    check_options(args)
    fields = view.fields(div, req.ctx)
    select_text = args.get("$select")
    top = _parse_top(args.get("$top"))
    skip = _parse_skip(view, args.get("$skip"))
    if view.select_required and not select_text and top != 1:
        raise ApiError(400, SELECT_REQUIRED)
    selected, nav_selected = _select(view, fields, select_text)
    expand = _expand(view, args.get("$expand"))

    predicate = None
    used: set[str] = set()
    filter_text = args.get("$filter")
    if filter_text:
        predicate, used = compile_filter(filter_text, fields, view.entity_type)
    _check_filter_rules(view, used)

    table = view.source(div, req.ctx)
    key = fields[view.key]
    include = view.include
    if "$orderby" in args:
        order = parse_orderby(args["$orderby"], fields, view.entity_type)
        rows: list[Any] = [r for r in table.values() if _matches(r, include, predicate)]
        # Stable sorts, least significant first; the key breaks ties so pages are stable.
        for field, desc in reversed([*order, (key, False)]):
            rows.sort(key=lambda r, f=field: _sortable(f.get(r)), reverse=desc)
        start = _parse_offset(args.get("$skiptoken")) + skip
        candidates: Iterable[Any] = rows[start:]

        def next_token(page: list[Any]) -> str:  # continue by position
            return str(start + len(page))
    else:
        order_field = fields["Timestamp"] if view.sync else key
        keys, ordered = table.ordered(f"{view.path}:{order_field.name}", order_field.get)
        start = 0
        if "$skiptoken" in args:
            start = bisect_right(keys, parse_key_literal(order_field, args["$skiptoken"]))
        candidates = itertools.islice(ordered, start, None)
        if skip:  # skip matching rows, in key order (OData v2: a full order by the key)
            candidates = itertools.islice(
                (r for r in candidates if _matches(r, include, predicate)), skip, None)

        def next_token(page: list[Any]) -> str:  # continue after the last sort key, like Exact
            return key_literal(order_field, order_field.get(page[-1]))

    limit = view.page_size if top is None else min(view.page_size, top)
    page, more = _take(candidates, limit, include, predicate)
    if top is not None and len(page) >= top:
        more = False

    result: dict[str, Any] = {"results": [
        serialize(view, req, r, selected, key, expand, nav_selected) for r in page
    ]}
    if args.get("$inlinecount") == "allpages":
        result["__count"] = str(sum(1 for r in table.values()
                                    if _matches(r, include, predicate)))
    if more and page:
        result["__next"] = _next_url(req, view.path, args, next_token(page),
                                     None if top is None else top - len(page))
    return {"d": result}


def count_collection(view: View, div: Division, req: Request) -> int:
    """``…/{Entity}/$count``: how many rows match ``$filter`` (Exact KB "OData | Query string
    options": "The $count option will only return an integer value without a response body
    message"). The endpoint's filter rules apply as for a GET of the collection."""
    args = req.args
    check_options(args)
    fields = view.fields(div, req.ctx)
    predicate = None
    used: set[str] = set()
    if args.get("$filter"):
        predicate, used = compile_filter(args["$filter"], fields, view.entity_type)
    _check_filter_rules(view, used)
    return sum(1 for r in view.source(div, req.ctx).values()
               if _matches(r, view.include, predicate))


def get_entity(view: View, div: Division, req: Request, key_text: str) -> dict:
    check_options(req.args)
    fields = view.fields(div, req.ctx)
    key = fields[view.key]
    wanted = parse_key_literal(key, key_text)
    row = find(view, div, req.ctx, wanted)
    if row is None:
        raise ApiError(404, "Resource not found")
    selected, nav_selected = _select(view, fields, req.args.get("$select"))
    expand = _expand(view, req.args.get("$expand"))
    return {"d": serialize(view, req, row, selected, key, expand, nav_selected)}


def find(view: View, div: Division, ctx: Any, wanted: Any) -> Any:
    key_get = view.fields(div, ctx)[view.key].get
    table = view.source(div, ctx)
    row = table.get(str(wanted))
    if row is not None and key_get(row) == wanted:
        return row
    return next((r for r in table.values() if key_get(r) == wanted), None)


def _matches(row: Any, include, predicate) -> bool:
    return (include is None or include(row)) and (predicate is None or predicate(row))


def _take(candidates: Iterable[Any], limit: int, include, predicate) -> tuple[list[Any], bool]:
    """Up to ``limit`` matching rows and whether at least one more exists."""
    page: list[Any] = []
    for row in candidates:
        if not _matches(row, include, predicate):
            continue
        if len(page) == limit:
            return page, True
        page.append(row)
    return page, False


def _select(view: View, fields: dict[str, Field], text: str | None):
    if not text:
        return list(fields.values()), set()
    names = [n.strip() for n in text.split(",")]
    nav = {n for n in names if n in view.nav}
    rest = ",".join(n for n in names if n not in view.nav)
    return (parse_select(rest, fields, view.entity_type) if rest else []), nav


def _expand(view: View, text: str | None) -> set[str]:
    if not text:
        return set()
    names = {n.strip() for n in text.split(",") if n.strip()}
    for name in names - set(view.nav):
        raise ApiError(400, f"No property '{name}' exists in type '{view.entity_type}'.")
    return names


def _check_filter_rules(view: View, used: set[str]) -> None:
    if view.mandatory_filter and not (used & set(view.mandatory_filter)):
        raise ApiError(
            400,
            "This endpoint has mandatory filtering applied. A GET request for this endpoint "
            "must have a $filter parameter with one of the following fields in the url: "
            + ",".join(view.mandatory_filter) + ".",
        )
    allowed = {"Timestamp"} if view.sync else view.filterable
    if allowed is not None and used - allowed:
        raise ApiError(
            400,
            "This $filter parameter is not supported for this resource. Allowed fields: "
            + ",".join(sorted(allowed)) + ".",
        )


def _parse_top(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise ApiError(400, f"Invalid value '{text}' for $top query option found.")
    return int(text)


def _parse_skip(view: View, text: str | None) -> int:
    if text is None:
        return 0
    if not view.skip_supported:
        raise ApiError(400, SKIP_UNSUPPORTED)
    if not text.isdigit():
        raise ApiError(400, f"Invalid value '{text}' for $skip query option found.")
    return int(text)


def _parse_offset(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit():
        raise ApiError(400, f"Bad Request - Error in query syntax: '{text}'.")
    return int(text)


def _sortable(value: Any) -> tuple:
    # None sorts first, as in SQL Server.
    return (value is not None, value if value is not None else 0)


def _next_url(req: Request, path: str, args: dict[str, str], token: str,
              remaining_top: int | None) -> str:
    # $skip was spent on this page; the continuation is the skiptoken alone.
    params = {k: v for k, v in args.items() if k not in ("$skiptoken", "$top", "$skip")}
    if remaining_top is not None:
        params["$top"] = str(remaining_top)
    params["$skiptoken"] = token
    query = "&".join(f"{k}={quote(v, safe=chr(39) + '(),$:')}" for k, v in params.items())
    return f"{req.entity_url(path)}?{query}"
