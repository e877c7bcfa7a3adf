"""The booking rules: which money event becomes which entry in Exact (docs/bookings.md).

Two halves:
- ``*_facts``: read the GoCardless mirrors at the moment the event is processed and keep what
  the entry needs (minor units, ids, invoice number, customer account). Nothing here needs
  Exact or the ledger settings, so a booking can always be created inside the event
  transaction.
- ``entry_body``: turn a booking's facts into the Exact ``financialtransaction/BankEntries``
  body with the tenant's current settings, when the booking is posted.

Every entry is a bank entry in the clearing journal (the GoCardless balance), signed as money
into that balance, except the optional bank side of a payout, which goes into the real bank
journal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

from core.money import (
    MoneyError,
    from_minor_units,
    parse_minor_string,
    round_minor,
    to_exact_number,
)
from gocardless.models import Payment, PayoutItemsState

from .models import Booking, BookingSettings, Rule

BANK_ENTRIES = "financialtransaction/BankEntries"

# payout_items types that are money of one payment or refund: already in the clearing
# journal through that payment's receipt/reversal or that refund's booking.
PAYMENT_ITEM_TYPES = {
    "payment_paid_out",
    "payment_failed",
    "payment_charged_back",
    "payment_refunded",
    "refund",
    "refund_funds_returned",
}
FEE_ITEM_TYPES = ("gocardless_fee", "app_fee", "surcharge_fee", "revenue_share")
ATTEMPT_RE = re.compile(r"^(?P<receivable>[^/]+)/(?P<attempt>\d+)(?:\.(?P<part>\d+))?$")


class RuleError(ValueError):
    """The booking cannot be turned into an entry (settings incomplete, data inconsistent)."""


# --- who the money belongs to ----------------------------------------------------------------


def payment_owner(metadata: dict | None) -> dict | None:
    """The collection engine's metadata (mlc_attempt, exact_invoice, exact_account) parsed;
    None when the payment is not ours. Receivable rows may be gone: metadata is the truth."""
    metadata = metadata or {}
    attempt = str(metadata.get("mlc_attempt") or "")
    match = ATTEMPT_RE.match(attempt)
    invoice = str(metadata.get("exact_invoice") or "")
    account = str(metadata.get("exact_account") or "")
    if not match or not invoice.isdigit() or not account:
        return None
    return {
        "attempt": attempt,
        "receivable": match["receivable"],
        "attempt_number": int(match["attempt"]),
        "invoice": int(invoice),
        "account": account,
    }


def plan_owner(match) -> dict | None:
    """The owner of a plan payment matched to an invoice (``PlanPaymentMatch``), in the
    shape of ``payment_owner``: no attempt, the plan instead. None when not matched."""
    if match is None or match.state != "matched" or not match.invoice_number:
        return None
    return {
        "attempt": "",
        "plan": match.plan,
        "receivable": str(match.receivable_exact_id),
        "attempt_number": 0,
        "invoice": int(match.invoice_number),
        "account": str(match.account_exact_id),
    }


# --- facts ---------------------------------------------------------------------------------


def payment_facts(payment, owner: dict, *, event=None) -> dict:
    plan = {"plan": owner["plan"]} if owner.get("plan") else {}
    return {
        **plan,
        "payment": payment.gocardless_id,
        "attempt": owner["attempt"],
        "receivable": owner["receivable"],
        "invoice": owner["invoice"],
        "account": owner["account"],
        "amount": payment.amount,
        "currency": payment.currency,
        "event": getattr(event, "event_id", ""),
        "cause": (getattr(event, "details", None) or {}).get("cause", ""),
    }


def refund_facts(refund, payment, owner: dict, *, event=None) -> dict:
    return {
        "refund": refund.gocardless_id,
        "payment": payment.gocardless_id if payment else refund.payment_id,
        "invoice": owner["invoice"],
        "account": owner["account"],
        "amount": refund.amount,
        "currency": refund.currency,
        "event": getattr(event, "event_id", ""),
    }


def payout_facts(payout, *, owned_payments: set[str]) -> dict:
    """Fees (with their VAT) per item type, and the payment items of payments that are not
    ours (a receipt for them was never booked, so the payout must bring them into the
    clearing journal). Item amounts are minor units with one decimal; sums are rounded to
    whole minor units only once, per line."""
    fees: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"amount": Decimal(0), "vat": Decimal(0)}
    )
    foreign: dict[str, Decimal] = defaultdict(Decimal)
    unknown: dict[str, Decimal] = defaultdict(Decimal)
    payment_items = Decimal(0)
    lines_gone = payout_lines_gone(payout)
    if lines_gone:
        # GoCardless no longer gives this payout's lines (410 Gone, older than six months):
        # its fees are its own ``deducted_fees`` (VAT included, not separable) and its
        # payments are those that name it. entry_body refuses to post when they do not make
        # the payout's amount (refunds or chargebacks inside it), so nothing wrong is booked.
        fees["gocardless_fee"]["amount"] = Decimal(-payout.deducted_fees)
        for payment_id, amount in payout_payments_named(payout):
            payment_items += amount
            if payment_id not in owned_payments:
                foreign[payment_id] += amount
    for item in payout.items.all().order_by("position"):
        amount = parse_minor_string(str(item.amount))
        if item.item_type in FEE_ITEM_TYPES:
            fees[item.item_type]["amount"] += amount
            for tax in item.taxes or []:
                fees[item.item_type]["vat"] += parse_minor_string(str(tax.get("amount", "0")))
        elif item.item_type in PAYMENT_ITEM_TYPES:
            payment_items += amount
            if item.payment_id and item.payment_id not in owned_payments:
                foreign[item.payment_id] += amount
        else:
            # Never raise here (this runs inside event processing): the post fails instead,
            # visibly, until someone decides how to book it.
            unknown[item.item_type] += amount
    return {
        "payout": payout.gocardless_id,
        "reference": payout.reference,
        "amount": payout.amount,
        "currency": payout.currency,
        "arrival_date": payout.arrival_date.isoformat() if payout.arrival_date else None,
        "fees": {
            kind: {"amount": round_minor(v["amount"]), "vat": round_minor(v["vat"])}
            for kind, v in sorted(fees.items())
        },
        "foreign": {pid: round_minor(v) for pid, v in sorted(foreign.items())},
        "payment_items": round_minor(payment_items),
        "unknown": {kind: round_minor(v) for kind, v in sorted(unknown.items())},
        **({"lines_gone": True, "deducted_fees": payout.deducted_fees} if lines_gone else {}),
    }


def payout_lines_gone(payout) -> bool:
    """GoCardless answered 410 for the payout's lines and none were fetched before."""
    return payout.items_state == PayoutItemsState.UNAVAILABLE and not payout.items.exists()


def payout_payments_named(payout) -> list[tuple[str, int]]:
    """(payment id, amount in minor units) of the payments whose ``links.payout`` is it."""
    return list(
        Payment.objects.filter(tenant_id=payout.tenant_id, payout_id=payout.gocardless_id)
        .order_by("gocardless_id")
        .values_list("gocardless_id", "amount")
    )


# --- Exact bodies ----------------------------------------------------------------------------


def exact_amount(amount: Decimal) -> float:
    """``amount`` as Exact's JSON number (core.money.to_exact_number), refused as a rule
    error (the booking fails with the reason) when it cannot be sent exactly."""
    try:
        return to_exact_number(amount)
    except MoneyError as exc:
        raise RuleError(str(exc)) from exc


def _gl(settings: BookingSettings, field: str, fallback: str | None = None) -> str:
    code = getattr(settings, field) or (getattr(settings, fallback) if fallback else "")
    guid = (settings.resolved.get("gl") or {}).get(code) if code else None
    if not guid:
        name = field.removesuffix("_code").replace("_", " ")
        raise RuleError(f"booking settings: {name} is not set or not validated against Exact")
    return guid


def _journal(settings: BookingSettings, field: str) -> str:
    code = getattr(settings, field)
    if not code or code not in (settings.resolved.get("journals") or {}):
        name = field.removesuffix("_code").replace("_", " ")
        raise RuleError(f"booking settings: {name} is not set or not validated against Exact")
    return code


def _units(minor: int, currency: str) -> float:
    return exact_amount(from_minor_units(int(minor), currency))


def entry_body(booking: Booking, settings: BookingSettings) -> dict:
    """The BankEntries POST body. Every line carries the booking's reference in ``Notes``."""
    date = booking.booking_date.isoformat()
    journal = _journal(settings, "clearing_journal_code")

    def line(**fields) -> dict:
        return {"Date": date, "Notes": booking.reference, **fields}

    if booking.rule in (Rule.RECEIPT, Rule.REVERSAL):
        lines = _receipt_lines(booking, settings, line)
    elif booking.rule in (Rule.REFUND, Rule.REFUND_RETURNED):
        lines = _refund_lines(booking, settings, line)
    elif booking.rule == Rule.PAYOUT:
        lines = _payout_lines(booking, settings, line)
    elif booking.rule in (Rule.PAYOUT_BANK, Rule.PAYOUT_BOUNCED):
        journal, lines = _transfer_entry(booking, settings, line, clearing=journal)
    else:  # pragma: no cover - every Rule is handled above
        raise RuleError(f"no rule for {booking.rule}")
    return {"JournalCode": journal, "Currency": booking.currency, "BankEntryLines": lines}


def _receipt_lines(booking: Booking, settings: BookingSettings, line) -> list[dict]:
    facts = booking.facts
    sign = 1 if booking.rule == Rule.RECEIPT else -1
    what = "receipt" if sign > 0 else f"reversal ({facts.get('cause') or 'failed'})"
    lines = []
    if booking.rule == Rule.RECEIPT and facts.get("from_suspense"):
        # A plan payment matched after its payout booked it to suspense: the money is in the
        # clearing journal already; it moves from the suspense account to the invoice.
        lines.append(
            line(
                GLAccount=_gl(settings, "unmatched_gl_code"),
                AmountFC=_units(-facts["amount"], booking.currency),
                Description=f"GoCardless {facts['payment']} out of suspense (payout "
                f"{facts['from_suspense']}) to invoice {facts['invoice']}",
            )
        )
    return [
        line(
            Account=facts["account"],
            GLAccount=_gl(settings, "receivables_gl_code"),
            AmountFC=_units(sign * facts["amount"], booking.currency),
            OurRef=facts["invoice"],
            Description=f"GoCardless {facts['payment']} {what} invoice {facts['invoice']}",
        ),
        *lines,
    ]


def _refund_lines(booking: Booking, settings: BookingSettings, line) -> list[dict]:
    facts = booking.facts
    sign = -1 if booking.rule == Rule.REFUND else 1
    what = "refund" if sign < 0 else "refund returned"
    # Not matched to the invoice (no OurRef): the invoice stays paid; the refund is an
    # open debit on the customer until matched with the credit note in Exact.
    return [
        line(
            Account=facts["account"],
            GLAccount=_gl(settings, "receivables_gl_code"),
            AmountFC=_units(sign * facts["amount"], booking.currency),
            Description=f"GoCardless {what} {facts['refund']} of {facts['payment']} "
            f"(invoice {facts['invoice']})",
        )
    ]


def _transfer_entry(
    booking: Booking, settings: BookingSettings, line, *, clearing: str
) -> tuple[str, list[dict]]:
    """(journal, lines) of a payout's bank side or of a bounced payout."""
    facts, cur = booking.facts, booking.currency
    if booking.rule == Rule.PAYOUT_BANK:
        journal = _journal(settings, "bank_journal_code")
        return journal, [
            line(
                GLAccount=_gl(settings, "transfer_gl_code"),
                AmountFC=_units(facts["amount"], cur),
                Description=f"GoCardless payout {facts['payout']} {facts['reference']}",
            )
        ]
    # Bounced: the transfer did not reach the bank: the money is back in the GoCardless
    # balance (sequence 1, clearing journal) and, when the bank side was booked, out of the
    # bank again (sequence 2, bank journal).
    journal, sign = clearing, 1
    if facts.get("side") == "bank":
        journal, sign = _journal(settings, "bank_journal_code"), -1
    return journal, [
        line(
            GLAccount=_gl(settings, "transfer_gl_code"),
            AmountFC=_units(sign * facts["amount"], cur),
            Description=f"GoCardless payout {facts['payout']} bounced {facts['reference']}",
        )
    ]


FEE_GL = {
    "gocardless_fee": ("fees_gl_code", None),
    "app_fee": ("app_fees_gl_code", "fees_gl_code"),
    "revenue_share": ("app_fees_gl_code", "fees_gl_code"),
    "surcharge_fee": ("surcharges_gl_code", "fees_gl_code"),
}
FEE_LABEL = {
    "gocardless_fee": "fees",
    "app_fee": "app fees",
    "revenue_share": "revenue share",
    "surcharge_fee": "surcharges",
}


def _payout_lines(booking: Booking, settings: BookingSettings, line) -> list[dict]:
    facts, cur = booking.facts, booking.currency
    payout, reference = facts["payout"], facts["reference"]
    if facts.get("unknown"):
        raise RuleError(
            f"payout {payout} has payout item types without a booking rule: "
            + ", ".join(sorted(facts["unknown"]))
        )
    gone = ""
    if facts.get("lines_gone"):
        made = facts["payment_items"] - facts["deducted_fees"]
        if made != facts["amount"]:
            raise RuleError(
                f"GoCardless no longer gives the lines of payout {payout} (older than six "
                f"months), and the payments that name it "
                f"({from_minor_units(facts['payment_items'], cur)} {cur}) less its fees "
                f"({from_minor_units(facts['deducted_fees'], cur)} {cur}) do not make its "
                f"amount ({from_minor_units(facts['amount'], cur)} {cur}): it holds refunds or "
                "chargebacks: book it by hand in Exact (this booking stays failed, and shown)"
            )
        gone = " (lines no longer available from GoCardless; VAT not split)"
    lines = []
    for kind, fee in facts["fees"].items():
        if not fee["amount"]:
            continue
        field, fallback = FEE_GL[kind]
        fee_line = line(
            GLAccount=_gl(settings, field, fallback),
            AmountFC=_units(fee["amount"], cur),
            Description=f"GoCardless {FEE_LABEL[kind]} payout {payout} {reference}{gone}",
        )
        if fee["vat"]:
            # AmountFC includes the VAT; Exact splits it off by the VAT code.
            fee_line["AmountVATFC"] = _units(fee["vat"], cur)
            if settings.fees_vat_code:
                fee_line["VATCode"] = settings.fees_vat_code
        lines.append(fee_line)
    for payment, amount in facts["foreign"].items():
        if not settings.unmatched_gl_code:
            raise RuleError(
                f"payout {payout} contains payment {payment}, which ml-connector did not "
                "create: set the unmatched payments G/L account in the booking settings"
            )
        lines.append(
            line(
                GLAccount=_gl(settings, "unmatched_gl_code"),
                AmountFC=_units(amount, cur),
                Description=f"GoCardless {payment} (not created by ml-connector) payout {payout}",
            )
        )
    lines.append(
        line(
            GLAccount=_gl(settings, "transfer_gl_code"),
            AmountFC=_units(-facts["amount"], cur),
            Description=f"GoCardless payout {payout} {reference}",
        )
    )
    return lines
