"""The slots of a tenant's collection schedule: the instants its scheduled run is due.

A tenant runs every day, on chosen weekdays, or on chosen days of the month, at its local
``collection_hour`` (``Tenant.schedule_kind`` and friends). Pure functions of the tenant's
policy and a moment; no database. ``schedules.slots_due_for_run`` (the sweep) and the
dashboard's *Next collection run* both ask here, so what the page promises is what runs.

Rules (docs/schedules.md says why):

- A chosen weekday or day of the month on a weekend day or a holiday moves to the next working
  day of the calendars of the schemes the tenant collects in (TARGET for EUR, England & Wales
  for GBP, ...: ``core.calendars``); with several currencies, a working day of all of them.
  Every day (``daily``) means every calendar day, as before schedules had kinds.
- Day 29, 30 or 31 in a shorter month is the month's last day (then the working-day rule).
- Two chosen days that land on the same date are one slot: one run a day at most.
- The local hour, made an instant with ``zoneinfo``: an hour that does not exist (the spring
  change, 02:00 in Amsterdam on the last Sunday of March) is the first instant after the gap;
  an hour that happens twice (autumn) is its first occurrence, so it runs once.
- A slot is due from its instant until the end of its local day (a sweep that was down at the
  hour still runs that day, never the next): ``schedule_slot_due``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from dataclasses import dataclass

from core.calendars import holiday_name, is_working_day
from reconciliation.collection.schemes import SCHEME_RULES
from tenants.models import WEEKDAY_NAMES, ScheduleKind

# Which scheme collects each currency (the calendar of its working days).
CURRENCY_SCHEMES = {rule.currency: scheme for scheme, rule in SCHEME_RULES.items()}
# A tenant that collects no currency yet: the calendar of where it is (nothing runs anyway
# until a currency is chosen; the dashboard still shows a date).
_ZONE_SCHEMES = {"Europe/London": "bacs"}
_DEFAULT_SCHEME = "sepa_core"
# How far ahead the next slot is looked for: a year covers any choice of days plus a move.
_HORIZON_DAYS = 400
_WINDOW_DAYS = 40
# How far back a chosen day can lie and still move onto a later date (Christmas to New Year
# with weekends: under a week; two weeks is generous).
_MOVE_DAYS = 14


@dataclass(frozen=True)
class Slot:
    at: dt.datetime  # the instant, in UTC
    day: dt.date  # the local date it runs on
    why_moved: str = ""  # "the 1st is a holiday: New Year's Day"; "" when not moved


def schedule_schemes(tenant) -> tuple[str, ...]:
    """The schemes whose working days the schedule follows (see the module docstring)."""
    currencies = tenant.currencies or []
    schemes = sorted({CURRENCY_SCHEMES[c] for c in currencies if c in CURRENCY_SCHEMES})
    return tuple(schemes) or (_ZONE_SCHEMES.get(tenant.time_zone, _DEFAULT_SCHEME),)


def local_hour_instant(day: dt.date, hour: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """``hour``:00 on ``day`` in ``zone`` as an instant, in UTC (aware datetimes of one zone
    compare by wall time, so the two 02:00s of an autumn night would be equal). A repeated
    hour: its first occurrence (fold 0). A missing hour (the clocks jump over it): the first
    instant after the jump."""
    wall = dt.datetime.combine(day, dt.time(hour))
    first = wall.replace(tzinfo=zone)  # fold=0: the offset before a change
    if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(dt.UTC)
    # In a gap: the change happened between the wall time read with the later offset (fold 1)
    # and with the earlier one (fold 0); the first instant after the gap is the change itself.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    before = dt.datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:  # zones change on whole seconds
        mid = (low + high) // 2
        if dt.datetime.fromtimestamp(mid, zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return dt.datetime.fromtimestamp(high, dt.UTC)


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _closed_reason(day: dt.date, schemes: tuple[str, ...]) -> str:
    for scheme in schemes:
        name = holiday_name(day, scheme)
        if name:
            return f"a holiday: {name}"
    return f"a {WEEKDAY_NAMES[day.weekday()]}" if day.weekday() >= 5 else "not a working day"


def _working(day: dt.date, schemes: tuple[str, ...]) -> bool:
    return all(is_working_day(day, scheme) for scheme in schemes)


def _moved(
    chosen: dt.date, schemes: tuple[str, ...], *, named: str, short_month: str = ""
) -> tuple[dt.date, str]:
    """``chosen`` moved to the next working day, and why, in words."""
    day = chosen
    while not _working(day, schemes):
        day += dt.timedelta(days=1)
    if day == chosen:
        return day, short_month
    why = f"{named} is {_closed_reason(chosen, schemes)}"
    return day, f"{short_month}; {why}" if short_month else why


def _chosen_days(tenant, start: dt.date, end: dt.date) -> dict[dt.date, str]:
    """Every run date from ``start`` to ``end`` (inclusive) with why it moved, if it did.
    Chosen days from a little before ``start`` are included: they may move into the range."""
    schemes = schedule_schemes(tenant)
    days: dict[dt.date, str] = {}

    def add(day: dt.date, why: str) -> None:
        if start <= day <= end and (day not in days or not why):
            days[day] = why  # two choices on one date: one run (the unmoved one's words)

    day = start - dt.timedelta(days=_MOVE_DAYS)
    if tenant.schedule_kind == ScheduleKind.WEEKDAYS:
        weekdays = set(tenant.schedule_weekdays or [])
        while day <= end:
            if day.weekday() in weekdays:
                named = f"{WEEKDAY_NAMES[day.weekday()]} {day.day} {day:%B}"
                add(*_moved(day, schemes, named=named))
            day += dt.timedelta(days=1)
    elif tenant.schedule_kind == ScheduleKind.MONTH_DAYS:
        wanted = sorted(set(tenant.schedule_month_days or []))
        year, month = day.year, day.month
        while dt.date(year, month, 1) <= end:
            last = calendar.monthrange(year, month)[1]
            for n in wanted:
                chosen = dt.date(year, month, min(n, last))
                short = (
                    f"{chosen:%B} has no {_ordinal(n)}: its last day, the {_ordinal(last)}"
                    if n > last
                    else ""
                )
                named = f"the {_ordinal(chosen.day)}"
                add(*_moved(chosen, schemes, named=named, short_month=short))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    else:
        day = start
        while day <= end:
            add(day, "")
            day += dt.timedelta(days=1)
    return days


def _slots(tenant, start: dt.date, end: dt.date) -> list[Slot]:
    zone = tenant.zone
    return [
        Slot(at=local_hour_instant(day, tenant.collection_hour, zone), day=day, why_moved=why)
        for day, why in sorted(_chosen_days(tenant, start, end).items())
    ]


def schedule_next_slot(*, tenant, after: dt.datetime) -> Slot:
    """The first slot of ``tenant``'s schedule strictly after the instant ``after``."""
    first = after.astimezone(tenant.zone).date()
    # A month at a time: the next slot is nearly always in the first one.
    for offset in range(0, _HORIZON_DAYS, _WINDOW_DAYS):
        start = first + dt.timedelta(days=offset)
        for slot in _slots(tenant, start, start + dt.timedelta(days=_WINDOW_DAYS - 1)):
            if slot.at > after:
                return slot
    raise ValueError(f"{tenant}: no collection day within {_HORIZON_DAYS} days")  # unreachable


def schedule_slot_due(*, tenant, now: dt.datetime) -> Slot | None:
    """The slot a run is due for at ``now``: the latest slot that has come, if its local day
    is still today (a sweep delayed past a slot runs it later that day, never the next)."""
    today = now.astimezone(tenant.zone).date()
    due = [s for s in _slots(tenant, today, today) if s.at <= now]
    return due[-1] if due else None
