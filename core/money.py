"""The one place where money changes representation.

Exact Online speaks `Decimal` amounts in currency units (its JSON numbers are doubles; the
Exact client turns them into Decimal at the seam). GoCardless speaks integer minor units
(payout item amounts are strings of minor units with one decimal place). Everything here is
exact decimal arithmetic: a float is refused outright rather than converted, and an amount
that does not fit the currency's minor unit is an error, never silently rounded.

Like core.audit, this module depends on nothing else in the project, so every app
may import it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 exponents of the currencies GoCardless collects (API notes §5.4).
MINOR_UNIT_EXPONENT: dict[str, int] = {
    "AUD": 2,
    "CAD": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "NZD": 2,
    "SEK": 2,
    "USD": 2,
}


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def exponent(currency: str) -> int:
    try:
        return MINOR_UNIT_EXPONENT[currency]
    except (KeyError, TypeError):
        raise MoneyError(f"{currency!r} is not a currency GoCardless collects") from None


def _require_decimal(amount) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise MoneyError(f"{amount} is not a finite amount")
    return amount


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Decimal currency units → integer minor units, exactly (12.34 EUR → 1234)."""
    amount = _require_decimal(amount)
    scaled = amount.scaleb(exponent(currency))
    integral = scaled.to_integral_value()
    if scaled != integral:
        raise MoneyError(f"{amount} {currency} has more precision than its minor unit")
    return int(integral)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """Integer minor units → Decimal currency units with the currency's places (1234 → 12.34)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be int, not {type(minor).__name__}")
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half up (for amounts that came from doubles)."""
    amount = _require_decimal(amount)
    return amount.quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_HALF_UP)


def parse_minor_string(value: str) -> Decimal:
    """A GoCardless payout item amount ("45.0": minor units, one decimal) as a Decimal."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string of minor units, not {type(value).__name__}")
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise MoneyError(f"{value!r} is not an amount") from None
    if not parsed.is_finite():
        raise MoneyError(f"{value!r} is not a finite amount")
    return parsed


def round_minor(total: Decimal) -> int:
    """Sum of fractional minor units (payout items) → whole minor units, half up."""
    total = _require_decimal(total)
    return int(total.to_integral_value(rounding=ROUND_HALF_UP))


# --- at the providers' seams ----------------------------------------------------------------
# Each provider's wire format is turned into our types here and nowhere else, so the only
# float in the product's money paths is the carrier below, checked to be exact.

CENT = Decimal("0.01")


def from_exact_number(value) -> Decimal | None:
    """An Exact amount (a JSON number, Edm.Double) as Decimal cents. ``Decimal(str(x))`` takes
    the float's shortest repr (``0.1`` stays ``0.1``), then rounds half up to cents: no float
    arithmetic. None or "" (Exact's empty) is None."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def to_exact_number(amount: Decimal) -> float:
    """A Decimal amount as the JSON number Exact takes (Edm.Double). The float is only a
    carrier for serialisation: its shortest repr must be the same decimal text, which is
    checked, so what Exact reads is exactly ``amount``. No arithmetic is ever done on it."""
    amount = _require_decimal(amount)
    carrier = float(amount)
    if Decimal(repr(carrier)) != amount:
        raise MoneyError(f"{amount} cannot be sent exactly")
    return carrier


def minor_units_from_api(value) -> int:
    """A GoCardless amount (integer minor units) as int; absent is 0. A float is refused:
    ``int()`` of one would hide a bug or a changed API."""
    if value is None:
        return 0
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"amount arrived as a {type(value).__name__}")
    return int(value)

