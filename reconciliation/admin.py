from django.contrib import admin

from reconciliation.models import AuditEntry
from tenants.admin_base import TenantScopedAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantScopedAdmin):
    """The audit trail: read-only for everyone, superusers included."""

    read_only = True
    audit_changes = False
    list_display = (
        "created_at",
        "tenant",
        "actor_type",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "message",
    )
    list_filter = ("actor_type", "action", "object_type")
    list_select_related = ("tenant", "actor_user")
    search_fields = ("action", "object_id", "message", "actor_label")
    date_hierarchy = "created_at"
    actions = None
