"""``/api/v1/…``: bearer authentication, division access, rate limiting, then the resource."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .ledger import post_entry
from .models import User
from .oauth import Chain
from .query import (
    Request,
    count_collection,
    find,
    get_collection,
    get_entity,
    parse_key_literal,
    serialize,
)
from .state import Division
from .views import BY_PATH, ME, View
from .writes import (
    delete_subscription,
    post_bank_account,
    post_mandate,
    post_sales_entry,
    post_subscription,
    put_account,
    put_mandate,
)

if TYPE_CHECKING:
    from . import Simulator

PATH = re.compile(
    r"^/api/v1/(?:(?P<me>current/Me)|(?P<division>\d+)/(?P<resource>[A-Za-z]+(?:/[A-Za-z]+)*))"
    r"(?:\((?P<key>[^)]*)\))?(?P<count>/\$count)?/?$",
    re.IGNORECASE,
)
# Exact ignores the division in this URL (API-NOTES §2), so it needs no division access.
DIVISION_AGNOSTIC = {"system/divisions"}


@dataclass
class Context:
    """Per-request facts the views read (who asks, when, and what they may see)."""

    user: User
    chain: Chain
    now: datetime
    division: Division | None = None
    divisions: list[Division] = field(default_factory=list)
    deleted: list = field(default_factory=list)
    subscriptions: list = field(default_factory=list)


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


def normalize(path: str) -> str:
    """The call-count key: division and entity keys replaced by placeholders."""
    path = re.sub(r"^/api/v1/\d+/", "/api/v1/{division}/", path)
    return re.sub(r"\([^)]*\)", "({key})", path)


def handle(sim: Simulator, method: str, path: str, args: dict[str, str],
           headers: dict[str, str], body: bytes, base_url: str) -> Reply:
    match = PATH.match(path)
    if match is None:
        return Reply(404, ApiError(404, "Resource not found").body())
    state = sim.state
    rate_headers: dict[str, str] = {}
    try:
        with state.lock:
            chain = _authenticate(sim, headers.get("Authorization", ""))
            user = state.users[chain.user_id]
            ctx = Context(user=user, chain=chain, now=sim.clock.now())
            if match["me"]:
                view, div_code = ME, user.current_division
            else:
                view = BY_PATH.get(match["resource"].lower())
                div_code = int(match["division"])
                if view is None or view.path.lower() not in DIVISION_AGNOSTIC:
                    ctx.division = _division_access(sim, chain, user, div_code)
            if div_code is not None:
                rate_headers = sim.ratelimiter.consume(chain.client_id, div_code)
            if view is None:
                raise ApiError(404, "Resource not found")
            if method not in view.methods:
                raise ApiError(405, f"The requested resource does not support http method "
                                    f"'{method}'.")
            _fill_context(sim, ctx, view, chain, user)
            req = Request(args, base_url, None if match["me"] else div_code, ctx)
            if match["count"]:
                reply = _count(view, method, match["key"], req, ctx)
            else:
                reply = _dispatch(sim, view, method, match["key"], req, ctx, body)
    except ApiError as err:
        return Reply(err.status, err.body(), {**rate_headers, **err.headers})
    reply.headers.update(rate_headers)
    return reply


def _authenticate(sim: Simulator, header: str) -> Chain:
    scheme, _, token = header.partition(" ")
    chain = sim.oauth.authenticate(token.strip()) if scheme.lower() == "bearer" else None
    if chain is None:
        raise ApiError(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return chain


def _division_access(sim: Simulator, chain: Chain, user: User, code: int) -> Division:
    allowed = code in user.divisions and (chain.divisions is None or code in chain.divisions)
    div = sim.state.divisions.get(code)
    if not allowed or div is None:
        raise ApiError(403, "Forbidden - WrongDivision", headers={"Reason": "NoDivisionAccess"})
    return div


def _fill_context(sim: Simulator, ctx: Context, view: View, chain: Chain, user: User) -> None:
    state = sim.state
    if view.path in ("system/Divisions", "hrm/Divisions"):
        # hrm/Divisions is limited to one licence (the one owning the URL's division); every
        # simulated division belongs to the same licence, so both list the same divisions.
        ctx.divisions = [state.divisions[c] for c in user.divisions
                         if chain.divisions is None or c in chain.divisions]
    elif view.path == "sync/Deleted":
        ctx.deleted = state.live_deleted(ctx.division.code)
    elif view.path == "webhooks/WebhookSubscriptions":
        ctx.subscriptions = [s for s in state.subscriptions.values()
                             if s.division == ctx.division.code and s.client_id == chain.client_id]


def _count(view: View, method: str, key: str | None, req: Request, ctx: Context) -> Reply:
    """``/$count``: a bare integer as text, no JSON envelope."""
    if method != "GET":
        raise ApiError(405, f"The requested resource does not support http method '{method}'.")
    if key is not None:
        raise ApiError(400, "Bad Request - Error in query syntax: '$count' needs a collection.")
    return Reply(200, str(count_collection(view, ctx.division, req)))


def _dispatch(sim: Simulator, view: View, method: str, key: str | None, req: Request,
              ctx: Context, body: bytes) -> Reply:
    div = ctx.division
    if method == "GET":
        if key is not None:
            return Reply(200, get_entity(view, div, req, key))
        return Reply(200, get_collection(view, div, req))
    if method == "POST":
        if key is not None:
            raise ApiError(405, "The requested resource does not support http method 'POST'.")
        created = _post(sim, view, ctx, _json(body))
        fields = view.fields(div, ctx)
        return Reply(201, {"d": serialize(view, req, created, list(fields.values()),
                                          fields[view.key], set(view.nav), set())})
    if key is None:
        raise ApiError(400, "The request URI must point to a single entity.")
    wanted = parse_key_literal(view.fields(div, ctx)[view.key], key)
    if method == "PUT":
        if view.path == "crm/Accounts":
            put_account(sim.state, div, wanted, _json(body))
        else:
            put_mandate(sim.state, div, wanted, _json(body))
        return Reply(204)
    if find(view, div, ctx, wanted) is None:
        raise ApiError(404, "Resource not found")
    delete_subscription(sim.state, div, wanted)
    return Reply(204)


def _post(sim: Simulator, view: View, ctx: Context, body: dict) -> Any:
    state, div = sim.state, ctx.division
    if view.path == "financialtransaction/BankEntries":
        return post_entry(state, div, "BankEntry", body)
    if view.path == "generaljournalentry/GeneralJournalEntries":
        return post_entry(state, div, "GeneralJournalEntry", body)
    if view.path == "crm/BankAccounts":
        return post_bank_account(state, div, body)
    if view.path == "salesentry/SalesEntries":
        return post_sales_entry(state, div, body)
    if view.path == "cashflow/DirectDebitMandates":
        return post_mandate(state, div, body)
    sub = post_subscription(state, div, ctx.chain.client_id, ctx.user.id, body)
    # Exact validates the callback with an empty POST right after subscribing.
    sim.webhooks.queue_validation(sub.callback_url)
    return sub


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "Error processing request stream. The request should be a valid "
                            "JSON document.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Error processing request stream. The request should be a single "
                            "JSON object.")
    return data
