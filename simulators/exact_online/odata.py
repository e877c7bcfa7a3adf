"""OData v2 pieces Exact uses: the ``$filter`` grammar, ``$select``, literals and value encoding.

The filter is compiled once per request into a predicate over entity rows, so paging through
50,000 rows costs one Python call per row and no re-parsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .errors import ApiError

GUID = "Edm.Guid"
STRING = "Edm.String"
INT16 = "Edm.Int16"
INT32 = "Edm.Int32"
INT64 = "Edm.Int64"
DOUBLE = "Edm.Double"
BOOLEAN = "Edm.Boolean"
DATETIME = "Edm.DateTime"
NULL = "null"
NUMERIC = {INT16, INT32, INT64, DOUBLE}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    get: Callable[[Any], Any]


# --- value encoding ---------------------------------------------------------------------


def date_json(value: datetime) -> str:
    """Exact's ``/Date(ms)/``: epoch milliseconds (API-NOTES §4.5)."""
    return f"/Date({int(value.timestamp() * 1000)})/"


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return date_json(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def parse_datetime(text: str) -> datetime:
    """Accept what clients send on writes: ISO date/datetime, or ``/Date(ms)/``."""
    m = re.fullmatch(r"/Date\((-?\d+)\)/", text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# --- tokenizer --------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<guid>guid'(?P<guidv>[0-9a-fA-F-]{36})')
  | (?P<dt>datetime'(?P<dtv>[^']*)')
  | (?P<str>'(?P<strv>(?:[^']|'')*)')
  | (?P<num>-?\d+(?:\.\d+)?(?P<suffix>[LlMmDd])?)(?![\w.])
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_/]*)
    """,
    re.VERBOSE | re.IGNORECASE,
)

_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass
class _Tok:
    kind: str
    value: Any
    pos: int
    type: str | None = None


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ApiError(400, f"Syntax error at position {pos}.")
        if m.group("ws"):
            pass
        elif m.group("guid"):
            toks.append(_Tok("lit", m.group("guidv").lower(), pos, GUID))
        elif m.group("dt"):
            try:
                value = parse_datetime(m.group("dtv"))
            except ValueError:
                raise ApiError(
                    400, f"Unrecognized 'Edm.DateTime' literal '{m.group(0)}' at '{pos}'."
                ) from None
            toks.append(_Tok("lit", value, pos, DATETIME))
        elif m.group("str") is not None:
            toks.append(_Tok("lit", m.group("strv").replace("''", "'"), pos, STRING))
        elif m.group("num"):
            toks.append(_num_token(m.group("num"), m.group("suffix"), pos))
        elif m.group("lp"):
            toks.append(_Tok("(", "(", pos))
        elif m.group("rp"):
            toks.append(_Tok(")", ")", pos))
        elif m.group("comma"):
            toks.append(_Tok(",", ",", pos))
        else:
            word = m.group("word")
            lower = word.lower()
            if lower in ("true", "false"):
                toks.append(_Tok("lit", lower == "true", pos, BOOLEAN))
            elif lower == "null":
                toks.append(_Tok("lit", None, pos, NULL))
            elif lower in _OPS or lower in ("and", "or", "not"):
                toks.append(_Tok("kw", lower, pos))
            else:
                toks.append(_Tok("name", word, pos))
        pos = m.end()
    return toks


def _num_token(text: str, suffix: str | None, pos: int) -> _Tok:
    body = text[:-1] if suffix else text
    if suffix and suffix in "Ll":
        return _Tok("lit", int(body), pos, INT64)
    if suffix or "." in body:
        return _Tok("lit", Decimal(body), pos, DOUBLE)
    return _Tok("lit", int(body), pos, INT32)


# --- parser -----------------------------------------------------------------------------

Predicate = Callable[[Any], bool]

_COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


class _Parser:
    def __init__(self, text: str, fields: dict[str, Field], entity_type: str):
        self.toks = _tokenize(text)
        self.i = 0
        self.fields = fields
        self.entity_type = entity_type
        self.used: set[str] = set()
        self.end = len(text)

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ApiError(400, f"Expression expected at position {self.end}.")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise ApiError(400, f"Syntax error at position {tok.pos}.")
        return pred

    def or_expr(self) -> Predicate:
        preds = [self.and_expr()]
        while (tok := self.peek()) and tok.kind == "kw" and tok.value == "or":
            self.i += 1
            preds.append(self.and_expr())
        if len(preds) == 1:
            return preds[0]
        return lambda row: any(p(row) for p in preds)

    def and_expr(self) -> Predicate:
        preds = [self.unary()]
        while (tok := self.peek()) and tok.kind == "kw" and tok.value == "and":
            self.i += 1
            preds.append(self.unary())
        if len(preds) == 1:
            return preds[0]
        return lambda row: all(p(row) for p in preds)

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok and tok.kind == "kw" and tok.value == "not":
            self.i += 1
            inner = self.unary()
            return lambda row: not inner(row)
        if tok and tok.kind == "(":
            self.i += 1
            inner = self.or_expr()
            close = self.peek()
            if close is None or close.kind != ")":
                pos = close.pos if close else self.end
                raise ApiError(400, f"')' or operator expected at position {pos}.")
            self.i += 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.take()
        if left.kind != "name":
            raise ApiError(400, f"Syntax error at position {left.pos}.")
        field = self.fields.get(left.value)
        if field is None:
            raise ApiError(
                400,
                f"No property '{left.value}' exists in type '{self.entity_type}' "
                f"at position {left.pos}.",
            )
        self.used.add(field.name)
        op = self.take()
        if op.kind != "kw" or op.value not in _OPS:
            raise ApiError(400, f"Syntax error at position {op.pos}.")
        lit = self.take()
        if lit.kind != "lit":
            raise ApiError(400, f"Syntax error at position {lit.pos}.")
        _check_types(op, field.type, lit)
        compare = _COMPARE[op.value]
        get = field.get
        value = lit.value
        if field.type == STRING and isinstance(value, str):
            # Exact runs on SQL Server with a case-insensitive collation.
            folded = value.casefold()
            return lambda row: compare(_fold(get(row)), folded)
        return lambda row: compare(get(row), value)


def _fold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


def _check_types(op: _Tok, field_type: str, lit: _Tok) -> None:
    if lit.type == NULL:
        return
    if field_type == lit.type or (field_type in NUMERIC and lit.type in NUMERIC):
        return
    raise ApiError(
        400,
        f"Operator '{op.value}' incompatible with operand types '{field_type}' and "
        f"'{lit.type}' at position {op.pos}.",
    )


def compile_filter(
    text: str, fields: dict[str, Field], entity_type: str
) -> tuple[Predicate, set[str]]:
    """Return a row predicate and the names of the fields the filter refers to."""
    parser = _Parser(text, fields, entity_type)
    return parser.parse(), parser.used


def parse_select(text: str, fields: dict[str, Field], entity_type: str) -> list[Field]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["*"]:
        return list(fields.values())
    selected = []
    for name in names:
        field = fields.get(name)
        if field is None:
            raise ApiError(400, f"No property '{name}' exists in type '{entity_type}'.")
        selected.append(field)
    return selected


def parse_orderby(
    text: str, fields: dict[str, Field], entity_type: str
) -> list[tuple[Field, bool]]:
    """``Name desc, Code`` → [(field, descending)]."""
    order = []
    for part in text.split(","):
        bits = part.split()
        if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")):
            raise ApiError(400, f"Syntax error in '$orderby': '{part.strip()}'.")
        field = fields.get(bits[0])
        if field is None:
            raise ApiError(400, f"No property '{bits[0]}' exists in type '{entity_type}'.")
        order.append((field, len(bits) == 2 and bits[1] == "desc"))
    return order
