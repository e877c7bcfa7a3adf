"""Request-body checks shared by the resource handlers (notes sections 5 and 7)."""

from __future__ import annotations

from datetime import date

from . import errors

METADATA_MAX_KEYS = 3
METADATA_KEY_MAX = 50
METADATA_VALUE_MAX = 500


def envelope(body, key: str) -> dict:
    """The object inside ``{"<key>": {...}}``; anything else is a malformed document."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise errors.invalid_api_usage(400, "invalid_document_structure",
                                       "Invalid document structure")
    return body[key]


def action_data(body) -> dict:
    """Action endpoints take ``{"data": {...}}``; the SDK sends ``null`` when given nothing."""
    if body is None or body == {}:
        return {}
    return envelope(body, "data")


def reject_unknown(data: dict, allowed: set[str], check: errors.Validation) -> None:
    for key in data:
        if key not in allowed:
            check.add(key, "is not a permitted parameter")


def metadata(value, check: errors.Validation, pointer: str = "metadata") -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        check.add("metadata", "must be an object", pointer)
        return {}
    if len(value) > METADATA_MAX_KEYS:
        check.add("metadata", f"must have no more than {METADATA_MAX_KEYS} keys", pointer)
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX:
            check.add("metadata", f"key '{key[:20]}…' is longer than {METADATA_KEY_MAX} "
                      "characters", pointer)
        if not isinstance(item, str):
            check.add("metadata", f"value for '{key}' must be a string", pointer)
        elif len(item) > METADATA_VALUE_MAX:
            check.add("metadata", f"value for '{key}' is longer than {METADATA_VALUE_MAX} "
                      "characters", pointer)
    return dict(value)


def optional_string(data: dict, field: str, check: errors.Validation, *, max_length=None):
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        check.add(field, "must be a string")
        return None
    if max_length is not None and len(value) > max_length:
        check.add(field, f"is too long (maximum is {max_length} characters)")
    return value


def positive_integer(data: dict, field: str, check: errors.Validation, *, required=True):
    value = data.get(field)
    if value is None:
        if required:
            check.add(field, "is required")
        return None
    # bool is an int in Python; JSON true is not an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        check.add(field, "must be a number")
        return None
    if value <= 0:
        check.add(field, "must be greater than 0")
        return None
    return value


def iso_date(data: dict, field: str, check: errors.Validation) -> date | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    check.add(field, "must be a valid date")
    return None


def links(data: dict, check: errors.Validation, allowed: set[str]) -> dict:
    value = data.get("links") or {}
    if not isinstance(value, dict):
        check.add("links", "must be an object")
        return {}
    for key in value:
        if key not in allowed:
            check.add(f"links[{key}]", "is not a permitted parameter", f"links/{key}")
    return value
