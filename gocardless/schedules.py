"""Periodic GoCardless jobs (installation-wide): the event sweeper, the polling fallback and
the retention of the webhook intake log."""

from __future__ import annotations

from django.db import transaction

from core.schedules import schedule_upsert

SCHEDULES = {
    # name: (function, minutes)
    "gocardless.events_sweep": ("gocardless.tasks.events_sweep_task", 1),
    "gocardless.events_poll": ("gocardless.tasks.events_poll_task", 15),
    "gocardless.deliveries_prune": ("gocardless.tasks.deliveries_prune_task", 60),
}


def gocardless_schedules_ensure() -> list[str]:
    with transaction.atomic():
        for name, (func, minutes) in SCHEDULES.items():
            schedule_upsert(name=name, func=func, minutes=minutes)
    return list(SCHEDULES)
