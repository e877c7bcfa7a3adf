"""Admin for the Exact connection (connect / reconnect / test / disconnect / sync now) and the
read-only mirrors. All tenant-owned admins subclass TenantScopedAdmin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.audit import Actor, audit_record
from core.display import local_time_display
from core.http import csp_allow_form_target
from exact import oauth, queue
from exact.admin_mirrors import sync_queued_message
from exact.connect import connection_disconnect, connection_test, exact_consent_origin
from exact.connections import connection_require_usable
from exact.errors import ExactError
from exact.models import (
    ConnectionStatus,
    ExactConnection,
    Region,
    custom_base_url_allowed,
)
from exact.selectors import connection_budget, connection_consent, connection_token_health
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role


@admin.register(ExactConnection)
class ExactConnectionAdmin(TenantScopedAdmin):
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    change_form_template = "exact/admin/connection_change_form.html"
    list_display = (
        "tenant",
        "region",
        "division",
        "division_name",
        "status",
        "paused",
        "connected",
    )
    list_filter = ("status", "region")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "division_name")
    autocomplete_fields = ("tenant",)
    readonly_fields = (
        "status",
        "status_reason",
        "division",
        "division_name",
        "consent",
        "token_health",
        "call_budget",
        "connected",
        "paused_until_local",
        "webhook_subscriptions",
    )
    # The tokens live on the Exact user's grant (set by the OAuth flow only, never typed,
    # never shown); the grant and the operator nonce are not editable fields.
    actions = ["sync_now"]

    def secret_field_names(self) -> list[str]:
        return []  # no secret on the connection itself

    # --- where Exact lives: the region table; a custom base URL is not a company's choice ---
    def _custom_allowed(self, request) -> bool:
        """Region "custom" decides where the app's client secret and the tokens are sent, so
        only a superuser on an installation that allows custom hosts (the simulators) sees
        or sets it; a company administrator never does."""
        return bool(request.user.is_superuser and custom_base_url_allowed())

    def _region_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not self._custom_allowed(request):
            fields = [name for name in fields if name != "custom_base_url"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != ConnectionStatus.DISCONNECTED:
            # The division belongs to the region it was consented in; disconnect to move.
            readonly += ["region", "custom_base_url"]
        return readonly

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "region" and not self._custom_allowed(request):
            kwargs["choices"] = [
                choice for choice in db_field.choices if choice[0] != Region.CUSTOM
            ]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        hidden = {"connected_at", "paused_until", "webhook_subscription_ids"}
        return [name for name in self._region_fields(request, obj) if name not in hidden]

    @admin.display(description="Connected", ordering="connected_at")
    def connected(self, obj):
        return local_time_display(obj.connected_at, obj.tenant) if obj.connected_at else "-"

    @admin.display(description="Paused until")
    def paused_until_local(self, obj):
        if obj is None or not obj.paused_until:
            return "Not paused"
        return local_time_display(obj.paused_until, obj.tenant)

    @admin.display(description="Webhook subscriptions at Exact")
    def webhook_subscriptions(self, obj):
        count = len(obj.webhook_subscription_ids or []) if obj is not None else 0
        return f"{count} topic{'s' if count != 1 else ''} subscribed" if count else "None"

    @admin.display(description="Paused", boolean=True)
    def paused(self, obj):
        return bool(obj.paused_until and obj.paused_until > timezone.now())

    @staticmethod
    def _when(obj, moment, otherwise: str) -> str:
        """A moment in the company's time zone (token and budget times)."""
        return local_time_display(moment, obj.tenant) if moment else otherwise

    @admin.display(description="Token health")
    def token_health(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        h = connection_token_health(connection=obj)
        return format_html(
            "{} — issued {}, expires {}{}, last refresh {}; refresh token {}{}",
            h["status"],
            self._when(obj, h["issued"], "never"),
            self._when(obj, h["expires"], "-"),
            " (expired; renewed on next use)" if h["expired"] else "",
            self._when(obj, h["last_refresh"], "never"),
            "stored" if h["has_refresh_token"] else "not stored",
            f". Reason: {h['reason']}" if h["reason"] else "",
        )

    @admin.display(description="Consent")
    def consent(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        c = connection_consent(connection=obj)
        if c is None:
            return "No consent stored."
        return format_html(
            "Given by Exact user {} ({}){}.",
            c["user"],
            c["status"],
            format_html(
                ", shared with {} other compan{}",
                c["shared_with"],
                "y" if c["shared_with"] == 1 else "ies",
            )
            if c["shared_with"]
            else "",
        )

    @admin.display(description="Today's API budget")
    def call_budget(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        b = connection_budget(connection=obj)
        if b is None:
            return "No calls made yet."
        text = format_html(
            "Daily: {} of {} left (resets {}). This minute: {} of {} left (resets {}).",
            b["daily_remaining"] if b["daily_remaining"] is not None else "?",
            b["daily_limit"] or "?",
            self._when(obj, b["daily_reset"], "-"),
            b["minutely_remaining"] if b["minutely_remaining"] is not None else "?",
            b["minutely_limit"] or "?",
            self._when(obj, b["minutely_reset"], "-"),
        )
        if b["paused_until"]:
            text = format_html(
                "{} <strong>Paused until {} (daily budget spent).</strong>",
                text,
                self._when(obj, b["paused_until"], "-"),
            )
        return text

    # --- custom views ------------------------------------------------------------------------
    def get_urls(self):
        own = [
            path(
                "<int:pk>/connect/",
                self.admin_site.admin_view(self.connect_view),
                name="exact_exactconnection_connect",
            ),
            path(
                "<int:pk>/test/",
                self.admin_site.admin_view(self.test_view),
                name="exact_exactconnection_test",
            ),
            path(
                "<int:pk>/disconnect/",
                self.admin_site.admin_view(self.disconnect_view),
                name="exact_exactconnection_disconnect",
            ),
        ]
        return own + super().get_urls()

    def _admin_object(self, request, pk) -> ExactConnection:
        obj = self.get_queryset(request).filter(pk=pk).select_related("tenant").first()
        if obj is None:
            raise Http404("No such connection")
        if not self._has_role(request, obj, Role.ADMIN):
            raise PermissionDenied
        return obj

    def _back(self, obj) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:exact_exactconnection_change", args=[obj.pk]))

    def connect_view(self, request, pk):
        """Connect or Reconnect: redirect the browser to Exact's consent page."""
        obj = self._admin_object(request, pk)
        if request.method != "POST":
            return self._back(obj)
        try:
            url = oauth.consent_url_create(connection=obj, request=request)
        except (ValidationError, ValueError) as exc:
            self.message_user(request, f"Cannot connect: {exc}", messages.ERROR)
            return self._back(obj)
        return HttpResponseRedirect(url)

    def test_view(self, request, pk):
        obj = self._admin_object(request, pk)
        if request.method != "POST":
            return self._back(obj)
        try:
            found = connection_test(connection=obj)
        except ExactError as exc:
            self.message_user(request, f"Test failed: {exc}", messages.ERROR)
            return self._back(obj)
        self.message_user(
            request,
            f"Exact answered: user {found['user']} ({found['email'] or '-'}).",
            messages.SUCCESS,
        )
        if found["division_reachable"]:
            self.message_user(
                request,
                f"Division {obj.division} ({obj.division_name}) is reachable.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"Division {obj.division} is not among the divisions this consent reaches "
                f"({', '.join(map(str, found['divisions'])) or 'none'}). Reconnect.",
                messages.ERROR,
            )
        return self._back(obj)

    def disconnect_view(self, request, pk):
        obj = self._admin_object(request, pk)
        if request.method != "POST":
            return TemplateResponse(
                request,
                "exact/admin/disconnect_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Disconnect Exact Online",
                    "object": obj,
                    "opts": self.model._meta,
                },
            )
        warnings = connection_disconnect(connection=obj, actor=Actor.for_user(request.user))
        for warning in warnings:
            self.message_user(request, warning, messages.WARNING)
        self.message_user(request, "Exact Online disconnected; tokens removed.", messages.SUCCESS)
        return self._back(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        obj = self.get_queryset(request).filter(pk=object_id).first()
        if obj is not None:
            extra["exact_can_configure"] = self._has_role(request, obj, Role.ADMIN)
            extra["exact_connected"] = obj.status == ConnectionStatus.CONNECTED
            extra["exact_has_consent"] = bool(obj.grant_id)
        response = super().change_view(request, object_id, form_url, extra_context=extra)
        return csp_allow_form_target(response, exact_consent_origin(obj))

    @admin.action(description="Sync now (incremental)", permissions=["change"])
    def sync_now(self, request, queryset):
        for obj in queryset.select_related("tenant"):
            try:
                connection_require_usable(connection=obj)
            except ExactError as exc:
                self.message_user(request, str(exc), messages.WARNING)
                continue
            queue.enqueue("exact.tasks.exact_sync_task", obj.tenant_id)
            audit_record(
                actor=Actor.for_user(request.user),
                action="exact_sync.requested",
                tenant=obj.tenant,
                obj=obj,
                message="Sync now (admin)",
            )
            self.message_user(request, sync_queued_message(obj.tenant), messages.SUCCESS)


