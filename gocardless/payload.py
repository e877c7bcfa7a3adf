"""What a webhook body (or a listed event) may contain before anything is stored.

A signature proves who sent a body, not that it is usable. Everything here is about signed
bodies that our database or our code could still choke on: PostgreSQL refuses NUL in text
and jsonb and ``Infinity`` in jsonb, a lone surrogate cannot be encoded, a ``created_at`` in
year 1 or 9999 (in another time zone) is stored but cannot be read back into Python (which
stalled the installation-wide sweeper with a DataError), and 10,000 nested brackets blow
Python's recursion limit.

Two levels:
- the envelope (``payload_events``): not JSON, nested too deeply, not ``{"events": [...]}``
  or too many events → the whole delivery is refused with a 4xx (``PayloadError``);
- each event (``event_problem`` / ``json_safe``): an event we cannot use is QUARANTINED by the
  event store (kept with its reason, JSON made safe to store, never processed, visible in
  the admin), so one bad event neither blocks its batch nor comes back at every retry.

Messages never echo the sender's text: they name the field and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

MAX_DEPTH = 32  # real events are 4-6 levels deep
MAX_EVENTS = 1000  # GoCardless sends at most a few hundred per webhook (notes §2.1)
ID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # EV…, PM…, OR… (plus some room)
NAME = re.compile(r"[A-Za-z0-9_.-]{1,50}")  # resource types, actions
INT_LIMIT = 2**63  # beyond, many databases and tools no longer agree on the number
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# The ``links`` we read ids from (resource id, routing): each must be an id if present.
ID_LINKS = frozenset({
    "payment", "mandate", "payout", "refund", "billing_request", "customer", "creditor",
    "subscription", "instalment_schedule", "organisation", "mandate_request_mandate",
    "customer_bank_account", "new_mandate", "parent_event",
})
SAFE_TEXT_LIMIT = 200


class PayloadError(ValueError):
    """The body as a whole is unusable (answered 400)."""


def payload_events(body: bytes) -> list:
    """The ``events`` list of a verified body; PayloadError when the envelope is unusable."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise PayloadError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit number
        raise PayloadError(f"not JSON ({type(exc).__name__})") from None
    if json_depth(payload) > MAX_DEPTH:
        raise PayloadError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise PayloadError('body is not {"events": [...]}')
    if len(payload["events"]) > MAX_EVENTS:
        raise PayloadError(f"more than {MAX_EVENTS} events")
    return payload["events"]


def json_depth(value) -> int:
    """Nesting depth, without recursion (the value may be as deep as json.loads allowed)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate"
    return None


def _number_problem(number) -> str | None:
    if isinstance(number, bool):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return "is not a finite number"
    if isinstance(number, int) and not -INT_LIMIT < number < INT_LIMIT:
        return "is a number out of range"
    return None


def json_problem(value) -> str | None:
    """Why ``value`` cannot be stored as it is (NUL, lone surrogates, non-finite or huge
    numbers, anywhere, keys included), or None."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            problem = _text_problem(node)
        elif isinstance(node, int | float):
            problem = _number_problem(node)
        elif isinstance(node, dict):
            problem = next(filter(None, map(_text_problem, node)), None)
            stack.extend(node.values())
        elif isinstance(node, list):
            problem = None
            stack.extend(node)
        else:
            problem = None
        if problem:
            return f"a value {problem}"
    return None


def safe_text(text, limit: int | None = SAFE_TEXT_LIMIT) -> str:
    """Storable text for logs, errors and columns: NUL and lone surrogates escaped, cut to
    ``limit`` characters (None: whole)."""
    text = str(text)
    text = text.replace("\x00", "\\u0000")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if limit is None else text[:limit]


def json_safe(value, *, depth: int = MAX_DEPTH):
    """A copy of ``value`` that every database stores and Python reads back: unsafe strings
    escaped, unsafe numbers as text, anything deeper than ``depth`` replaced by a marker."""
    def safe(node, level):
        if level > depth:
            return "(nested too deeply)"
        if isinstance(node, str):
            return safe_text(node, limit=None) if _text_problem(node) else node
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int | float):
            return safe_text(repr(node), limit=64) if _number_problem(node) else node
        if isinstance(node, dict):
            return {safe(k, level): safe(v, level + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [safe(v, level + 1) for v in node]
        return safe_text(repr(node))

    return safe(value, 1)


def json_digest(value) -> str:
    return hashlib.sha256(
        json.dumps(json_safe(value), sort_keys=True, ensure_ascii=True).encode()
    ).hexdigest()


def created_at_of(value) -> datetime | None:
    """The event's ``created_at`` as an aware datetime between 2000 and 2100; None when
    absent. ValueError when present but unusable."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("created_at is not a timestamp string")
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError("created_at is not an ISO-8601 timestamp with a time zone")
    try:
        in_range = EARLIEST <= moment <= LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError("created_at is outside 2000-2100")
    return moment.astimezone(UTC)


def event_problem(event) -> str | None:
    """Why a (signed) event cannot be stored and processed as it is, or None."""
    if not isinstance(event, dict):
        return "event is not an object"
    if not isinstance(event.get("id"), str) or not ID.fullmatch(event["id"]):
        return "event id is not an id string"
    for name in ("resource_type", "action"):
        if not isinstance(event.get(name), str) or not NAME.fullmatch(event[name]):
            return f"{name} is not a name string"
    for name in ("links", "details"):
        if event.get(name) is not None and not isinstance(event[name], dict):
            return f"{name} is not an object"
    for key, value in (event.get("links") or {}).items():
        if key in ID_LINKS and value is not None and (
            not isinstance(value, str) or not ID.fullmatch(value)
        ):
            return f"links.{safe_text(key, 40)} is not an id string"
    try:
        created_at_of(event.get("created_at"))
    except ValueError as exc:
        return str(exc)
    return json_problem(event)
