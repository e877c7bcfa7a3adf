from django.contrib import admin

from exact.models import ExactConnection
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role


@admin.register(ExactConnection)
class ExactConnectionAdmin(TenantScopedAdmin):
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("tenant", "region", "division", "division_name", "status", "token_issued_at")
    list_filter = ("status", "region")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "division_name")
    autocomplete_fields = ("tenant",)
    readonly_fields = (
        "status",
        "status_reason",
        "token_issued_at",
        "access_expires_at",
        "last_refresh_at",
        "connected_at",
        "webhook_subscription_ids",
    )
