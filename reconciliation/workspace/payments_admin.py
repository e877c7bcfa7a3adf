"""The payments list as finance staff read it: whose payment (the Exact customer), for which
invoice(s), on which mandate, its status in words, the amount and the charge date.

The GoCardless admin (gocardless/admin_mirrors.py) knows only GoCardless; the customer and
the invoices live in reconciliation (customer links, collection attempts), so this subclass,
registered in its place at start (``install``), adds them. A payment a GoCardless plan created
(a subscription, an instalment plan) names its plan in the invoice column. A page of rows
costs at most five more queries whatever its length: the mandates, the customer links and the
attempts of the payments shown (``payments_context``), and the names of their plans
(``plan_names``), never one per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from core.display import NOTHING
from gocardless.admin_display import mirror_link
from gocardless.admin_mirrors import PaymentAdmin
from gocardless.models import Mandate, Payment
from gocardless.plan_display import plan_link, plan_names
from reconciliation.collection.models import CollectionAttempt
from reconciliation.customers.models import CustomerLink


@dataclass
class PaymentContext:
    """What reconciliation knows about one payment."""

    customer_id: str = ""  # the GoCardless customer, through the mandate
    link_pk: int | None = None
    customer_name: str = ""  # the Exact account's name (and code)
    attempts: list[tuple[int, int | None]] = field(default_factory=list)  # (pk, invoice)


def payments_context(*, payments: list) -> dict[tuple[int, str], PaymentContext]:
    """``(tenant_id, payment id)`` → its customer and invoices, for rows that carry
    ``tenant_id``, ``gocardless_id`` and ``mandate_id`` (payments; payout items use
    ``payment_id`` through ``payment_refs``). Three queries however many payments."""
    refs = [(p.tenant_id, p.gocardless_id, p.mandate_id) for p in payments]
    return payment_refs_context(refs=refs)


def payment_refs_context(*, refs: list[tuple[int, str, str]]
                         ) -> dict[tuple[int, str], PaymentContext]:
    """``refs``: (tenant_id, payment id, mandate id); an unknown mandate id may be ""."""
    found = {(tenant, pid): PaymentContext() for tenant, pid, _mandate in refs if pid}
    if not found:
        return found
    tenants = {tenant for tenant, _pid in found}
    mandate_of = {(tenant, pid): mandate for tenant, pid, mandate in refs if pid}
    customer_of_mandate = {
        (row["tenant_id"], row["gocardless_id"]): row["customer_id"]
        for row in Mandate.objects.filter(
            tenant_id__in=tenants, gocardless_id__in={m for m in mandate_of.values() if m}
        ).values("tenant_id", "gocardless_id", "customer_id")
    }
    customers = {c for c in customer_of_mandate.values() if c}
    by_mandate: dict = {}
    by_customer: dict = {}
    for row in CustomerLink.objects.filter(tenant_id__in=tenants).filter(
        Q(mandate__gocardless_id__in={m for m in mandate_of.values() if m})
        | Q(gocardless_customer__gocardless_id__in=customers)
    ).values("pk", "tenant_id", "exact_name", "exact_code", "mandate__gocardless_id",
             "gocardless_customer__gocardless_id"):
        if row["mandate__gocardless_id"]:
            by_mandate[(row["tenant_id"], row["mandate__gocardless_id"])] = row
        if row["gocardless_customer__gocardless_id"]:
            by_customer[(row["tenant_id"], row["gocardless_customer__gocardless_id"])] = row
    for row in (CollectionAttempt.objects
                .filter(tenant_id__in=tenants,
                        payment_gocardless_id__in={pid for _t, pid in found})
                .order_by("invoice_number", "pk")
                .values("pk", "tenant_id", "payment_gocardless_id", "invoice_number")):
        key = (row["tenant_id"], row["payment_gocardless_id"])
        if key in found:
            found[key].attempts.append((row["pk"], row["invoice_number"]))
    for (tenant, pid), context in found.items():
        mandate = mandate_of.get((tenant, pid)) or ""
        context.customer_id = customer_of_mandate.get((tenant, mandate), "")
        link = by_mandate.get((tenant, mandate)) or by_customer.get((tenant, context.customer_id))
        if link is not None:
            context.link_pk = link["pk"]
            context.customer_name = " ".join(
                p for p in (link["exact_name"], f"({link['exact_code']})"
                            if link["exact_code"] else "") if p)
    return found


def customer_cell(tenant_id: int, context: PaymentContext | None):
    """The Exact customer, linked to its customer link; else the GoCardless customer."""
    if context is None:
        return NOTHING
    if context.link_pk is not None:
        url = reverse("admin:customers_customerlink_change", args=[context.link_pk])
        return format_html('<a href="{}">{}</a>', url, context.customer_name or "Customer")
    return mirror_link("customer", tenant_id, context.customer_id)


def invoices_cell(context: PaymentContext | None):
    """The Exact invoice numbers of the payment's collection attempts, each linked to it."""
    if context is None or not context.attempts:
        return NOTHING
    return format_html_join(", ", '<a href="{}">Invoice {}</a>', (
        (reverse("admin:collection_collectionattempt_change", args=[pk]),
         invoice if invoice is not None else "without number")
        for pk, invoice in context.attempts))


class PaymentsListAdmin(PaymentAdmin):
    list_display = ("gocardless_id", "tenant", "customer_name", "invoices", "mandate",
                    "status_words", "amount_display", "charge_day")
    detail_fields = ("amount_display", "refunded_display", "charge_day", "reference",
                     "customer_name", "invoices", "mandate", "customer", "payout", "refunds")

    def page_prefetch(self, request, rows: list) -> None:
        contexts = payments_context(payments=rows)
        names = plan_names(payments=rows)
        for row in rows:
            row.mlc_context = contexts.get((row.tenant_id, row.gocardless_id))
            row.mlc_plan_names = names

    def _context(self, obj) -> PaymentContext | None:
        if not hasattr(obj, "mlc_context"):
            self.page_prefetch(None, [obj])  # a change page: one object
        return obj.mlc_context

    @admin.display(description="Customer")
    def customer_name(self, obj):
        return customer_cell(obj.tenant_id, self._context(obj))

    @admin.display(description="Invoice")
    def invoices(self, obj):
        """The invoices we collected it for; for a payment a GoCardless plan created, the plan
        ("Subscription: Gym membership"), which is what it was for."""
        cell = invoices_cell(self._context(obj))
        if obj.subscription_id or obj.instalment_schedule_id:
            plan = plan_link(obj, getattr(obj, "mlc_plan_names", None))
            return plan if cell == NOTHING else format_html("{}; {}", cell, plan)
        return cell


def install(site: admin.AdminSite) -> None:
    if site.is_registered(Payment):
        site.unregister(Payment)
    site.register(Payment, PaymentsListAdmin)
