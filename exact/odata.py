"""Exact's OData v2 dialect: envelopes, ``/Date(ms)/`` values and filter literals (amounts are
converted in core.money.from_exact_number)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def unwrap(payload: Any) -> tuple[list[dict], str | None]:
    """Rows and the ``__next`` URL from any of Exact's three envelope shapes.

    ``{"d": {"results": [...], "__next": url}}`` (collections), ``{"d": {...}}`` (one entity,
    POST results) and ``{"d": [...]}`` (seen in older responses).
    """
    if not isinstance(payload, dict) or "d" not in payload:
        raise ValueError("not an OData response: no 'd' member")
    d = payload["d"]
    if isinstance(d, list):
        return d, None
    if isinstance(d, dict):
        if "results" in d and isinstance(d["results"], list):
            return d["results"], d.get("__next") or None
        return [d], None
    raise ValueError(f"unexpected OData envelope: d is {type(d).__name__}")


def parse_datetime(value: Any) -> datetime | None:
    """``/Date(1641034800000)/`` (epoch ms, UTC) → aware datetime; None stays None.

    A ``+0100`` suffix (the .NET form) is ignored: the milliseconds are already UTC.
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    m = _DATE.match(str(value))
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    """Date-only fields come as midnight UTC."""
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def to_uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    return uuid.UUID(str(value))


# --- $filter literals ---------------------------------------------------------------------
def guid_literal(value: Any) -> str:
    return f"guid'{uuid.UUID(str(value))}'"


def string_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def int64_literal(value: int) -> str:
    return f"{int(value)}L"


def datetime_literal(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return f"datetime'{value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')}'"
    return f"datetime'{value.isoformat()}'"
