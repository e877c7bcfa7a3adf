"""The one way an attempt's state changes: the fields and an audit entry, together."""

from __future__ import annotations

from django.db import transaction

from core.audit import Actor, audit_record
from reconciliation.collection.models import CollectionAttempt


def attempt_change(
    attempt: CollectionAttempt, *, actor: Actor, action: str, message: str, **changes
) -> None:
    before = {k: str(getattr(attempt, k)) for k in changes}
    for name, value in changes.items():
        setattr(attempt, name, value)
    with transaction.atomic():
        attempt.save(update_fields=[*changes, "updated_at"])
        audit_record(
            actor=actor,
            action=action,
            tenant=attempt.tenant,
            obj=attempt,
            before=before,
            after={k: str(v) for k, v in changes.items()},
            message=message,
        )
