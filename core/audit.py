"""audit_record(): the one way every part of the product writes the audit trail.

This module depends only on Django and tenants, so exact/, gocardless/ and tenants/ can all
call it without importing each other. Snapshots never contain secrets: encrypted fields are
reduced to "set" / "not set".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from core.fields import EncryptedSecretField
from core.models import ActorType, AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who did it: a person, a schedule, a webhook from a provider, or the system."""

    type: str
    user: Any = None
    label: str = ""

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(type=ActorType.USER, user=user, label=user.get_username())

    @classmethod
    def schedule(cls, name: str) -> Actor:
        return cls(type=ActorType.SCHEDULE, label=name)

    @classmethod
    def webhook(cls, provider: str) -> Actor:
        return cls(type=ActorType.WEBHOOK, label=provider)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(type=ActorType.SYSTEM, label=label)


def model_snapshot(instance: models.Model, *, fields: list[str] | None = None) -> dict:
    """A JSON-safe dict of concrete field values; secrets are shown only as set / not set."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if fields is not None and field.name not in fields:
            continue
        if isinstance(field, EncryptedSecretField):
            data[field.name] = "set" if getattr(instance, field.attname) else "not set"
            continue
        value = getattr(instance, field.attname)
        data[field.attname if field.is_relation else field.name] = value
    return data


def snapshot_diff(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    """Keep only the keys that changed, so entries show the change rather than the row."""
    if before is None or after is None:
        return before, after
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def audit_entry_build(
    *,
    actor: Actor,
    action: str,
    tenant=None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: dict | None = None,
    after: dict | None = None,
    message: str = "",
) -> AuditEntry:
    """The entry `audit_record` writes, unsaved (for callers that write many at once with
    `audit_entries_create`)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    user = actor.user if actor.user is not None and actor.user.pk else None
    return AuditEntry(
        tenant=tenant,
        actor_type=actor.type,
        actor_user=user,
        actor_label=actor.label[:200],
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        before=before,
        after=after,
        message=message,
    )


def audit_record(**fields) -> AuditEntry:
    """Append one entry. `action` is a dotted verb such as ``tenant.created``; the keyword
    arguments are those of `audit_entry_build`."""
    entry = audit_entry_build(**fields)
    entry.save()
    return entry


def audit_entries_create(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Append many entries built with `audit_entry_build` in one statement."""
    return AuditEntry.objects.bulk_create(entries) if entries else []


def audit_entries():
    """The trail, for reading (e.g. "was this already alerted?"); it refuses updates and
    deletes like the model does. exact/, gocardless/ and tenants/ read it through here."""
    return AuditEntry.objects.all()
