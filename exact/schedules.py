"""Periodic django-q2 schedules for Exact, with deterministic names so re-running the
registration updates rather than duplicates (django-q2 does not enforce unique names)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_q.models import Schedule

from config.schedules import schedule_upsert, schedules_remove

KEEPALIVE_NAME = "exact-keepalive"


def sync_schedule_name(tenant_id: int) -> str:
    return f"exact-sync:{tenant_id}"


def exact_schedules_ensure(*, tenant) -> list[str]:
    """The tenant's incremental sync, plus the installation-wide daily keep-alive."""
    with transaction.atomic():
        schedule_upsert(
            name=sync_schedule_name(tenant.pk),
            func="exact.tasks.exact_sync_task",
            args=(tenant.pk,),
            minutes=settings.EXACT_SYNC_EVERY_MINUTES,
        )
        schedule_upsert(
            name=KEEPALIVE_NAME,
            func="exact.tasks.exact_keepalive_task",
            schedule_type=Schedule.DAILY,
        )
    return [sync_schedule_name(tenant.pk), KEEPALIVE_NAME]


def exact_schedules_remove(*, tenant) -> int:
    return schedules_remove(names=[sync_schedule_name(tenant.pk)])
