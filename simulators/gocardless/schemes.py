"""Per-scheme rules (currency, limits, reference length, timings) and the fee formula.

Timings are working days on the scheme's calendar (see clock.py). They follow the notes'
"payment timings" table (create -> charge -> confirmed -> payout) approximately; see
docs/simulator-gocardless.md for the exact numbers and what is simplified.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    name: str
    currency: str
    minimum: int  # minor units
    maximum: int  # minor units
    reference_max: int | None  # None: no limit
    lead_days: int  # earliest charge date after today, active mandate
    submit_before: int  # payment submitted this many working days before charge date
    confirm_after: int  # confirmed this many working days after charge date
    payout_after: int  # paid out this many working days after charge date
    mandate_activation: int  # working days from mandate submission to active
    reason_code_failed: str
    reason_code_chargeback: str
    reason_code_cancelled: str


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("bacs", "GBP", 100, 500_000, 10, 3, 2, 1, 2, 2, "ARUDD-0", "DDICA-1", "ADDACS-B"),
        Scheme("sepa_core", "EUR", 100, 500_000, 140, 3, 2, 1, 3, 1, "AM04", "MD06", "AC04"),
        Scheme("autogiro", "SEK", 1_000, 5_000_000, 11, 8, 3, 1, 2, 1, "TK82-1", "TK82-2", "MD01"),
        Scheme("betalingsservice", "DKK", 1_000, 5_000_000, 30, 8, 3, 1, 4, 1, "0237", "0238",
               "MD01"),
        Scheme("becs", "AUD", 200, 1_000_000, 30, 1, 1, 2, 3, 1, "6", "6", "MD01"),
        Scheme("becs_nz", "NZD", 200, 1_000_000, 12, 2, 1, 2, 4, 1, "AM04", "MD06", "MD01"),
        Scheme("pad", "CAD", 200, 500_000, None, 3, 1, 2, 3, 1, "901", "905", "MD01"),
        Scheme("ach", "USD", 100, 500_000, 10, 2, 1, 2, 3, 1, "ACH_RETURN-R01",
               "ACH_RETURN-R10", "ACH_RETURN-R02"),
    )
}

# Refund references have their own per-scheme limits (refund create, ``reference``): unlike
# payments, PAD refunds take 12 characters.
REFUND_REFERENCE_MAX = {"ach": 10, "autogiro": 11, "bacs": 10, "becs": 30, "becs_nz": 12,
                        "betalingsservice": 30, "pad": 12, "sepa_core": 140}

DEFAULT_SCHEME_FOR_CURRENCY = {s.currency: s.name for s in SCHEMES.values()}

# Fee formula (deliberate choice, documented): 1% of the amount (rounded half up) + 20 minor
# units, capped at 400 minor units; VAT 20% on every fee, rounded half up. Integers only.
FEE_PERCENT_BASIS_POINTS = 100
FEE_FIXED = 20
FEE_CAP = 400
VAT_PERCENT = 20
SURCHARGE_FEE = 500  # charged when a chargeback is settled


def _percent_of(amount: int, basis_points: int) -> int:
    return (amount * basis_points + 5_000) // 10_000


def transaction_fee(amount: int) -> int:
    return min(_percent_of(amount, FEE_PERCENT_BASIS_POINTS) + FEE_FIXED, FEE_CAP)


def vat_on(fee: int) -> int:
    return (fee * VAT_PERCENT + 50) // 100
