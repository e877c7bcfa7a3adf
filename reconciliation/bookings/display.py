"""Bookings in words: what a booking is, its rule and state, the facts it was made from and
the lines it sends to Exact, for the admin pages, the report and its CSV (core.display does
the money and the times; this module only knows bookings)."""

from __future__ import annotations

from datetime import date

from core.display import (
    FAILURE_CAUSE_WORDS,
    PAYMENT_STATUS_WORDS,
    local_date_display,
    minor_display,
    money_display,
    words,
)
from core.money import from_exact_number

from .models import BookingState, RepostState, Rule

RULE_WORDS: dict[str, str] = {
    Rule.RECEIPT: "Payment collected: invoice closed",
    Rule.REVERSAL: "Payment reversed: invoice open again",
    Rule.PAYOUT: "Payout: fees, VAT and transfer",
    Rule.PAYOUT_BANK: "Payout arrives in the bank",
    Rule.PAYOUT_BOUNCED: "Payout bounced",
    Rule.REFUND: "Refund paid",
    Rule.REFUND_RETURNED: "Refund failed, money returned",
}
STATE_WORDS: dict[str, str] = {
    BookingState.PENDING: "Waiting to be posted",
    BookingState.SENT: "Being posted (outcome not yet known)",
    BookingState.CONFIRMED: "Confirmed in Exact",
    BookingState.FAILED: "Failed (tried again later)",
    BookingState.GAVE_UP: "Failed (needs attention)",
}
REPOST_STATE_WORDS: dict[str, str] = {
    RepostState.WAITING: "Waiting for a worker",
    RepostState.RUNNING: "Re-posting",
    RepostState.FINISHED: "Finished",
}
# GoCardless payout statuses (API notes: pending, paid, bounced).
PAYOUT_STATUS_WORDS: dict[str, str] = {
    "pending": "Pending (not yet paid)",
    "paid": "Paid to the bank",
    "bounced": "Bounced (returned by the bank)",
}
FEE_WORDS: dict[str, str] = {
    "gocardless_fee": "GoCardless fees",
    "app_fee": "App fees",
    "surcharge_fee": "Surcharges",
    "revenue_share": "Revenue share",
}
PAYMENT_ITEM_WORDS: dict[str, str] = {
    "payment_paid_out": "Payments paid out",
    "payment_failed": "Failed payments deducted",
    "payment_charged_back": "Chargebacks deducted",
    "payment_refunded": "Refunds deducted",
    "refund": "Refunds",
    "refund_funds_returned": "Refunded money returned",
}


def rule_words(code: str) -> str:
    return words(code, RULE_WORDS)


def state_words(code: str) -> str:
    return words(code, STATE_WORDS)


def payment_status_words(code: str) -> str:
    return words(code, PAYMENT_STATUS_WORDS)


def payout_status_words(code: str) -> str:
    return words(code, PAYOUT_STATUS_WORDS)


def cause_words(code: str) -> str:
    return words(code, FAILURE_CAUSE_WORDS)


def booking_subject(booking) -> tuple[str, str]:
    """(kind, GoCardless id) of what the booking is about (``Booking.subject``)."""
    return booking.subject()


def booking_sentence(booking) -> str:
    """``Payout PO0000… to the bank`` (``Booking.sentence``)."""
    return booking.sentence()


def attempt_words(attempt_key: str, invoice) -> str:
    """``Invoice 26010, attempt 1`` for the collection engine's key ``<receivable>/1``;
    ``<receivable>/1.2`` is its second instalment, ``<receivable>/1.0`` the payment link sent
    after it failed (collection/submission.py, pay_links.py): said in words, never "1.0"."""
    number = str(attempt_key or "").rsplit("/", 1)[-1]
    attempt, _, part = number.partition(".")
    if part == "0":
        number = f"{attempt}, paid through the payment link"
    elif part:
        number = f"{attempt}, instalment {part}"
    if invoice:
        return f"Invoice {invoice}, attempt {number}" if number else f"Invoice {invoice}"
    return f"Attempt {number}" if number else ""


def first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def payment_origin_words(attempt_key: str, invoice, plan: str = "") -> str:
    """How a payment came to pay its invoice: the collection engine's attempt, or the
    GoCardless subscription / instalment schedule it was matched from."""
    if attempt_key:
        return attempt_words(attempt_key, invoice)
    if plan:
        kind = "instalment schedule" if plan.startswith("IS") else "subscription"
        return f"Invoice {invoice}, paid by {kind} {plan}" if invoice else f"{kind} {plan}"
    return ""


def facts_rows(booking, *, account_names: dict | None = None) -> list[tuple[str, str]]:
    """What the booking was made from (captured from GoCardless when the event came), as
    (label, words) rows: amounts with their currency, never minor units or field names."""
    facts = booking.facts or {}
    currency = facts.get("currency") or booking.currency
    names = account_names or {}
    rows: list[tuple[str, str]] = []

    def amount(minor) -> str:
        return minor_display(int(minor), currency) if minor is not None else ""

    for key, label in (("payment", "Payment"), ("refund", "Refund"), ("payout", "Payout")):
        if facts.get(key):
            rows.append((label, str(facts[key])))
    if facts.get("reference"):
        rows.append(("Payout reference", str(facts["reference"])))
    if facts.get("invoice"):
        rows.append(("Invoice", str(facts["invoice"])))
    if facts.get("account"):
        account = str(facts["account"])
        rows.append(("Customer (Exact account)", names.get(account) or account))
    if facts.get("attempt"):
        rows.append(("Collection attempt", attempt_words(facts["attempt"], facts.get("invoice"))))
    if facts.get("plan"):
        rows.append(("Paid by", first_upper(payment_origin_words("", None, facts["plan"]))))
    if facts.get("from_suspense"):
        rows.append(
            ("Taken out of suspense", f"Booked to suspense with payout {facts['from_suspense']}")
        )
    if facts.get("amount") is not None:
        rows.append(("Amount", amount(facts["amount"])))
    if facts.get("cause") and booking.rule == Rule.REVERSAL:
        rows.append(("Reason", cause_words(facts["cause"])))
    if facts.get("arrival_date"):
        try:
            arrival = local_date_display(date.fromisoformat(str(facts["arrival_date"])))
        except ValueError:
            arrival = str(facts["arrival_date"])
        rows.append(("Arrives in the bank", arrival))
    for kind, fee in (facts.get("fees") or {}).items():
        text = amount(fee.get("amount", 0))
        if fee.get("vat"):
            text += f", of which VAT {amount(fee['vat'])}"
        rows.append((words(kind, FEE_WORDS), text))
    if facts.get("payment_items") is not None and booking.rule == Rule.PAYOUT:
        rows.append(("Payments and deductions in the payout", amount(facts["payment_items"])))
    for payment, minor in (facts.get("foreign") or {}).items():
        rows.append((f"Payment {payment} (not created by ml-connector)", amount(minor)))
    for kind, minor in (facts.get("unknown") or {}).items():
        rows.append((f"{words(kind, PAYMENT_ITEM_WORDS)} (no booking rule)", amount(minor)))
    if facts.get("side"):
        rows.append(("Side", "The bank" if facts["side"] == "bank" else "GoCardless balance"))
    if facts.get("event"):
        rows.append(("GoCardless event", str(facts["event"])))
    return rows


def body_lines(booking, *, gl_codes: dict | None = None, account_names: dict | None = None):
    """The lines of the entry as sent to Exact (``request_body``), each a dict of words:
    account, description, amount and VAT with the currency."""
    body = booking.request_body or {}
    currency = body.get("Currency") or booking.currency
    codes = gl_codes or {}
    names = account_names or {}
    lines = []
    for line in body.get("BankEntryLines") or []:
        gl = str(line.get("GLAccount") or "")
        account = str(line.get("Account") or "")
        where = f"G/L {codes[gl]}" if gl in codes else (f"G/L account {gl}" if gl else "")
        if account:
            customer = names.get(account) or account
            where = f"{where}, customer {customer}" if where else f"Customer {customer}"
        amount = from_exact_number(line.get("AmountFC"))
        vat = from_exact_number(line.get("AmountVATFC"))
        vat_text = money_display(vat, currency) if vat is not None else ""
        if vat is not None and line.get("VATCode"):
            vat_text += f" (VAT code {line['VATCode']})"
        lines.append(
            {
                "account": where,
                "description": str(line.get("Description") or ""),
                "amount": money_display(amount, currency) if amount is not None else "",
                "vat": vat_text,
            }
        )
    return lines


def journal_of(booking) -> str:
    return str((booking.request_body or {}).get("JournalCode") or "")
