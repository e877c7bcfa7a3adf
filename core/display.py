"""How amounts, statuses and times are shown to people (finance staff, not engineers).

One place so that every screen says the same thing the same way:

- ``money_display(Decimal("12883.1"), "EUR")`` → ``EUR 12,883.10``: the ISO code, a space,
  major units with thousands grouping and exactly the currency's minor-unit places (from
  ``core.money``; a currency it does not know gets two). A negative amount puts the minus
  sign first: ``-EUR 12.00`` (chosen over ``EUR -12.00`` because the sign then lines up at
  the left edge of a column and cannot be read as part of the number's grouping).
  Rounding, when an amount has more places than its currency, is half up.
- ``minor_display(1234, "EUR")`` → ``EUR 12.34``: GoCardless' integer minor units, through
  ``core.money.from_minor_units`` (never a float).
- ``words(code, table)``: a status or cause code in words. The tables below hold the words
  for GoCardless payment statuses and failure causes; a code missing from the table becomes
  a sentence (``"bank_declined_payment"`` → ``"Bank declined payment"``), never the raw
  code. Other apps pass their own small tables.
- ``local_time_display(moment, tenant)`` → ``Tue 3 Mar 2026, 06:00 CET``: an instant in the
  tenant's own time zone (``Tenant.zone``), with the zone's abbreviation.

Like ``core.money`` this module imports nothing from the project's other apps.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone

from core.money import MINOR_UNIT_EXPONENT, from_minor_units

# Shown where there is nothing to show (no amount, no time).
NOTHING = "\u2013"  # an en dash
# Places for a currency core.money does not list (Exact may hold any currency).
DEFAULT_PLACES = 2


def _places(currency: str) -> int:
    return MINOR_UNIT_EXPONENT.get(currency, DEFAULT_PLACES)


def _as_decimal(amount) -> Decimal:
    """Decimal as is; int as whole units; a Decimal string (the totals JSON) parsed. Anything
    else (a binary floating-point number above all: its value is already not the amount
    anyone meant) is refused."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int | str):
        raise TypeError(f"money must be Decimal, not {type(amount).__name__}")
    if isinstance(amount, str):
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"{amount!r} is not an amount") from None
    else:
        value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"{amount} is not a finite amount")
    return value


def money_display(amount: Decimal, currency: str) -> str:
    """``EUR 12,883.10`` / ``-EUR 12.00`` (module docstring); None shows as a dash."""
    if amount is None:
        return NOTHING
    value = _as_decimal(amount)
    places = _places(currency)
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.{places}f}"
    return f"{sign}{currency} {text}".strip() if currency else f"{sign}{text}"


def minor_display(minor: int, currency: str) -> str:
    """GoCardless minor units (``1234``) as ``EUR 12.34``; None shows as a dash."""
    if minor is None:
        return NOTHING
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be int, not {type(minor).__name__}")
    if currency in MINOR_UNIT_EXPONENT:
        return money_display(from_minor_units(minor, currency), currency)
    return money_display(Decimal(minor).scaleb(-DEFAULT_PLACES), currency)


def totals_display(totals: dict | None) -> list[str]:
    """Per-currency amounts (``{"EUR": Decimal(…)}`` or Decimal strings) as one display
    string each, in currency order; zero currencies are left out."""
    shown = []
    for currency, amount in sorted((totals or {}).items()):
        value = _as_decimal(amount)
        if value != 0:
            shown.append(money_display(value, currency))
    return shown


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``1 booking`` / ``3 bookings`` / ``0 bookings``: a count with its noun, never
    ``booking(s)``. ``plural`` for nouns that do not just take an s (``1 entry``/``2 entries``)."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


# --- codes in words ----------------------------------------------------------------------------


def sentence(code: str) -> str:
    """``"late_failure_settled"`` → ``"Late failure settled"``."""
    text = " ".join(str(code).replace("_", " ").replace("-", " ").split())
    return text[:1].upper() + text[1:]


def words(code: str | None, table: dict[str, str]) -> str:
    """The words ``table`` has for ``code``; otherwise the code as a sentence (never the raw
    code with underscores). An empty code is an empty string."""
    if not code:
        return ""
    return table.get(code) or sentence(code)


# GoCardless payment statuses, and the payment events people see as a status (API notes §2.7).
PAYMENT_STATUS_WORDS: dict[str, str] = {
    "pending_customer_approval": "Waiting for the customer's approval",
    "pending_submission": "Waiting to be sent to the bank",
    "submitted": "Sent to the customer's bank",
    "confirmed": "Collected",
    "paid_out": "Collected and paid out",
    "failed": "Failed",
    "charged_back": "Charged back by the customer",
    "cancelled": "Cancelled",
    "customer_approval_denied": "The customer refused to approve it",
    "late_failure_settled": "Failed after payout; deducted from a payout",
    "chargeback_cancelled": "Chargeback cancelled by the bank (collected after all)",
    "chargeback_settled": "Charged back; deducted from a payout",
    "resubmission_requested": "Sent to the bank again (retry)",
    "surcharge_fee_debited": "Surcharge fee charged by GoCardless",
}

# Why a payment (or a mandate) failed, was cancelled or charged back: GoCardless'
# ``details.cause`` (API notes §2.7, the event catalogue).
FAILURE_CAUSE_WORDS: dict[str, str] = {
    "insufficient_funds": "Not enough money in the customer's account",
    "refer_to_payer": "Refused by the customer's bank: ask the customer",
    "bank_account_closed": "The customer's bank account is closed",
    "bank_account_transferred": "The customer moved the account to another bank",
    "invalid_bank_details": "The customer's bank details are wrong",
    "mandate_cancelled": "The mandate was cancelled",
    "mandate_expired": "The mandate expired (not used for too long)",
    "authorisation_disputed": "The customer says they never authorised the Direct Debit",
    "refund_requested": "The customer asked their bank for the money back",
    "direct_debit_not_enabled": "The account does not accept Direct Debits",
    "account_blocked_for_any_financial_transaction": "The customer's account is blocked",
    "payment_stopped": "The customer stopped this payment at their bank",
    "return_on_odfi_request": "Returned at the collecting bank's request",
    "bank_declined_payment": "The customer's bank declined the payment",
    "daily_payment_limit_reached": "The customer's daily payment limit was reached",
    "insufficient_payment_permissions": "The account may not make this payment",
    "payment_violated_mandate_parameters": "The payment did not fit the mandate's limits",
    "initial_one_off_payment_failed": "The first payment on the mandate failed",
    "instalment_schedule_cancelled": "The instalment schedule was cancelled",
    "payment_cancelled": "Cancelled on request",
    "other": "Another reason (see the bank's description)",
    "test_failure": "Test failure (sandbox)",
}


# --- times -------------------------------------------------------------------------------------


def local_time(moment: dt.datetime, tenant) -> dt.datetime:
    """``moment`` in the tenant's zone (a naive moment is taken to be in the server's zone)."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.astimezone(tenant.zone)


def local_time_display(moment: dt.datetime | None, tenant) -> str:
    """``Tue 3 Mar 2026, 06:00 CET``: the instant where the tenant is."""
    if moment is None:
        return NOTHING
    local = local_time(moment, tenant)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {local.tzname()}"


def local_date_display(day: dt.date | None) -> str:
    """``Tue 3 Mar 2026``."""
    if day is None:
        return NOTHING
    return f"{day:%a} {day.day} {day:%b %Y}"
