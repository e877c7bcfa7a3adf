"""The reconciliation report in words, for its page and its CSV: totals as labelled
sentences, statuses and mismatch kinds in words, attempts by invoice number, dates readable.
The page shows money with its currency (core.display); the CSV keeps plain numbers beside a
Currency column (report_csv.py) and takes its words from here."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.urls import reverse

from core.display import NOTHING, local_date_display, money_display
from exact.models import ExactAccount

from .display import payment_origin_words, payment_status_words, payout_status_words, state_words
from .models import Booking
from .report import MISMATCH_KINDS, Report

# (label, count key, noun for the count, amount key); report.totals keys stay the data's.
TOTALS = (
    ("Collected", "collected_count", "payment", "collected"),
    ("Failed", "failed_count", "payment", "failed"),
    ("Collected again after a failure", "retried_count", "invoice", None),
    ("Charged back", "charged_back_count", "payment", "charged_back"),
    ("Refunded", None, None, "refunded"),
    ("Still open in Exact", None, None, "outstanding"),
    ("Payouts", "payouts_count", "payout", None),
    ("Paid out before deductions and fees", None, None, "payouts_gross"),
    ("Failures, chargebacks and refunds deducted", None, None, "payouts_deductions"),
    ("GoCardless fees without VAT", None, None, "payouts_fees"),
    ("VAT on GoCardless fees", None, None, "payouts_vat"),
    ("Paid to the bank", None, None, "payouts_net"),
    ("Payments not created by ml-connector", "unmatched_count", "payment", None),
    ("Mismatches between Exact and GoCardless", "mismatches_count", "mismatch", None),
)
PLURAL = {"mismatch": "mismatches"}


def counted(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else PLURAL.get(noun, noun + 's')}"


@dataclass
class TotalRow:
    label: str
    count: int | None
    amount: Decimal | None
    text: str  # "13 payments, EUR 18,840.65"


def total_rows(report: Report) -> list[TotalRow]:
    totals = report.totals
    rows = []
    for label, count_key, noun, amount_key in TOTALS:
        count = totals[count_key] if count_key else None
        amount = totals[amount_key] if amount_key else None
        parts = []
        if count is not None:
            parts.append(counted(count, noun))
        if amount is not None:
            parts.append(money_display(amount, report.currency))
        rows.append(TotalRow(label, count, amount, ", ".join(parts)))
    return rows


def account_names(report: Report) -> dict[str, str]:
    ids = {p.account for p in report.payments if p.account}
    if not ids:
        return {}
    rows = ExactAccount.objects.filter(tenant=report.tenant).values_list("exact_id", "name")
    return {str(exact_id): name for exact_id, name in rows if str(exact_id) in ids and name}


def mismatch_subject(mismatch, bookings: dict[int, Booking]) -> str:
    if mismatch.kind == "booking_not_posted" and mismatch.booking_pks:
        booking = bookings.get(mismatch.booking_pks[0])
        if booking is not None:
            return booking.sentence()
    if mismatch.kind == "not_ours":
        return f"Payment {mismatch.subject}"
    return mismatch.subject[:1].upper() + mismatch.subject[1:]


def report_bookings(report: Report) -> dict[int, Booking]:
    pks = {pk for row in report.payouts for pk in row.booking_pks}
    pks |= {pk for m in report.mismatches for pk in m.booking_pks}
    return {b.pk: b for b in Booking.objects.filter(pk__in=pks)}


def report_page(report: Report) -> dict:
    """Everything the page shows, already in words."""
    currency = report.currency
    names = account_names(report)
    bookings = report_bookings(report)

    def money(value) -> str:
        return money_display(value, currency) if value is not None else ""

    def booking_url(pk: int) -> str:
        return reverse("admin:bookings_booking_change", args=[pk])

    payments = [
        {
            "payment": p.payment,
            "charge_date": local_date_display(p.charge_date),
            "status": payment_status_words(p.status),
            "amount": money(p.amount),
            "refunded": money(p.refunded),
            "invoice": str(p.invoice) if p.invoice else "",
            "customer": names.get(p.account, ""),
            "attempt_key": p.attempt,
            "attempt": payment_origin_words(p.attempt, p.invoice, p.plan),
            "receipt": state_words(p.receipt) if p.receipt else "Not booked",
            "reversal": state_words(p.reversal) if p.reversal else NOTHING,
            "ours": p.ours,
        }
        for p in report.payments
    ]
    payouts = [
        {
            "payout": po.payout,
            "reference": po.reference,
            "status": payout_status_words(po.status),
            "paid_on": local_date_display(po.paid_on),
            "arrival_date": local_date_display(po.arrival_date),
            "gross": money(po.gross),
            "deductions": money(po.deductions),
            "fees": money(po.fees),
            "vat": money(po.vat),
            "net": money(po.net),
            "entries": [
                {
                    "url": booking_url(pk),
                    "number": bookings[pk].exact_entry_number,
                    "what": bookings[pk].sentence(),
                }
                for pk in po.booking_pks
                if pk in bookings
            ],
        }
        for po in report.payouts
    ]
    mismatches = [
        {
            "kind": MISMATCH_KINDS.get(m.kind, m.kind),
            "subject": mismatch_subject(m, bookings),
            "search": m.subject.removeprefix("invoice "),
            "detail": m.detail[:1].upper() + m.detail[1:],
            "expected": money(m.expected),
            "actual": money(m.actual),
        }
        for m in report.mismatches
    ]
    return {
        "heading": (
            f"{report.tenant}, {currency}, {local_date_display(report.start)} to "
            f"{local_date_display(report.end)}"
        ),
        "totals": total_rows(report),
        "payments": payments,
        "payouts": payouts,
        "mismatches": mismatches,
    }
