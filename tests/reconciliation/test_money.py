"""Decimal ↔ minor units is exact for every amount and currency we collect; floats are refused."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    MINOR_UNIT_EXPONENT,
    MoneyError,
    from_minor_units,
    parse_minor_string,
    quantize,
    round_minor,
    to_minor_units,
)

currencies = st.sampled_from(sorted(MINOR_UNIT_EXPONENT))
minor_amounts = st.integers(min_value=-(10**12), max_value=10**12)


@given(minor=minor_amounts, currency=currencies)
def test_minor_units_round_trip_exactly(minor, currency):
    amount = from_minor_units(minor, currency)
    assert isinstance(amount, Decimal)
    assert amount.as_tuple().exponent == -MINOR_UNIT_EXPONENT[currency]
    assert to_minor_units(amount, currency) == minor


@given(
    amount=st.decimals(min_value=-(10**10), max_value=10**10, places=2, allow_nan=False),
    currency=currencies,
)
def test_decimal_round_trip_exactly(amount, currency):
    assert from_minor_units(to_minor_units(amount, currency), currency) == amount


@given(
    amount=st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False),
    currency=currencies,
)
def test_sub_minor_precision_is_refused_not_rounded(amount, currency):
    if amount == amount.quantize(Decimal("0.01")):
        assert from_minor_units(to_minor_units(amount, currency), currency) == amount
    else:
        with pytest.raises(MoneyError):
            to_minor_units(amount, currency)


def test_examples():
    assert to_minor_units(Decimal("12.34"), "EUR") == 1234
    assert to_minor_units(Decimal("5000"), "GBP") == 500000
    assert from_minor_units(1, "SEK") == Decimal("0.01")
    assert quantize(Decimal("10.005"), "EUR") == Decimal("10.01")
    assert parse_minor_string("45.0") + parse_minor_string("-0.5") == Decimal("44.5")
    assert round_minor(Decimal("44.5")) == 45


@pytest.mark.parametrize("bad", [12.34, 1, True, "12.34", None])
def test_floats_and_other_types_are_refused(bad):
    with pytest.raises(TypeError):
        to_minor_units(bad, "EUR")


@pytest.mark.parametrize("bad", [1.0, Decimal("1"), "1"])
def test_minor_units_must_be_int(bad):
    with pytest.raises(TypeError):
        from_minor_units(bad, "EUR")


def test_unknown_currency_and_non_finite_are_errors():
    with pytest.raises(MoneyError):
        to_minor_units(Decimal("1"), "BTC")
    with pytest.raises(MoneyError):
        to_minor_units(Decimal("NaN"), "EUR")
    with pytest.raises(MoneyError):
        parse_minor_string("abc")
