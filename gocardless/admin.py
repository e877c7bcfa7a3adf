from django.contrib import admin

from gocardless.models import GoCardlessConnection
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role


@admin.register(GoCardlessConnection)
class GoCardlessConnectionAdmin(TenantScopedAdmin):
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("tenant", "environment", "organisation_id", "creditor_id", "status")
    list_filter = ("status", "environment")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "organisation_id", "creditor_id")
    autocomplete_fields = ("tenant",)
    readonly_fields = ("status", "status_reason", "connected_at")
