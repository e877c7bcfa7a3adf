"""The audit trail in the admin: the ground floor's records, seen through the tenant scoping
every tenant-owned model has (core/ cannot hold this: it imports no other project app)."""

from django.contrib import admin

from core.models import AuditEntry
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
