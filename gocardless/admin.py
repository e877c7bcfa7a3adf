"""Admin: the connection (Connect, Test connection), the inbound log and the mirrors.

All via TenantScopedAdmin. Logs and mirrors are never edited here. The events admin is not
``read_only`` only because TenantScopedAdmin then refuses every non-view action; it blocks
add/change/delete itself and offers one action, "Reprocess selected events", to operators.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.audit import Actor
from gocardless.connect import (
    ConnectError,
    OrganisationTaken,
    connection_test,
    oauth_authorize_url,
    organisation_holder,
)
from gocardless.events_replay import events_reprocess
from gocardless.models import (
    BillingRequest,
    Customer,
    CustomerBankAccount,
    GoCardlessConnection,
    GoCardlessEvent,
    Mandate,
    Payment,
    Payout,
    PayoutItem,
    Refund,
    WebhookDelivery,
)
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role


def _show_test_result(modeladmin, request, connection, result) -> None:
    if result["ok"]:
        found = "; ".join(
            f"{c['name']} ({c['id']}): {', '.join(c['schemes']) or 'no schemes'}"
            for c in result["creditors"]
        ) or "no creditor"
        modeladmin.message_user(
            request, f"{connection.tenant}: connected. Creditor {found}.", messages.SUCCESS
        )
    else:
        taken = result.get("taken")
        error = taken.message_for(request.user) if taken is not None else result["error"]
        modeladmin.message_user(
            request, f"{connection.tenant}: test failed: {error}", messages.ERROR
        )


class GoCardlessConnectionForm(forms.ModelForm):
    """Refuses an organisation id that another tenant's connection already holds (the
    database constraint would too; this says so in words, without naming that tenant)."""

    request_user = None  # set per request by GoCardlessConnectionAdmin.get_form

    class Meta:
        model = GoCardlessConnection
        fields = ("organisation_id",)  # the admin passes its own field list

    def clean_organisation_id(self):
        organisation_id = (self.cleaned_data.get("organisation_id") or "").strip()
        holder = organisation_holder(connection=self.instance, organisation_id=organisation_id)
        if holder is not None:
            taken = OrganisationTaken(organisation=organisation_id, holder=holder)
            raise forms.ValidationError(taken.message_for(self.request_user), code="taken")
        return organisation_id


@admin.register(GoCardlessConnection)
class GoCardlessConnectionAdmin(TenantScopedAdmin):
    form = GoCardlessConnectionForm
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("tenant", "environment", "organisation_id", "creditor_id", "status")
    list_filter = ("status", "environment")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "organisation_id", "creditor_id")
    autocomplete_fields = ("tenant",)
    readonly_fields = (
        "status",
        "status_reason",
        "connected_at",
        "webhook_url",
        "events_cursor_created_at",
        "events_cursor_id",
        "last_polled_at",
    )
    actions = ("test_connection",)
    change_form_template = "gocardless/admin/connection_change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request_user": request.user})

    @admin.display(description="Webhook URL (give this to GoCardless)")
    def webhook_url(self, obj):
        return obj.tenant.webhook_url("gocardless") if obj and obj.tenant_id else "-"

    @admin.action(description="Test connection", permissions=("change",))
    def test_connection(self, request, queryset):
        for connection in queryset.select_related("tenant"):
            result = connection_test(connection=connection, actor=Actor.for_user(request.user))
            _show_test_result(self, request, connection, result)

    def get_urls(self):
        urls = super().get_urls()
        own = [
            path(
                "<int:pk>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="gocardless_gocardlessconnection_test",
            ),
            path(
                "<int:pk>/connect/",
                self.admin_site.admin_view(self.connect_view),
                name="gocardless_gocardlessconnection_connect",
            ),
        ]
        return own + urls

    def _own_object(self, request, pk):
        obj = get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=pk)
        if not self.has_change_permission(request, obj):
            raise PermissionError
        return obj

    def test_connection_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:gocardless_gocardlessconnection_changelist"))
        try:
            obj = self._own_object(request, pk)
        except PermissionError:
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied from None
        result = connection_test(connection=obj, actor=Actor.for_user(request.user))
        _show_test_result(self, request, obj, result)
        return HttpResponseRedirect(reverse("admin:gocardless_gocardlessconnection_change",
                                            args=[obj.pk]))

    def connect_view(self, request, pk):
        try:
            obj = self._own_object(request, pk)
        except PermissionError:
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied from None
        try:
            return HttpResponseRedirect(oauth_authorize_url(connection=obj,
                                                            session=request.session))
        except ConnectError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:gocardless_gocardlessconnection_change",
                                                args=[obj.pk]))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    list_display = ("received_at", "tenant", "endpoint", "valid", "response_status",
                    "event_count", "unrouted_count")
    list_filter = ("valid", "response_status", "endpoint")
    list_select_related = ("tenant",)
    date_hierarchy = "received_at"
    fields = ("tenant", "endpoint", "received_at", "valid", "response_status", "error",
              "event_count", "unrouted_count", "headers", "body_text")
    readonly_fields = fields

    @admin.display(description="Body (as received)")
    def body_text(self, obj):
        raw = bytes(obj.body or b"")
        text = raw[:20000].decode("utf-8", errors="replace")
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)


class ProcessingFilter(admin.SimpleListFilter):
    title = "processing"
    parameter_name = "processing"

    def lookups(self, request, model_admin):
        return (("processed", "Processed"), ("pending", "Pending"), ("failed", "Failed"))

    def queryset(self, request, queryset):
        if self.value() == "processed":
            return queryset.filter(processed_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(processed_at__isnull=True, failed_at__isnull=True)
        if self.value() == "failed":
            return queryset.filter(processed_at__isnull=True, failed_at__isnull=False)
        return queryset


@admin.register(GoCardlessEvent)
class GoCardlessEventAdmin(TenantScopedAdmin):
    read_only = True  # events change only through processing; operators may reprocess them
    action_roles = {"reprocess": Role.OPERATOR}
    audit_changes = False
    list_display = ("event_id", "tenant", "resource_type", "action", "resource_id",
                    "created_at", "source", "processed_at", "outcome", "attempts", "failed_at")
    list_filter = (ProcessingFilter, "resource_type", "action", "outcome", "source")
    list_select_related = ("tenant",)
    search_fields = ("event_id", "resource_id")
    actions = ("reprocess",)
    exclude = ("delivery",)

    def has_reprocess_permission(self, request, obj=None):
        return self.has_action_permission(request, "reprocess", obj)

    @admin.action(description="Reprocess selected events", permissions=("reprocess",))
    def reprocess(self, request, queryset):
        counts = events_reprocess(
            event_pks=list(queryset.values_list("pk", flat=True)),
            actor=Actor.for_user(request.user),
        )
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
        self.message_user(request, f"Reprocessed: {summary}.",
                          messages.WARNING if counts.get("failed") else messages.SUCCESS)


class MirrorAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    list_select_related = ("tenant",)
    search_fields = ("gocardless_id",)
    base_filters: tuple = ("status",)

    def get_list_filter(self, request):
        return self.base_filters

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Customer)
class CustomerAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "name", "email", "synced_at")
    search_fields = ("gocardless_id", "name", "email")
    base_filters = ()


@admin.register(CustomerBankAccount)
class CustomerBankAccountAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "customer_id", "currency", "enabled")
    search_fields = ("gocardless_id", "customer_id")
    base_filters = ("enabled", "currency")


@admin.register(Mandate)
class MandateAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status", "scheme", "customer_id",
                    "next_possible_charge_date", "synced_at")
    search_fields = ("gocardless_id", "customer_id", "reference")
    base_filters = ("status", "scheme")


@admin.register(Payment)
class PaymentAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status", "amount", "currency", "charge_date",
                    "mandate_id", "payout_id", "synced_at")
    search_fields = ("gocardless_id", "mandate_id", "payout_id", "reference")
    base_filters = ("status", "currency")
    date_hierarchy = "charge_date"


@admin.register(Payout)
class PayoutAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status", "amount", "deducted_fees", "currency",
                    "arrival_date")
    search_fields = ("gocardless_id", "reference")
    base_filters = ("status", "currency")


@admin.register(PayoutItem)
class PayoutItemAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    list_display = ("payout", "position", "item_type", "amount", "payment_id", "refund_id")
    list_filter = ("item_type",)
    list_select_related = ("tenant", "payout")
    search_fields = ("payout__gocardless_id", "payment_id", "refund_id")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(Refund)
class RefundAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status", "amount", "currency", "payment_id")
    search_fields = ("gocardless_id", "payment_id", "reference")
    base_filters = ("status", "currency")


@admin.register(BillingRequest)
class BillingRequestAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status", "customer_id", "mandate_id")
    search_fields = ("gocardless_id", "customer_id", "mandate_id")
