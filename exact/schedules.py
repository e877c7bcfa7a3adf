"""Periodic django-q2 schedules for Exact, with deterministic names so re-running the
registration updates rather than duplicates (django-q2 does not enforce unique names).

A tenant's sync schedule exists only while the tenant is active and its connection is not
disconnected (``exact_schedules_sync``); deactivating removes it, activating restores it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django_q.models import Schedule

from core.schedules import schedule_upsert, schedules_remove

logger = logging.getLogger(__name__)

KEEPALIVE_NAME = "exact-keepalive"


def sync_schedule_name(tenant_id: int) -> str:
    return f"exact-sync:{tenant_id}"


def exact_schedules_ensure(*, tenant) -> list[str]:
    """The tenant's incremental sync, plus the installation-wide daily keep-alive.

    An inactive tenant gets no sync schedule (an existing one is removed)."""
    with transaction.atomic():
        schedule_upsert(
            name=KEEPALIVE_NAME,
            func="exact.tasks.exact_keepalive_task",
            schedule_type=Schedule.DAILY,
        )
        if not tenant.is_active:
            exact_schedules_remove(tenant=tenant)
            logger.info("exact: no sync schedule for inactive tenant %s", tenant.slug)
            return [KEEPALIVE_NAME]
        schedule_upsert(
            name=sync_schedule_name(tenant.pk),
            func="exact.tasks.exact_sync_task",
            args=(tenant.pk,),
            minutes=settings.EXACT_SYNC_EVERY_MINUTES,
        )
    return [sync_schedule_name(tenant.pk), KEEPALIVE_NAME]


def exact_schedules_remove(*, tenant) -> int:
    return schedules_remove(names=[sync_schedule_name(tenant.pk)])


def exact_schedules_sync(*, tenant) -> list[str]:
    """Make the tenant's Exact schedules match its state: a sync schedule while the tenant is
    active and has a connection that is not disconnected, none otherwise (what
    ``manage.py schedules`` and ``tenants activate``/``deactivate`` call)."""
    from exact.models import ConnectionStatus, ExactConnection

    connection = ExactConnection.objects.filter(tenant=tenant).first()
    if connection is None or connection.status == ConnectionStatus.DISCONNECTED:
        exact_schedules_remove(tenant=tenant)
        return []
    return exact_schedules_ensure(tenant=tenant)
