"""The payout page: what GoCardless paid into the bank, line by line, and how it was booked.

Replaces the GoCardless admin's Payout change page (``install``), because a payout's lines
mean something only with reconciliation's knowledge: whose payment, for which invoice, and
the bookings in Exact. The page shows

- the payout: amount, arrival date, status in words, reference;
- every payout item: payments paid out (linked, with customer and invoice), refunds,
  chargebacks and late failures, fees (GoCardless fee, app fee, surcharges) with their VAT;
- the sums: gross (everything but fees), fees incl. VAT, net = the payout's amount, and the
  check that the fee lines add up to the fees GoCardless says it deducted. A payout whose
  lines GoCardless no longer gives (410 Gone: older than six months when first seen) says
  so instead, with the amount and fees it has. Fees and gross
  come from ``bookings.rules.payout_facts``, the same numbers the payout's booking posts;
- "Booked in Exact": the payout's bookings, their state in words, the Exact entry number.

Every amount is shown through core.display; payout item amounts (minor units with one
decimal place) are shifted to currency units exactly, never through a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Q
from django.http import Http404
from django.urls import reverse

from core.display import NOTHING, local_date_display, minor_display, money_display, words
from gocardless.admin_display import (
    coded,
    item_amount,
    item_units,
    item_vat,
    mirror_link,
    moment,
)
from gocardless.admin_mirrors import PayoutAdmin, payout_items_state_words
from gocardless.models import Payment, Payout, PayoutItemsState
from gocardless.plan_display import plan_link, plan_names
from gocardless.words import PAYOUT_ITEM_TYPE_WORDS, STATUS_WORDS
from reconciliation.bookings.models import Booking, Rule
from reconciliation.bookings.payout_facts import receipted_payments
from reconciliation.bookings.rules import FEE_ITEM_TYPES, payout_facts

from .payments_admin import customer_cell, invoices_cell, payment_refs_context

PAYOUT_RULES = (Rule.PAYOUT, Rule.PAYOUT_BANK, Rule.PAYOUT_BOUNCED)
# How the page groups the lines (by payout item type); a type not listed goes under "Other".
GROUPS = (
    ("Payments collected", ("payment_paid_out",)),
    ("Refunds", ("payment_refunded", "refund", "refund_funds_returned")),
    ("Chargebacks and late failures", ("payment_charged_back", "payment_failed")),
    ("Fees", ("gocardless_fee", "app_fee", "revenue_share")),
    ("Surcharges", ("surcharge_fee",)),
)


@dataclass
class Line:
    kind: object  # the type in words, the code in a tooltip
    payment: object
    customer: object
    invoice: object
    refund: object
    amount: str
    vat: str
    foreign: bool  # a payment ml-connector did not collect


@dataclass
class Check:
    ok: bool
    text: str
    label: str = ""  # instead of "Agrees." / "Does not agree." (a check that cannot be made)


def _money(minor: int | Decimal, currency: str) -> str:
    if isinstance(minor, int):
        return minor_display(minor, currency)
    return money_display(item_units(minor, currency), currency)


def payout_page(payout: Payout) -> dict:
    """Everything the payout page shows (module docstring)."""
    currency, tenant_id = payout.currency, payout.tenant_id
    items = list(payout.items.all().order_by("position"))
    owned = receipted_payments(payout=payout)
    facts = payout_facts(payout, owned_payments=owned)
    contexts = payment_refs_context(
        refs=[(tenant_id, i.payment_id, i.mandate_id) for i in items if i.payment_id])
    plans = _plan_cells(tenant_id, {i.payment_id for i in items if i.payment_id})

    grouped: dict[str, list[Line]] = {title: [] for title, _types in GROUPS}
    grouped["Other"] = []
    for item in items:
        context = contexts.get((tenant_id, item.payment_id))
        vat = item_vat(item.taxes)
        line = Line(
            kind=coded(words(item.item_type, PAYOUT_ITEM_TYPE_WORDS), item.item_type),
            payment=mirror_link("payment", tenant_id, item.payment_id),
            customer=customer_cell(tenant_id, context) if item.payment_id else NOTHING,
            invoice=plans.get(item.payment_id) or invoices_cell(context),
            refund=mirror_link("refund", tenant_id, item.refund_id),
            amount=item_amount(item.amount, currency),
            vat=_money(vat, currency) if vat else NOTHING,
            foreign=bool(item.payment_id) and item.item_type not in FEE_ITEM_TYPES
            and not (context and context.attempts) and item.payment_id not in owned,
        )
        group = next((title for title, types in GROUPS if item.item_type in types), "Other")
        grouped[group].append(line)

    fees = sum(fee["amount"] for fee in facts["fees"].values())
    vat = sum(fee["vat"] for fee in facts["fees"].values())
    other = sum(facts["unknown"].values())
    gross = facts["payment_items"] + other
    net = gross + fees
    unavailable = payout.items_state == PayoutItemsState.UNAVAILABLE and not items
    if unavailable:  # the payout's own numbers: what it paid and what it deducted
        fees, gross, vat = -payout.deducted_fees, payout.amount + payout.deducted_fees, 0
    checks = [
        # Its lines are gone at GoCardless (410 after six months): nothing to add up; what
        # is known is the payout's own amount and fees, which is what its booking uses.
        Check(False, label="Cannot be checked.",
              text="GoCardless no longer lists this payout's lines (it keeps them for six "
              f"months): only its amount {_money(payout.amount, currency)} and the fees it "
              f"deducted, {_money(payout.deducted_fees, currency)}, are known."),
    ] if unavailable else [
        Check(-fees == payout.deducted_fees,
              f"The fee lines add up to {_money(-fees, currency)}; GoCardless says it deducted "
              f"{_money(payout.deducted_fees, currency)}."),
        Check(net == payout.amount,
              f"Gross {_money(gross, currency)} less fees {_money(-fees, currency)} is "
              f"{_money(net, currency)}; the payout is {_money(payout.amount, currency)}."),
    ]
    fee_lines = [
        (coded(words(kind, PAYOUT_ITEM_TYPE_WORDS), kind), _money(fee["amount"], currency),
         _money(fee["vat"], currency) if fee["vat"] else "")
        for kind, fee in facts["fees"].items()
    ]
    return {
        "amount": _money(payout.amount, currency),
        "deducted_fees": _money(payout.deducted_fees, currency),
        "arrival": local_date_display(payout.arrival_date),
        "status": coded(words(payout.status, STATUS_WORDS["payout"]), payout.status),
        "reference": payout.reference or NOTHING,
        "created": moment(payout.gocardless_created_at, payout.tenant),
        "groups": [(title, lines) for title, lines in grouped.items() if lines],
        "item_count": len(items),
        "items_state": payout_items_state_words(payout),
        "items_unavailable": unavailable,
        "gross": _money(gross, currency),
        "fees": _money(fees, currency),
        "vat": _money(vat, currency),
        "fee_lines": fee_lines,
        "net": _money(payout.amount, currency),
        "checks": checks,
        "all_ok": all(check.ok for check in checks),
        "bookings": payout_bookings(payout),
    }


def _plan_cells(tenant_id: int, payment_ids: set[str]) -> dict:
    """Payment id → "Subscription: <name>" (linked) for the payments a GoCardless plan
    created: what they were for. Two queries at most."""
    if not payment_ids:
        return {}
    payments = list(Payment.objects.filter(tenant_id=tenant_id, gocardless_id__in=payment_ids)
                    .filter(Q(subscription_id__gt="") | Q(instalment_schedule_id__gt=""))
                    .only("tenant_id", "gocardless_id", "subscription_id",
                          "instalment_schedule_id"))
    names = plan_names(payments=payments)
    return {p.gocardless_id: plan_link(p, names) for p in payments}


def payout_bookings(payout: Payout) -> list[dict]:
    """The bookings that put this payout into Exact: fees and transfer, the bank side, a
    bounce."""
    rows = Booking.objects.filter(tenant_id=payout.tenant_id, gocardless_id=payout.gocardless_id,
                                  rule__in=PAYOUT_RULES).order_by("created_at", "pk")
    return [
        {
            "url": reverse("admin:bookings_booking_change", args=[booking.pk]),
            "what": booking.get_rule_display(),
            "state": coded(booking.get_state_display(), booking.state),
            "date": local_date_display(booking.booking_date),
            "amount": minor_display(booking.amount_minor, booking.currency),
            "entry": booking.exact_entry_number or NOTHING,
            "reference": booking.reference,
        }
        for booking in rows
    ]


class PayoutPageAdmin(PayoutAdmin):
    change_form_template = "workspace/payout_change_form.html"

    class Media:
        css = {"all": ("workspace/payout.css",)}

    def get_fieldsets(self, request, obj=None):
        # The page itself (the template) shows the payout; the fields keep only what is not
        # on it: GoCardless' own record, folded away.
        return [("GoCardless' record", {"fields": ("metadata_words", "raw_payload")})]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payout = self.get_object(request, unquote(object_id))
        if payout is None:
            # Another company's payout (or none at all): not found, rather than the admin's
            # redirect to the index, so the page says nothing about whether it exists.
            raise Http404("No such payout.")
        extra_context = {**(extra_context or {}), "payout_page": payout_page(payout)}
        return super().change_view(request, object_id, form_url, extra_context)


def install(site: admin.AdminSite) -> None:
    if site.is_registered(Payout):
        site.unregister(Payout)
    site.register(Payout, PayoutPageAdmin)

