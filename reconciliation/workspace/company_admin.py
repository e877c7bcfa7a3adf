"""The company's page (the Tenant change form) with both connections on it: status in words,
division, organisation, last sync, API budget left, and the buttons that connect, reconnect,
test and disconnect. It lives here, above both provider apps, because tenants/ may import
neither; the admin registered by tenants/ is replaced by this subclass at start."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from core.audit import Actor
from core.display import local_time_display
from core.http import csp_allow_form_target
from exact.connect import exact_consent_origin
from exact.connections import connection_ensure
from exact.errors import ExactConnectionUnavailable
from exact.models import ConnectionStatus as ExactStatus
from exact.models import SyncRun
from exact.oauth import consent_url_create
from exact.selectors import connection_budget
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import GoCardlessConnection
from tenants.admin import TenantAdmin
from tenants.models import Tenant

WHOLE_COPY = ("full", "incremental")


def exact_panel(tenant: Tenant) -> dict:
    connection = getattr(tenant, "exact_connection", None)
    if connection is None:
        return {"state": "none", "words": "Not connected"}
    last = (SyncRun.objects.filter(tenant=tenant, finished_at__isnull=False, error="")
            .order_by("-started_at").values_list("started_at", flat=True).first())
    budget = connection_budget(connection=connection) if connection.division else None
    return {
        "state": connection.status,
        "words": connection.get_status_display(),
        "reason": connection.status_reason if connection.status != ExactStatus.CONNECTED else "",
        "connection": connection,
        "region": connection.get_region_display(),
        "division": (f"{connection.division} {connection.division_name}".strip()
                     if connection.division else "not chosen"),
        "last_sync": local_time_display(last, tenant) if last else "never",
        "budget": (f"{budget['daily_remaining']:,} of {budget['daily_limit']:,} calls left today"
                   if budget and budget.get("daily_limit") else "unknown"),
        "connected": connection.status == ExactStatus.CONNECTED,
    }


def gocardless_panel(tenant: Tenant) -> dict:
    connection = (GoCardlessConnection.objects.filter(tenant=tenant)
                  .defer("access_token", "webhook_secret").first())
    if connection is None:
        return {"state": "none", "words": "Not connected"}
    return {
        "state": connection.status,
        "words": connection.get_status_display(),
        "connection": connection,
        "environment": connection.get_environment_display(),
        "organisation": connection.organisation_id or "-",
        "creditor": connection.creditor_id or "-",
        "connected": connection.status == GoCardlessStatus.CONNECTED,
    }


class CompanyAdmin(TenantAdmin):
    change_form_template = "workspace/tenant_change_form.html"

    def get_urls(self):
        own = [
            path("<int:pk>/connect-exact/", self.admin_site.admin_view(self.connect_exact_view),
                 name="tenants_tenant_connect_exact"),
        ]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tenant = self.get_object(request, object_id)
        if tenant is not None:
            extra_context = {
                **(extra_context or {}),
                "exact_panel": exact_panel(tenant),
                "gocardless_panel": gocardless_panel(tenant),
                "may_connect": self.has_change_permission(request, tenant),
            }
        response = super().change_view(request, object_id, form_url, extra_context)
        connection = getattr(tenant, "exact_connection", None) if tenant else None
        return csp_allow_form_target(response, exact_consent_origin(connection))

    def connect_exact_view(self, request, pk):
        """Connect Exact Online / Reconnect: make sure the company has a connection, then send
        the browser to Exact's consent page (state bound to this session)."""
        tenant = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, tenant):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
        if request.method != "POST":
            return back
        try:
            connection = connection_ensure(tenant=tenant, actor=Actor.for_user(request.user))
            return HttpResponseRedirect(consent_url_create(connection=connection,
                                                           request=request))
        except (ExactConnectionUnavailable, ValidationError, ValueError) as exc:
            self.message_user(request, f"Cannot connect Exact Online: {exc}", messages.ERROR)
            return back


def install(site: admin.AdminSite) -> None:
    if site.is_registered(Tenant):
        site.unregister(Tenant)
    site.register(Tenant, CompanyAdmin)
