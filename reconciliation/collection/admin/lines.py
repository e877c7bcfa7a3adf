"""The lines screen: one row per invoice a run evaluated, its decision and reason."""

from __future__ import annotations

from django.contrib import admin

from reconciliation.collection.admin.display import money, run_link
from reconciliation.collection.admin.filters import RunFilter, TenantFilter
from reconciliation.collection.models import CollectionItem
from tenants.admin_base import TenantScopedAdmin


@admin.register(CollectionItem)
class CollectionItemAdmin(TenantScopedAdmin):
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
        "scheme",
        "parts",
    )
    list_filter = (RunFilter, "decision", "reason", TenantFilter)
    list_select_related = ("run",)
    search_fields = ("invoice_number", "account_label", "mandate_gocardless_id")
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj):
        return run_link(obj.run)

    @admin.display(description="Customer", ordering="account_label")
    def customer(self, obj):
        return obj.account_label or "-"

    @admin.display(description="Reason", ordering="reason")
    def reason_label(self, obj):
        return obj.get_reason_display() if obj.reason else "-"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)
