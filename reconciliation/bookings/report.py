"""The month-end reconciliation report for one tenant, period and currency.

Everything is computed from our mirrors (GoCardless payments, refunds, payouts and payout
items; Exact receivables as last synced) and bookings: rows first, totals as sums of the
rows, so the totals always equal the sum of what is listed. Amounts are Decimal in currency
units (converted once, by core.money).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from core.money import from_minor_units, parse_minor_string, round_minor
from exact.models import ExactReceivable, ReceivableKind
from gocardless.models import Payment, Payout, Refund
from reconciliation.collection.selectors import open_when_collected

from .display import payment_status_words, state_words
from .models import (
    Booking,
    BookingSettings,
    BookingState,
    PlanMatchState,
    PlanPaymentMatch,
    ReceiptOn,
    Rule,
)
from .rules import FEE_ITEM_TYPES, payment_owner, plan_owner

COLLECTED = {"confirmed", "paid_out"}
REFUNDED = {"paid"}
PAYOUT_RULES = (Rule.PAYOUT, Rule.PAYOUT_BANK, Rule.PAYOUT_BOUNCED)


@dataclass
class PaymentRow:
    pk: int
    payment: str
    status: str
    charge_date: date | None
    amount: Decimal
    refunded: Decimal
    attempt: str = ""
    receivable: str = ""
    invoice: int | None = None
    account: str = ""
    receipt: str = ""  # booking state of the latest receipt ("" = none)
    reversal: str = ""
    booking_pks: list[int] = field(default_factory=list)
    note: str = ""

    plan: str = ""  # the subscription / instalment schedule of a plan payment matched to it

    @property
    def ours(self) -> bool:
        """Paid to one of the tenant's invoices: made by the collection engine, or a plan
        payment matched to an invoice (docs/subscriptions.md)."""
        return bool(self.attempt or self.plan)


@dataclass
class PayoutRow:
    pk: int
    payout: str
    reference: str
    status: str
    paid_on: date | None
    arrival_date: date | None
    gross: Decimal
    deductions: Decimal
    fees: Decimal
    vat: Decimal
    net: Decimal
    entries: list[tuple[str, int | None, str]] = field(default_factory=list)
    booking_pks: list[int] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.gross + self.deductions + self.fees + self.vat == self.net


@dataclass
class Mismatch:
    kind: str
    subject: str
    detail: str
    expected: Decimal | None = None
    actual: Decimal | None = None
    payment_pks: list[int] = field(default_factory=list)
    booking_pks: list[int] = field(default_factory=list)


MISMATCH_KINDS = {
    "open_in_exact_paid_at_gocardless": "Open in Exact, paid at GoCardless",
    "closed_in_exact_failed_at_gocardless": "Closed in Exact, not collected at GoCardless",
    "amount_difference": "Open amount differs",
    "booking_not_posted": "Booking not yet posted",
    "not_ours": "Payment not created by ml-connector",
}


@dataclass
class Report:
    tenant: object
    start: date
    end: date
    currency: str
    payments: list[PaymentRow]
    payouts: list[PayoutRow]
    mismatches: list[Mismatch]
    outstanding_rows: list[tuple[int | None, Decimal]]

    def _sum(self, rows, attr="amount") -> Decimal:
        return sum((getattr(r, attr) for r in rows), Decimal(0)).quantize(Decimal("0.01"))

    @property
    def totals(self) -> dict[str, Decimal | int]:
        ours = [p for p in self.payments if p.ours]
        by_receivable: dict[str, int] = defaultdict(int)
        for p in ours:
            if p.attempt:  # retries are the collection engine's
                by_receivable[p.receivable] += 1
        collected = [p for p in ours if p.status in COLLECTED]
        failed = [p for p in ours if p.status == "failed"]
        charged_back = [p for p in ours if p.status == "charged_back"]
        return {
            "collected_count": len(collected),
            "collected": self._sum(collected),
            "failed_count": len(failed),
            "failed": self._sum(failed),
            "retried_count": sum(1 for n in by_receivable.values() if n > 1),
            "charged_back_count": len(charged_back),
            "charged_back": self._sum(charged_back),
            "refunded": self._sum(ours, "refunded"),
            "outstanding": sum((a for _, a in self.outstanding_rows), Decimal(0)).quantize(
                Decimal("0.01")
            ),
            "payouts_count": len(self.payouts),
            "payouts_gross": self._sum(self.payouts, "gross"),
            "payouts_deductions": self._sum(self.payouts, "deductions"),
            "payouts_fees": self._sum(self.payouts, "fees"),
            "payouts_vat": self._sum(self.payouts, "vat"),
            "payouts_net": self._sum(self.payouts, "net"),
            "unmatched_count": sum(1 for p in self.payments if not p.ours),
            "mismatches_count": len(self.mismatches),
        }


def report_build(*, tenant, start: date, end: date, currency: str = "EUR") -> Report:
    """Payments charged and payouts paid between ``start`` and ``end`` (inclusive)."""

    def units(minor) -> Decimal:
        return from_minor_units(int(minor), currency)

    bookings = list(Booking.objects.filter(tenant=tenant, currency=currency).order_by("id"))
    by_gc: dict[str, list[Booking]] = defaultdict(list)
    for b in bookings:
        by_gc[b.gocardless_id].append(b)
    payments = _payment_rows(tenant, currency, start, end, by_gc, units)
    payouts = _payout_rows(tenant, currency, start, end, by_gc, units)
    outstanding_rows = [
        (r.invoice_number, r.outstanding)
        for r in ExactReceivable.objects.filter(
            tenant=tenant, currency=currency, kind=ReceivableKind.INVOICE, outstanding__gt=0
        ).order_by("invoice_number")
    ]
    mismatches = _mismatches(tenant, currency, payments, bookings, units)
    return Report(tenant, start, end, currency, payments, payouts, mismatches, outstanding_rows)


def _payment_rows(tenant, currency, start, end, by_gc, units) -> list[PaymentRow]:
    """Payments charged in the period, with their refunds and the state of their bookings."""
    refunds = defaultdict(int)
    for refund in Refund.objects.filter(tenant=tenant, currency=currency, status__in=REFUNDED):
        refunds[refund.payment_id] += refund.amount

    payments = []
    rows = list(
        Payment.objects.filter(
            tenant=tenant, currency=currency, charge_date__gte=start, charge_date__lte=end
        ).order_by("charge_date", "gocardless_id")
    )
    plans = _plan_owners(tenant, rows)
    for p in rows:
        owner = payment_owner(p.metadata) or plans.get(p.pk) or {}
        mine = by_gc.get(p.gocardless_id, [])
        receipts = [b for b in mine if b.rule == Rule.RECEIPT]
        reversals = [b for b in mine if b.rule == Rule.REVERSAL]
        payments.append(
            PaymentRow(
                pk=p.pk,
                payment=p.gocardless_id,
                status=p.status,
                charge_date=p.charge_date,
                amount=units(p.amount),
                refunded=units(refunds.get(p.gocardless_id, 0)) if owner else Decimal("0.00"),
                attempt=owner.get("attempt", ""),
                receivable=owner.get("receivable", ""),
                invoice=owner.get("invoice"),
                account=owner.get("account", ""),
                receipt=receipts[-1].state if receipts else "",
                reversal=reversals[-1].state if reversals else "",
                booking_pks=[b.pk for b in mine],
                plan=owner.get("plan", ""),
                note=_not_ours_note(p, owner),
            )
        )
    return payments


def _plan_owners(tenant, payments) -> dict[int, dict]:
    """Payment pk → owner of the plan payments among ``payments`` matched to an invoice."""
    plan_pks = [p.pk for p in payments if p.subscription_id or p.instalment_schedule_id]
    if not plan_pks:
        return {}
    return {
        m.payment_id: plan_owner(m)
        for m in PlanPaymentMatch.objects.filter(
            tenant=tenant, payment_id__in=plan_pks, state=PlanMatchState.MATCHED
        )
    }


def _not_ours_note(payment, owner: dict) -> str:
    if owner:
        return ""
    if (payment.metadata or {}).get("mlc_attempt"):
        return (
            "made by ml-connector, but its attempt, invoice or account is missing from the "
            "payment's metadata"
        )
    plan = payment.subscription_id or payment.instalment_schedule_id
    if plan:
        return (
            f"made by GoCardless plan {plan}, not matched to an invoice (it stays in the "
            "suspense account until it is)"
        )
    return "not created by ml-connector (no collection attempt in its metadata)"


def _payout_rows(tenant, currency, start, end, by_gc, units) -> list[PayoutRow]:
    """Payouts paid in the period, their items summed by kind, and the entries that booked them."""
    payouts = []
    for po in Payout.objects.filter(tenant=tenant, currency=currency).order_by(
        "gocardless_created_at", "gocardless_id"
    ):
        paid_on = po.gocardless_created_at.date() if po.gocardless_created_at else None
        if paid_on is None or not (start <= paid_on <= end):
            continue
        sums = _payout_item_sums(po)
        mine = [b for b in by_gc.get(po.gocardless_id, []) if b.rule in PAYOUT_RULES]
        payouts.append(
            PayoutRow(
                pk=po.pk,
                payout=po.gocardless_id,
                reference=po.reference,
                status=po.status,
                paid_on=paid_on,
                arrival_date=po.arrival_date,
                gross=units(round_minor(sums["gross"])),
                deductions=units(round_minor(sums["deductions"])),
                fees=units(round_minor(sums["fees"])),
                vat=units(round_minor(sums["vat"])),
                net=units(po.amount),
                entries=[(b.key, b.exact_entry_number, str(b.exact_entry_id or "")) for b in mine],
                booking_pks=[b.pk for b in mine],
            )
        )
    return payouts


def _payout_item_sums(payout) -> dict[str, Decimal]:
    """Minor units by kind: gross (paid out), deductions, fees without VAT, and VAT."""
    sums = defaultdict(Decimal)
    for item in payout.items.all():
        amount = parse_minor_string(str(item.amount))
        if item.item_type in FEE_ITEM_TYPES:
            vat = sum(
                (parse_minor_string(str(t.get("amount", "0"))) for t in item.taxes or []),
                Decimal(0),
            )
            sums["fees"] += amount - vat
            sums["vat"] += vat
        elif item.item_type == "payment_paid_out":
            sums["gross"] += amount
        else:
            sums["deductions"] += amount
    return sums


def _mismatches(tenant, currency, payments, bookings, units) -> list[Mismatch]:
    out = []
    for b in bookings:
        if b.state != BookingState.CONFIRMED:
            out.append(
                Mismatch(
                    "booking_not_posted",
                    b.key,
                    f"{state_words(b.state)}; attempts {b.attempts}; {b.last_error}".strip("; "),
                    expected=units(b.amount_minor),
                    booking_pks=[b.pk],
                )
            )
    for p in payments:
        if not p.ours:
            out.append(
                Mismatch(
                    "not_ours",
                    p.payment,
                    f"{payment_status_words(p.status)}; {p.note}",
                    expected=p.amount,
                    payment_pks=[p.pk],
                )
            )
    return out + _invoice_mismatches(tenant, currency, payments, units)


def _invoice_mismatches(tenant, currency, payments, units) -> list[Mismatch]:
    """Invoices touched in the period whose open amount in Exact (as last synced) is not
    what their payments at GoCardless say it should be."""
    out = []
    settings = BookingSettings.objects.filter(tenant=tenant).first()
    counted = {"paid_out"} if settings and settings.receipt_on == ReceiptOn.PAID_OUT else COLLECTED
    # Invoices touched in the period, with every payment ever made for them.
    invoices = {p.invoice for p in payments if p.ours}
    all_for_invoice: dict[int, list[Payment]] = defaultdict(list)
    every = list(Payment.objects.filter(tenant=tenant, currency=currency))
    plans = _plan_owners(tenant, every)
    owners = {}
    for p in every:
        owner = payment_owner(p.metadata) or plans.get(p.pk)
        if owner and owner["invoice"] in invoices:
            all_for_invoice[owner["invoice"]].append(p)
            owners[p.pk] = owner
    receivables = {
        r.invoice_number: r
        for r in ExactReceivable.objects.filter(
            tenant=tenant, invoice_number__in=invoices, kind=ReceivableKind.INVOICE
        )
    }
    opened = open_when_collected(
        tenant=tenant,
        receivable_ids={o["receivable"] for o in owners.values() if o.get("attempt")},
    )
    for invoice in sorted(invoices):
        row = receivables.get(invoice)
        pays = all_for_invoice[invoice]
        base = opened.get(str(row.exact_id)) if row is not None else None
        found = _invoice_mismatch(invoice, pays, row, counted, units, base=base, owners=owners)
        if found is not None:
            out.append(found)
    return out


def _invoice_mismatch(invoice, pays, row, counted, units, *, base, owners) -> Mismatch | None:
    """One invoice: its Exact open item ``row`` (None = no longer open) against ``pays``.

    Expected open = what was open when ml-connector collected it (``base``: the attempt
    number and the open amount the run's line saw; an invoice part-paid before collection
    was open for less than its amount) less what GoCardless collected since; without such a
    line (a payment the engine did not record), the invoice amount less everything
    collected."""
    collected = sum((units(p.amount) for p in pays if p.status in counted), Decimal("0.00"))
    failed = [p for p in pays if p.status in ("failed", "charged_back")]
    pks = [p.pk for p in pays]
    if row is None:
        # Not in the mirror = no longer open in Exact (full syncs delete closed items).
        if collected == 0 and failed:
            return Mismatch(
                "closed_in_exact_failed_at_gocardless",
                f"invoice {invoice}",
                "closed in Exact, but its payments failed or were charged back",
                expected=None,
                actual=Decimal("0.00"),
                payment_pks=pks,
            )
        return None
    if base is None:
        expected_open = row.amount - collected
    else:
        number, open_then = base
        since = [p for p in pays if (owners.get(p.pk) or {}).get("attempt_number", 0) >= number]
        expected_open = open_then - sum(
            (units(p.amount) for p in since if p.status in counted), Decimal("0.00")
        )
    if expected_open == row.outstanding:
        return None
    if expected_open <= 0 < row.outstanding:
        kind, detail = "open_in_exact_paid_at_gocardless", "collected at GoCardless"
    elif row.outstanding == 0 < expected_open:
        kind, detail = "closed_in_exact_failed_at_gocardless", "not collected at GoCardless"
    else:
        kind, detail = "amount_difference", "open amount differs"
    return Mismatch(
        kind,
        f"invoice {invoice}",
        detail,
        expected=expected_open,
        actual=row.outstanding,
        payment_pks=pks,
    )
