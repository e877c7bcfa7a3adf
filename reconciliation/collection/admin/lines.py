"""The lines screen: one row per invoice a run evaluated, its decision and reason."""

from __future__ import annotations

from django.contrib import admin

from core.display import NOTHING
from reconciliation.collection.admin.display import (
    ExternalLinksMixin,
    money,
    run_link,
    scheme_words,
)
from reconciliation.collection.admin.filters import RunFilter, SchemeFilter, TenantFilter
from reconciliation.collection.admin.pay_links import pay_links_display
from reconciliation.collection.models import CollectionItem, PayLink
from tenants.admin_base import TenantScopedAdmin


@admin.register(CollectionItem)
class CollectionItemAdmin(ExternalLinksMixin, TenantScopedAdmin):
    """One line of a run: what it decided for a receivable, and why."""

    read_only = True
    audit_changes = False
    list_display = (
        "invoice_number",
        "customer",
        "run_link",
        "decision",
        "reason_label",
        "detail",
        "amount_display",
        "due_date",
        "charge_date",
        "scheme_display",
        "parts",
    )
    list_filter = (RunFilter, "decision", "reason", SchemeFilter, TenantFilter)
    list_select_related = ("run",)
    search_fields = ("invoice_number", "account_label", "mandate_gocardless_id")
    actions = None
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tenant",
                    "run_link",
                    "invoice_number",
                    "customer",
                    "receivable_link",
                    "account_link",
                    "due_date",
                )
            },
        ),
        (
            "Decision",
            {
                "fields": (
                    "decision",
                    "reason_label",
                    "detail",
                    "outstanding_display",
                    "amount_display",
                    "charge_date",
                    "mandate_link",
                    "scheme_display",
                    "parts",
                    "pay_links_shown",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, opts in self.fieldsets for name in opts["fields"]]

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj):
        return run_link(obj.run)

    @admin.display(description="Customer", ordering="account_label")
    def customer(self, obj):
        return obj.account_label or NOTHING

    @admin.display(description="Reason", ordering="reason")
    def reason_label(self, obj):
        return obj.get_reason_display() if obj.reason else NOTHING

    @admin.display(description="Outstanding", ordering="outstanding")
    def outstanding_display(self, obj):
        return money(obj.outstanding, obj.currency)

    @admin.display(description="Amount to collect", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description="Payment links of this invoice")
    def pay_links_shown(self, obj):
        return pay_links_display(
            PayLink.objects.filter(
                tenant_id=obj.tenant_id, receivable_exact_id=obj.receivable_exact_id
            ).select_related("tenant")
        )

    @admin.display(description="Scheme", ordering="scheme")
    def scheme_display(self, obj):
        return scheme_words(obj.scheme)
