"""The reconciliation report as CSV: one file, sections separated by an empty row, each with
its own header row. Amounts are plain decimal strings with two places and a point
("1234.50", "-3.60"): no thousands separators, no currency signs, so spreadsheets and
``csv``/``Decimal`` read them exactly."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from .report import MISMATCH_KINDS, Report


def money(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{value.quantize(Decimal('0.01')):f}"


def report_csv(*, report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(
        [
            "section",
            "reconciliation report",
            str(report.tenant),
            report.currency,
            report.start.isoformat(),
            report.end.isoformat(),
        ]
    )
    for section in (_totals, _payments, _payouts, _mismatches):
        w.writerow([])
        section(w, report)
    return out.getvalue()


def _totals(w, report: Report) -> None:
    w.writerow(["section", "total", "value"])
    for name, value in report.totals.items():
        w.writerow(["totals", name, money(value) if isinstance(value, Decimal) else value])


def _payments(w, report: Report) -> None:
    w.writerow(
        [
            "section",
            "payment",
            "charge_date",
            "status",
            "amount",
            "refunded",
            "invoice",
            "account",
            "attempt",
            "receipt",
            "reversal",
        ]
    )
    for p in report.payments:
        w.writerow(
            [
                "payments",
                p.payment,
                p.charge_date.isoformat() if p.charge_date else "",
                p.status,
                money(p.amount),
                money(p.refunded),
                p.invoice or "",
                p.account,
                p.attempt,
                p.receipt,
                p.reversal,
            ]
        )


def _payouts(w, report: Report) -> None:
    w.writerow(
        [
            "section",
            "payout",
            "reference",
            "status",
            "paid_on",
            "arrival_date",
            "gross",
            "deductions",
            "fees",
            "vat",
            "net",
            "exact_entries",
        ]
    )
    for po in report.payouts:
        w.writerow(
            [
                "payouts",
                po.payout,
                po.reference,
                po.status,
                po.paid_on.isoformat() if po.paid_on else "",
                po.arrival_date.isoformat() if po.arrival_date else "",
                money(po.gross),
                money(po.deductions),
                money(po.fees),
                money(po.vat),
                money(po.net),
                " ".join(f"{key}={number or ''}" for key, number, _ in po.entries),
            ]
        )


def _mismatches(w, report: Report) -> None:
    w.writerow(["section", "kind", "subject", "detail", "expected", "actual"])
    for m in report.mismatches:
        w.writerow(
            [
                "mismatches",
                MISMATCH_KINDS.get(m.kind, m.kind),
                m.subject,
                m.detail,
                money(m.expected),
                money(m.actual),
            ]
        )
