"""The failure table (what each GoCardless failure cause leads to) and the payment-links
switch: tenant administrators edit their own company's rows; every save and delete is
audited (``TenantScopedAdmin``). The list also shows what applies now to every cause, the
company's rows and the defaults together (docs/failures.md)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from core.display import NOTHING
from reconciliation.collection.failure_rules import (
    CAUSE_CHOICES,
    CAUSE_WORDS,
    NEVER_RETRIED,
    failure_table,
)
from reconciliation.collection.models import FailureAction, FailureRule, FailureSettings
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role


class FailureRuleForm(forms.ModelForm):
    cause = forms.ChoiceField(
        choices=CAUSE_CHOICES,
        label="When a payment fails because",
        help_text="The cause GoCardless gives. “Any cause not listed here” covers the causes "
        "without a row of their own or a default.",
    )

    class Meta:
        model = FailureRule
        fields = ("tenant", "cause", "action", "retry_after_days", "retry_times", "pay_link")
        labels = {"action": "Then", "retry_after_days": "Days until the next collection"}

    def clean(self):
        cleaned = super().clean()
        cause, action = cleaned.get("cause"), cleaned.get("action")
        if cause in NEVER_RETRIED:
            if action and action != FailureAction.NO_RETRY:
                self.add_error(
                    "action",
                    "A chargeback or a disputed payment is never collected again "
                    "automatically: talk to the customer first.",
                )
            if cleaned.get("pay_link"):
                self.add_error(
                    "pay_link", "A customer who disputed a payment is not sent a payment link."
                )
        if action == FailureAction.RETRY and not cleaned.get("retry_after_days"):
            self.add_error("retry_after_days", "Give at least 1 day.")
        return cleaned


class OwnCompanyFirst:
    """A new row starts on the user's company when they administer exactly one."""

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if "tenant" not in initial and not request.user.is_superuser:
            ids = list(tenant_ids_with_role(request.user, Role.ADMIN, request=request))
            if len(ids) == 1:
                initial["tenant"] = ids[0]
        return initial


def _tenants_shown(request):
    tenants = Tenant.objects.order_by("name")
    if not request.user.is_superuser:
        tenants = tenants.filter(
            pk__in=tenant_ids_with_role(request.user, Role.VIEWER, request=request)
        )
    return list(tenants[:5])


@admin.register(FailureRule)
class FailureRuleAdmin(OwnCompanyFirst, TenantScopedAdmin):
    """A company's own answers to failure causes; the defaults apply to the others."""

    form = FailureRuleForm
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    change_list_template = "admin/collection/failurerule/change_list.html"
    list_display = ("cause_words", "action", "retry_display", "pay_link", "tenant")
    list_select_related = ("tenant",)
    list_filter = ()
    ordering = ("tenant__name", "cause")

    @admin.display(description="Cause", ordering="cause")
    def cause_words(self, obj):
        return CAUSE_WORDS.get(obj.cause, obj.cause)

    @admin.display(description="Collect again")
    def retry_display(self, obj):
        if obj.action != FailureAction.RETRY:
            return NOTHING
        times = "once" if obj.retry_times == 1 else f"{obj.retry_times} times"
        return f"{times}, {obj.retry_after_days} days apart"

    def changelist_view(self, request, extra_context=None):
        tenants = _tenants_shown(request)
        rules: dict = {}
        for row in FailureRule.objects.filter(tenant__in=tenants):
            rules.setdefault(row.tenant_id, []).append(row)
        switched_on = set(
            FailureSettings.objects.filter(tenant__in=tenants, pay_links_enabled=True).values_list(
                "tenant_id", flat=True
            )
        )
        tables = [
            {
                "tenant": tenant,
                "pay_links": tenant.pk in switched_on,
                "rows": failure_table(tenant=tenant, rules=rules.get(tenant.pk, [])),
            }
            for tenant in tenants
        ]
        return super().changelist_view(
            request, extra_context={**(extra_context or {}), "failure_tables": tables}
        )


@admin.register(FailureSettings)
class FailureSettingsAdmin(OwnCompanyFirst, TenantScopedAdmin):
    """The payment-links switch of a company (off until its administrators turn it on)."""

    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("tenant", "pay_links_enabled")
    list_select_related = ("tenant",)
    fields = ("tenant", "pay_links_enabled")
