"""The reconciliation report as CSV, for spreadsheets: one file, sections separated by an
empty row, each with its own header row in words; the first column names the section.

Amounts are plain decimal strings with two places and a point ("1234.50", "-3.60") beside a
Currency column: no thousands separators, no currency signs, so a spreadsheet can sum them
and ``csv``/``Decimal`` read them exactly. Everything else is in words: section and total
names, statuses, mismatch kinds, attempts by invoice number. Dates are ISO (2026-03-31),
which every spreadsheet reads as a date."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from .display import payment_origin_words, payment_status_words, payout_status_words, state_words
from .report import MISMATCH_KINDS, Report
from .report_words import account_names, mismatch_subject, report_bookings, total_rows

HEADER = ["Section", "Report", "Company", "Currency", "From", "To"]
TOTALS_HEADER = ["Section", "Total", "Count", "Amount", "Currency"]
PAYMENTS_HEADER = [
    "Section",
    "Payment",
    "Charge date",
    "Status",
    "Amount",
    "Refunded",
    "Currency",
    "Invoice",
    "Customer",
    "Customer (Exact account)",
    "Collection attempt",
    "Receipt booking",
    "Reversal booking",
]
PAYOUTS_HEADER = [
    "Section",
    "Payout",
    "Reference",
    "Status",
    "Paid on",
    "Arrives on",
    "Gross",
    "Deductions",
    "Fees",
    "VAT",
    "Net",
    "Currency",
    "Exact entries",
]
MISMATCHES_HEADER = ["Section", "Kind", "Subject", "Detail", "Expected", "Actual", "Currency"]


def money(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{value.quantize(Decimal('0.01')):f}"


def _date(value) -> str:
    return value.isoformat() if value else ""


def report_csv(*, report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerow(
        [
            "Report",
            "Reconciliation report",
            str(report.tenant),
            report.currency,
            _date(report.start),
            _date(report.end),
        ]
    )
    bookings = report_bookings(report)
    for section in (_totals, _payments, _payouts, _mismatches):
        w.writerow([])
        section(w, report, bookings)
    return out.getvalue()


def _totals(w, report: Report, bookings) -> None:
    w.writerow(TOTALS_HEADER)
    for row in total_rows(report):
        amount = money(row.amount)
        w.writerow(
            [
                "Totals",
                row.label,
                "" if row.count is None else row.count,
                amount,
                report.currency if amount else "",
            ]
        )


def _payments(w, report: Report, bookings) -> None:
    w.writerow(PAYMENTS_HEADER)
    names = account_names(report)
    for p in report.payments:
        w.writerow(
            [
                "Payment",
                p.payment,
                _date(p.charge_date),
                payment_status_words(p.status),
                money(p.amount),
                money(p.refunded),
                report.currency,
                p.invoice or "",
                names.get(p.account, ""),
                p.account,
                payment_origin_words(p.attempt, p.invoice, p.plan),
                state_words(p.receipt) if p.receipt else "",
                state_words(p.reversal) if p.reversal else "",
            ]
        )


def _payouts(w, report: Report, bookings) -> None:
    w.writerow(PAYOUTS_HEADER)
    for po in report.payouts:
        entries = []
        for pk in po.booking_pks:
            booking = bookings.get(pk)
            if booking is None:
                continue
            number = booking.exact_entry_number
            entries.append(
                (f"Entry {number}: " if number else "Not yet in Exact: ") + booking.sentence()
            )
        w.writerow(
            [
                "Payout",
                po.payout,
                po.reference,
                payout_status_words(po.status),
                _date(po.paid_on),
                _date(po.arrival_date),
                money(po.gross),
                money(po.deductions),
                money(po.fees),
                money(po.vat),
                money(po.net),
                report.currency,
                "; ".join(entries),
            ]
        )


def _mismatches(w, report: Report, bookings) -> None:
    w.writerow(MISMATCHES_HEADER)
    for m in report.mismatches:
        w.writerow(
            [
                "Mismatch",
                MISMATCH_KINDS.get(m.kind, m.kind),
                mismatch_subject(m, bookings),
                m.detail[:1].upper() + m.detail[1:],
                money(m.expected),
                money(m.actual),
                report.currency,
            ]
        )
