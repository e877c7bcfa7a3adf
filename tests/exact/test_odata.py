"""Envelopes, /Date()/ values and amounts: Exact's wire format into Python, exactly."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import from_exact_number as to_decimal
from exact.odata import (
    guid_literal,
    int64_literal,
    parse_date,
    parse_datetime,
    string_literal,
    unwrap,
)


def test_collection_envelope_with_next():
    rows, nxt = unwrap({"d": {"results": [{"ID": 1}], "__next": "https://x/next"}})
    assert rows == [{"ID": 1}] and nxt == "https://x/next"


def test_collection_envelope_last_page():
    assert unwrap({"d": {"results": []}}) == ([], None)


def test_single_entity_envelope():
    assert unwrap({"d": {"ID": "a", "Name": "n"}}) == ([{"ID": "a", "Name": "n"}], None)


def test_list_envelope():
    assert unwrap({"d": [{"ID": 1}, {"ID": 2}]}) == ([{"ID": 1}, {"ID": 2}], None)


@pytest.mark.parametrize("payload", [{}, {"d": "text"}, [], {"error": {}}])
def test_not_an_envelope(payload):
    with pytest.raises(ValueError):
        unwrap(payload)


def test_date_ms_to_aware_utc():
    assert parse_datetime("/Date(1641034800000)/") == datetime(2022, 1, 1, 11, 0, tzinfo=UTC)
    # .NET may append an offset; the milliseconds are UTC regardless
    assert parse_datetime("/Date(1641034800000+0100)/") == datetime(2022, 1, 1, 11, tzinfo=UTC)
    assert parse_datetime(None) is None
    assert parse_date("/Date(1756684800000)/") == date(2025, 9, 1)


def test_amounts_are_exact_decimals():
    assert to_decimal(0.1 + 0.2) == Decimal("0.30")
    assert to_decimal(19.99) == Decimal("19.99")
    assert to_decimal(-96.4) == Decimal("-96.40")
    assert to_decimal(1e6) == Decimal("1000000.00")
    assert to_decimal(2.675) == Decimal("2.68")  # the float's repr, not its binary value
    assert to_decimal(None) is None
    assert isinstance(to_decimal(5), Decimal)


@given(st.integers(min_value=-(10**11), max_value=10**11))
def test_every_cent_amount_survives_the_json_float(cents):
    amount = Decimal(cents) / 100
    assert to_decimal(float(amount)) == amount


def test_filter_literals():
    assert guid_literal("8F3E0000-0000-4000-8000-000000000001") == (
        "guid'8f3e0000-0000-4000-8000-000000000001'"
    )
    assert string_literal("O'Brien") == "'O''Brien'"
    assert int64_literal(123) == "123L"
