"""Periodic django-q2 schedules for Exact, with deterministic names so re-running the
registration updates rather than duplicates (django-q2 does not enforce unique names)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_q.models import Schedule

KEEPALIVE_NAME = "exact-keepalive"


def sync_schedule_name(tenant_id: int) -> str:
    return f"exact-sync:{tenant_id}"


def exact_schedules_ensure(*, tenant) -> list[str]:
    """The tenant's incremental sync, plus the installation-wide daily keep-alive."""
    with transaction.atomic():
        Schedule.objects.update_or_create(
            name=sync_schedule_name(tenant.pk),
            defaults={
                "func": "exact.tasks.exact_sync_task",
                "args": repr((tenant.pk,)),
                "schedule_type": Schedule.MINUTES,
                "minutes": settings.EXACT_SYNC_EVERY_MINUTES,
                "repeats": -1,
            },
        )
        Schedule.objects.update_or_create(
            name=KEEPALIVE_NAME,
            defaults={
                "func": "exact.tasks.exact_keepalive_task",
                "schedule_type": Schedule.DAILY,
                "repeats": -1,
            },
        )
    return [sync_schedule_name(tenant.pk), KEEPALIVE_NAME]


def exact_schedules_remove(*, tenant) -> int:
    return Schedule.objects.filter(name=sync_schedule_name(tenant.pk)).delete()[0]
