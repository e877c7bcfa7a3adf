"""Admin: the connection (Connect, Test connection); the inbound log (admin_log.py) and the
mirrors (admin_mirrors.py) are registered from their own modules, imported at the end.

All via TenantScopedAdmin. Logs and mirrors are never edited here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from core.audit import Actor
from core.display import NOTHING
from gocardless.admin_display import moment
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
from gocardless.models import ConnectionStatus, Environment, GoCardlessConnection
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
        "connected",
        "webhook_url",
        "events_cursor",
        "events_cursor_id",
        "last_polled",
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

    @admin.display(description="Connected")
    def connected(self, obj):
        return moment(obj.connected_at, obj.tenant) if obj and obj.tenant_id else NOTHING

    @admin.display(description="Newest event seen by polling")
    def events_cursor(self, obj):
        return (moment(obj.events_cursor_created_at, obj.tenant) if obj and obj.tenant_id
                else NOTHING)

    @admin.display(description="Last polled")
    def last_polled(self, obj):
        return moment(obj.last_polled_at, obj.tenant) if obj and obj.tenant_id else NOTHING

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


# The inbound log and the mirrors register themselves on import (Django imports admin.py).
from gocardless import admin_log, admin_mirrors, admin_plans  # noqa: E402, F401
