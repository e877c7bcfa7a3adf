"""Periodic django-q2 schedules for customers and mandates (installation-wide, one row each,
deterministic names so running this again updates rather than duplicates)."""

from __future__ import annotations

from django.db import transaction

from core.schedules import schedule_upsert

SCHEDULES = {
    # name: (task, minutes)
    "customers-invitations": ("reconciliation.customers.tasks.invitations_tick_task", 60),
    "customers-reflections": ("reconciliation.customers.tasks.reflections_sweep_task", 5),
    "customers-registration": ("reconciliation.customers.tasks.registration_run_task", 60),
}


def customer_schedules_ensure() -> list[str]:
    with transaction.atomic():
        for name, (func, minutes) in SCHEDULES.items():
            schedule_upsert(name=name, func=func, minutes=minutes)
    return list(SCHEDULES)
