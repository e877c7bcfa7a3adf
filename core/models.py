"""The ground floor's one model: the append-only audit trail.

Every app writes it (through ``core.audit.audit_record``) and none owns it. The table keeps
the name it had before the ground floor existed (``reconciliation_auditentry``): moving the
model changed no data, and the PostgreSQL append-only trigger stays attached to it."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are append-only; update() is refused.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit entries are append-only; bulk_update() is refused.")

    def delete(self):
        raise AppendOnlyError("Audit entries are append-only; delete() is refused.")

    delete.queryset_only = True


class ActorType(models.TextChoices):
    USER = "user", "User"
    SCHEDULE = "schedule", "Schedule"
    WEBHOOK = "webhook", "Webhook"
    SYSTEM = "system", "System"


class AuditEntry(models.Model):
    """One thing that happened, by whom, to what, with the state before and after.

    Refused updates and deletes at three levels: this model, the admin (read-only), and on
    PostgreSQL a trigger (reconciliation migration 0002), so even raw SQL cannot rewrite history.
    """

    # PROTECT: a tenant or user with history is deactivated, never deleted, so no
    # cascade (and no SET NULL, which would be an UPDATE) ever touches this table.
    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        db_table = "reconciliation_auditentry"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="audit_tenant_time"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_type}:{self.object_id}"
        )

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit entries are append-only; an existing entry cannot change.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only; delete() is refused.")
