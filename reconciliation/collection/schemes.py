"""What each Direct Debit scheme allows per payment, and how early it can charge.

From the API notes §6 ("Currency / scheme rules"): default per-payment minimum and maximum
(GoCardless raises the maximum for some creditors after ~75 successful payments; a tenant on a
raised limit is refused by GoCardless with a validation error, shown on the attempt) and the
working days from creating a payment to its earliest charge date on an active mandate. ACH's
limits are unconfirmed in the notes; the simulator's values are used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SchemeRule:
    currency: str
    minimum: int  # minor units
    maximum: int  # minor units
    lead_working_days: int


SCHEME_RULES: dict[str, SchemeRule] = {
    "bacs": SchemeRule("GBP", 100, 500_000, 3),
    "sepa_core": SchemeRule("EUR", 100, 500_000, 3),
    "autogiro": SchemeRule("SEK", 1_000, 5_000_000, 8),
    "betalingsservice": SchemeRule("DKK", 1_000, 5_000_000, 8),
    "becs": SchemeRule("AUD", 200, 1_000_000, 1),
    "becs_nz": SchemeRule("NZD", 200, 1_000_000, 2),
    "pad": SchemeRule("CAD", 200, 500_000, 3),
    "ach": SchemeRule("USD", 100, 500_000, 2),
}


def scheme_rule(scheme: str) -> SchemeRule | None:
    return SCHEME_RULES.get(scheme)


# The schemes in the words finance staff read (the same words as the GoCardless pages use).
SCHEME_WORDS: dict[str, str] = {
    "sepa_core": "SEPA Direct Debit",
    "bacs": "Bacs Direct Debit",
    "autogiro": "Autogiro (Sweden)",
    "betalingsservice": "Betalingsservice (Denmark)",
    "becs": "BECS Direct Debit (Australia)",
    "becs_nz": "BECS Direct Debit (New Zealand)",
    "pad": "Pre-authorised debit (Canada)",
    "ach": "ACH Debit (United States)",
}
