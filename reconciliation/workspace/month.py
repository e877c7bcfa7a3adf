"""*This month*: the company's money at GoCardless in its calendar month (its own time zone).

From GoCardless' records (our mirrors), so the numbers agree with GoCardless and the bank:
payments charged this month, by their status now (collected, failed, charged back); refunds
paid and payouts paid, with the fees deducted from them, created this month. One aggregate
query per kind (payments, refunds, payouts), grouped by currency; every amount links to the
list of exactly the rows it adds up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, Sum

from core.display import minor_display
from gocardless.models import Payment, Payout, Refund
from reconciliation.workspace.links import changelist

# Payment statuses by what they mean for the money (GoCardless payment lifecycle).
COLLECTED = ("confirmed", "paid_out")
FAILED = ("failed",)
CHARGED_BACK = ("charged_back",)
IN_PROGRESS = ("pending_customer_approval", "pending_submission", "submitted")
REFUND_PAID = ("paid",)
PAYOUT_PAID = ("paid",)


@dataclass
class Cell:
    amount: str
    count: int
    url: str
    count_text: str = ""


@dataclass
class MonthRow:
    label: str
    explain: str
    cells: dict[str, Cell]


def month_bounds(tenant, today: dt.date) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """The calendar month of ``today`` where the tenant is: first day, first day of the next
    month, and the same two as instants (local midnight)."""
    first = today.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    zone = tenant.zone
    return (
        first,
        following,
        dt.datetime.combine(first, dt.time(0), tzinfo=zone),
        dt.datetime.combine(following, dt.time(0), tzinfo=zone),
    )


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun if count == 1 else noun + 's'}"


def _minor(value) -> int:
    # SUM of a bigint is an integer on SQLite and a numeric (Decimal) on PostgreSQL.
    return int(value or 0)


# (label, what it counts, source, sum): payments by status, or refunds / payouts created.
ROWS = (
    ("Collected", "Payments charged this month that GoCardless has collected (paid out or "
     "not yet)", "payment", "collected"),
    ("Failed", "Payments charged this month that the customer's bank refused", "payment",
     "failed"),
    ("Charged back", "Payments charged this month that the customer has reclaimed from their "
     "bank", "payment", "charged_back"),
    ("Refunded", "Refunds created this month and paid to the customer", "refund", "total"),
    ("Paid out", "What GoCardless sent to your bank account this month (after fees)",
     "payout", "total"),
    ("Fees", "GoCardless fees (VAT included) deducted from this month's payouts", "payout",
     "fees"),
)
PAYMENT_STATUSES = {"collected": COLLECTED, "failed": FAILED, "charged_back": CHARGED_BACK}


def month_build(tenant, today: dt.date) -> tuple[str, list[str], list[MonthRow]]:
    """The month's title, its currencies (those with money this month and those the policy
    collects) and one row per line of ``ROWS``: an amount, a count and a link per currency."""
    first, following, start, end = month_bounds(tenant, today)
    charged = {"charge_date__gte": first, "charge_date__lt": following}
    created = {"gocardless_created_at__gte": start, "gocardless_created_at__lt": end}
    sums = {
        "payment": _payment_sums(tenant, charged),
        "refund": _created_sums(Refund, tenant, created, REFUND_PAID),
        "payout": _created_sums(Payout, tenant, created, PAYOUT_PAID),
    }
    policy = [c for c in (tenant.currencies or []) if isinstance(c, str) and len(c) == 3]
    currencies = sorted({c for table in sums.values() for c in table if c} | set(policy))

    def cell(source: str, key: str, currency: str) -> Cell:
        row = sums[source].get(currency) or {}
        count = row.get(f"{key}_n" if source == "payment" else "n") or 0
        filters = {"tenant__id__exact": tenant.pk, "currency__exact": currency}
        if source == "payment":
            statuses = PAYMENT_STATUSES[key]
            filters.update(charged)
            filters.update(
                {"status__in": statuses} if len(statuses) > 1 else {"status__exact": statuses[0]}
            )
        else:
            filters.update(created)
            filters["status__exact"] = (REFUND_PAID if source == "refund" else PAYOUT_PAID)[0]
        return Cell(
            minor_display(_minor(row.get(key)), currency),
            count,
            changelist(f"gocardless.{source}", **filters),
            _count(count, source),
        )

    rows = [
        MonthRow(label, explain, {c: cell(source, key, c) for c in currencies})
        for label, explain, source, key in ROWS
    ]
    return f"{first:%B %Y}", currencies, rows


def _payment_sums(tenant, charged: dict) -> dict[str, dict]:
    """Per currency: amount and count of the month's payments in each status group."""
    aggregates = {}
    for key, statuses in PAYMENT_STATUSES.items():
        match = Q(status__in=statuses)
        aggregates[key] = Sum("amount", filter=match)
        aggregates[f"{key}_n"] = Count("pk", filter=match)
    rows = (
        Payment.objects.filter(tenant=tenant, **charged)
        .values("currency")
        .annotate(**aggregates)
        .order_by()
    )
    return {row["currency"]: row for row in rows}


def _created_sums(model, tenant, created: dict, statuses) -> dict[str, dict]:
    """Per currency: total, fees (payouts) and count of rows created in the month."""
    aggregates = {"total": Sum("amount"), "n": Count("pk")}
    if model is Payout:
        aggregates["fees"] = Sum("deducted_fees")
    rows = (
        model.objects.filter(tenant=tenant, status__in=statuses, **created)
        .values("currency")
        .annotate(**aggregates)
        .order_by()
    )
    return {row["currency"]: row for row in rows}
