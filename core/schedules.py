"""django-q2 schedules, upserted by deterministic name.

django-q2 does not enforce unique schedule names, so every app registers its periodic jobs
through `schedule_upsert`: running the registration again updates rather than duplicates.
`manage.py schedules` registers every app's jobs in one go (config/management/commands).
"""

from __future__ import annotations

from django_q.models import Schedule


def schedule_upsert(
    *,
    name: str,
    func: str,
    minutes: int | None = None,
    schedule_type: str = Schedule.MINUTES,
    args: tuple = (),
) -> Schedule:
    """Create or update the schedule called `name` (runs forever: repeats = -1)."""
    schedule, _ = Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": func,
            "args": repr(args) if args else None,
            "schedule_type": schedule_type,
            "minutes": minutes if schedule_type == Schedule.MINUTES else None,
            "repeats": -1,
        },
    )
    return schedule


def schedules_remove(*, names: list[str]) -> int:
    return Schedule.objects.filter(name__in=names).delete()[0]
