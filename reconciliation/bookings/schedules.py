"""The bookings sweeper schedule (installation-wide, one row, deterministic name).

Register it with ``manage.py schedules`` (config/management/commands/schedules.py calls
``booking_schedules_ensure()``) or directly.
"""

from __future__ import annotations

from django.db import transaction

from core.schedules import schedule_upsert

SCHEDULES = {
    # name: (task, minutes)
    "bookings-sweep": ("reconciliation.bookings.tasks.bookings_sweep_task", 1),
    # Subscription / instalment payments GoCardless created that no money signal named yet.
    "plan-payments-match": ("reconciliation.bookings.tasks.plan_payments_sweep_task", 15),
}


def booking_schedules_ensure() -> list[str]:
    with transaction.atomic():
        for name, (func, minutes) in SCHEDULES.items():
            schedule_upsert(name=name, func=func, minutes=minutes)
    return list(SCHEDULES)
