"""The collection engine's periodic jobs: which tenants it starts, and the daily e-mail of
what needs attention.

One schedule (every 15 minutes) rather than one per tenant: each tenant runs once a day at
its own local ``collection_hour``, and a tenant added or moved to another time zone needs no
schedule change. "Already ran today" is read from the runs themselves, so two clusters
firing the same schedule start one run (the second is refused by the live-run lock, or sees
today's scheduled run and skips).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from core.calendars import tenant_today
from core.schedules import schedule_upsert
from reconciliation.collection.models import CollectionRun, RunState, RunTrigger
from tenants.models import CollectionMode, Tenant

SCHEDULE_NAME = "collection.runs_due"
# Hourly; each tenant gets at most one e-mail a day (attention.attention_digests_send).
DIGEST_SCHEDULE_NAME = "collection.attention_digest"


def collection_schedules_ensure() -> list[str]:
    from django_q.models import Schedule

    schedule_upsert(
        name=SCHEDULE_NAME,
        func="reconciliation.collection.tasks.runs_due_task",
        schedule_type=Schedule.MINUTES,
        minutes=15,
    )
    schedule_upsert(
        name=DIGEST_SCHEDULE_NAME,
        func="reconciliation.collection.tasks.attention_digest_task",
        schedule_type=Schedule.MINUTES,
        minutes=60,
    )
    return [SCHEDULE_NAME, DIGEST_SCHEDULE_NAME]


def tenants_due_for_run(*, now: dt.datetime | None = None) -> list[Tenant]:
    now = now or timezone.now()
    due = []
    for tenant in Tenant.objects.filter(is_active=True).exclude(collection_mode=CollectionMode.OFF):
        local = now.astimezone(tenant.zone)
        if local.hour < tenant.collection_hour:
            continue
        today = tenant_today(tenant, now=now)
        ran = (
            CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE, as_of=today)
            .exclude(state__in=(RunState.REFUSED, RunState.FAILED))
            .exists()
        )
        if not ran:
            due.append(tenant)
    return due
