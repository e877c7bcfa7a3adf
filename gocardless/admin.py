"""Admin: the connection (Connect, Test connection), the inbound log and the mirrors.

All via TenantScopedAdmin. Logs and mirrors are never edited here. The events admin is not
``read_only`` only because TenantScopedAdmin then refuses every non-view action; it blocks
add/change/delete itself and offers one action, "Reprocess selected events", to operators.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core.audit import Actor
from gocardless.conf import custom_base_url_allowed
from gocardless.connect import (
    ConnectError,
    connect_refusal_record,
    connection_test,
    connection_token_check,
    connection_token_store,
)
from gocardless.connect_oauth import oauth_authorize_url
from gocardless.connection_status import connection_set_status
from gocardless.events_replay import events_reprocess
from gocardless.models import (
    BillingRequest,
    ConnectionStatus,
    Customer,
    CustomerBankAccount,
    Environment,
    EventOutcome,
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


def _https_urls(db_field, **kwargs):
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class GoCardlessConnectionForm(forms.ModelForm):
    """Tenant (when adding), environment, and a custom base URL for superusers where the
    installation allows it; the access token and webhook secret are TenantScopedAdmin's
    write-only inputs. The organisation and creditor are never inputs (connect.py).

    A typed access token is checked with GoCardless before anything is saved: refused,
    unreachable, or an account another tenant holds → an error on the field (recorded by
    connect.connection_token_check); accepted → ``checked_creditor``, stored by save_model.
    """

    request_user = None  # set per request by GoCardlessConnectionAdmin.get_form

    class Meta:
        model = GoCardlessConnection
        fields = ("tenant", "environment", "custom_base_url", "access_token", "webhook_secret")
        # Not a declared field: the admin drops declared fields it shows read-only only from
        # its own form class, so a declared custom_base_url would stay editable for everyone.
        formfield_callback = _https_urls

    def clean(self):
        cleaned = super().clean()
        self.checked_creditor = None
        user = self.request_user
        environment = cleaned.get("environment", self.instance.environment)
        custom_base_url = cleaned.get("custom_base_url", self.instance.custom_base_url) or ""
        touched = {"environment", "custom_base_url"} & set(self.changed_data)
        if touched and environment == Environment.CUSTOM:
            if not (getattr(user, "is_superuser", False) and custom_base_url_allowed()):
                self.add_error("environment", "A custom base URL is not allowed here.")
            elif not custom_base_url:
                self.add_error("custom_base_url", "Environment 'custom' needs a base URL.")
        token = cleaned.get("access_token")
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.tenant_id
                                           else None)
        if token and tenant is not None and not self.errors:
            try:
                self.checked_creditor = connection_token_check(
                    tenant=tenant, access_token=token, environment=environment,
                    custom_base_url=custom_base_url, actor=Actor.for_user(user),
                    connection=self.instance if self.instance.pk else None,
                )
            except ConnectError as exc:
                self.add_error("access_token", exc.message_for(user))
        return cleaned


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
        "organisation_id",
        "creditor_id",
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

    def _custom_editable(self, request) -> bool:
        """Where a token is sent is the installation's business: a custom base URL only for
        superusers, and only where GOCARDLESS_ALLOW_CUSTOM_BASE_URL is on."""
        return request.user.is_superuser and custom_base_url_allowed()

    def get_fields(self, request, obj=None):
        fields = ["tenant", "environment"]
        if self._custom_editable(request) or (obj and obj.environment == Environment.CUSTOM):
            fields.append("custom_base_url")
        fields += ["access_token", "clear_access_token", "webhook_secret",
                   "clear_webhook_secret", "secrets_status"]
        if obj is not None:
            fields += list(self.readonly_fields)
        return self._hide_secrets(request, obj, fields)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("tenant")  # moving a connection would move its account
        if not self._custom_editable(request):
            readonly.append("custom_base_url")
            if obj is not None and obj.environment == Environment.CUSTOM:
                readonly.append("environment")
        return readonly

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "environment" and not self._custom_editable(request):
            kwargs["choices"] = [c for c in Environment.choices if c[0] != Environment.CUSTOM]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request_user": request.user})

    def save_model(self, request, obj, form, change):
        updates = getattr(form, "secret_updates", {})
        token = updates.pop("access_token") if updates.get("access_token") else None
        super().save_model(request, obj, form, change)
        actor = Actor.for_user(request.user)
        if token and form.checked_creditor:
            try:
                connection_token_store(connection=obj, access_token=token,
                                       creditor=form.checked_creditor, actor=actor)
            except ConnectError as exc:
                connect_refusal_record(reason=f"access token: {exc}", actor=actor,
                                       connection=obj)
                self.message_user(request, exc.message_for(request.user), messages.ERROR)
            else:
                creditor = form.checked_creditor
                self.message_user(request, f"GoCardless connected with the access token "
                                  f"(creditor {creditor['name']} {creditor['id']}).",
                                  messages.SUCCESS)
        elif change and {"environment", "custom_base_url"} & set(form.changed_data):
            # The stored token was checked against the other environment: not known to work.
            connection_set_status(connection=obj, status=ConnectionStatus.DISCONNECTED,
                                  reason="environment changed: test the connection or "
                                  "connect again", actor=actor)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if obj.status != ConnectionStatus.CONNECTED and not (
            {"_popup", "_addanother"} & set(request.POST)
        ):
            self.message_user(request, 'Now connect it: press "Connect GoCardless (OAuth)", '
                              "or paste an access token and save.", messages.INFO)
            return HttpResponseRedirect(
                reverse("admin:gocardless_gocardlessconnection_change", args=[obj.pk]))
        return response

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
            raise PermissionDenied
        return obj

    def test_connection_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:gocardless_gocardlessconnection_changelist"))
        obj = self._own_object(request, pk)
        result = connection_test(connection=obj, actor=Actor.for_user(request.user))
        _show_test_result(self, request, obj, result)
        return HttpResponseRedirect(reverse("admin:gocardless_gocardlessconnection_change",
                                            args=[obj.pk]))

    def connect_view(self, request, pk):
        obj = self._own_object(request, pk)
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
                    "body_size", "source_address", "event_count", "unrouted_count")
    list_filter = ("valid", "response_status", "endpoint")
    list_select_related = ("tenant",)
    date_hierarchy = "received_at"
    fields = ("tenant", "endpoint", "received_at", "valid", "response_status", "error",
              "event_count", "unrouted_count", "source_address", "body_size", "body_sha256",
              "headers", "body_text")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body")  # up to 1 MiB each

    @admin.display(description="Body (as stored)")
    def body_text(self, obj):
        raw = bytes(obj.body or b"")
        text = raw[:20000].decode("utf-8", errors="replace").replace("\x00", "\\u0000")
        kept = "" if len(raw) >= obj.body_size else (
            f"(the first {len(raw)} of {obj.body_size} bytes: a refused delivery keeps "
            "metadata only)\n")
        return format_html("<pre class='mlc-pre-wrap'>{}{}</pre>", kept, text)


class ProcessingFilter(admin.SimpleListFilter):
    title = "processing"
    parameter_name = "processing"

    def lookups(self, request, model_admin):
        return (("processed", "Processed"), ("pending", "Pending"), ("failed", "Failed"),
                ("quarantined", "Quarantined (never processed)"))

    def queryset(self, request, queryset):
        if self.value() == "processed":
            return queryset.filter(processed_at__isnull=False).exclude(
                outcome=EventOutcome.QUARANTINED)
        if self.value() == "quarantined":
            return queryset.filter(outcome=EventOutcome.QUARANTINED)
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
