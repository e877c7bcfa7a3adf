"""The slots of a tenant's schedule (schedule_slots.py): DST changes of Amsterdam and London
in 2026-2028, month ends (the 31st in February and April, 29 February 2028), holidays of the
TARGET and England & Wales calendars. Pure functions: unsaved tenants, instants given."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from reconciliation.collection.schedule_slots import (
    local_hour_instant,
    schedule_next_slot,
    schedule_schemes,
    schedule_slot_due,
)
from tenants.models import ScheduleKind, Tenant

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
LON = zoneinfo.ZoneInfo("Europe/London")
UTC = dt.UTC


def tenant(*, zone="Europe/Amsterdam", currencies=("EUR",), hour=6, kind=ScheduleKind.DAILY,
           weekdays=(), month_days=()):
    return Tenant(name="T", slug="t", time_zone=zone, currencies=list(currencies),
                  collection_hour=hour, schedule_kind=kind, schedule_weekdays=list(weekdays),
                  schedule_month_days=list(month_days))


def slots(t, after: dt.datetime, count: int):
    found = []
    for _ in range(count):
        slot = schedule_next_slot(tenant=t, after=after)
        found.append(slot)
        after = slot.at
    return found


# --- the local hour as an instant across DST ------------------------------------------------

SPRING = [dt.date(2026, 3, 29), dt.date(2027, 3, 28), dt.date(2028, 3, 26)]
AUTUMN = [dt.date(2026, 10, 25), dt.date(2027, 10, 31), dt.date(2028, 10, 29)]


@pytest.mark.parametrize("day", SPRING)
def test_a_missing_hour_runs_at_the_first_instant_after_the_jump(day):
    # Amsterdam jumps from 02:00 CET to 03:00 CEST, London from 01:00 GMT to 02:00 BST: both
    # at 01:00 UTC.
    amsterdam = local_hour_instant(day, 2, AMS)
    london = local_hour_instant(day, 1, LON)
    assert amsterdam == london == dt.datetime.combine(day, dt.time(1), tzinfo=UTC)
    assert amsterdam.astimezone(AMS).hour == 3 and london.astimezone(LON).hour == 2
    # The hours either side are what they say.
    assert local_hour_instant(day, 1, AMS) == dt.datetime.combine(day, dt.time(0), tzinfo=UTC)
    assert local_hour_instant(day, 3, AMS) == amsterdam


@pytest.mark.parametrize("day", AUTUMN)
def test_a_repeated_hour_is_its_first_occurrence(day):
    # 02:00 happens twice in Amsterdam (CEST, then CET), 01:00 twice in London.
    assert local_hour_instant(day, 2, AMS) == dt.datetime.combine(day, dt.time(0), tzinfo=UTC)
    assert local_hour_instant(day, 1, LON) == dt.datetime.combine(day, dt.time(0), tzinfo=UTC)


@pytest.mark.parametrize("day", SPRING)
def test_daily_slots_over_the_spring_change(day):
    t = tenant(hour=2)
    eve = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), tzinfo=UTC)
    before, on, after = slots(t, eve, 3)
    assert before.at == dt.datetime.combine(day, dt.time(1), tzinfo=UTC)  # 02:00 CET does not exist
    assert before.day == day and before.at.astimezone(AMS).hour == 3
    assert on.at == dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=UTC)
    assert after.at - on.at == dt.timedelta(days=1)
    # Due from the instant after the jump, not before.
    assert schedule_slot_due(tenant=t, now=before.at - dt.timedelta(seconds=1)) is None
    assert schedule_slot_due(tenant=t, now=before.at) == before


@pytest.mark.parametrize("day", AUTUMN)
def test_the_repeated_hour_in_autumn_is_one_slot(day):
    t = tenant(zone="Europe/London", currencies=["GBP"], hour=1)
    first = dt.datetime.combine(day, dt.time(0), tzinfo=UTC)  # 01:00 BST
    second = first + dt.timedelta(hours=1)  # 01:00 GMT, the same wall time again
    slot = schedule_next_slot(tenant=t, after=first - dt.timedelta(minutes=1))
    assert slot.at == first
    # At the second 01:00 the same slot is the one due (its run is already there): no second.
    assert schedule_slot_due(tenant=t, now=second) == slot
    assert schedule_next_slot(tenant=t, after=slot.at).day == day + dt.timedelta(days=1)
    assert schedule_next_slot(tenant=t, after=second).at == dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time(1), tzinfo=UTC
    )


# --- month ends ---------------------------------------------------------------------------------


def test_the_31st_moves_to_the_months_last_day_then_the_next_working_day():
    t = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[31])
    found = slots(t, dt.datetime(2027, 1, 15, tzinfo=UTC), 4)
    assert [s.day for s in found] == [
        dt.date(2027, 2, 1),  # Sun 31 January 2027
        dt.date(2027, 3, 1),  # February's last day, Sun 28 February 2027
        dt.date(2027, 3, 31),
        dt.date(2027, 4, 30),  # April's last day, a Friday
    ]
    assert found[0].why_moved == "the 31st is a Sunday"
    assert found[1].why_moved == (
        "February has no 31st: its last day, the 28th; the 28th is a Sunday"
    )
    assert found[2].why_moved == ""
    assert found[3].why_moved == "April has no 31st: its last day, the 30th"


def test_leap_day_2028():
    t = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[29, 30])
    found = slots(t, dt.datetime(2028, 2, 1, tzinfo=UTC), 3)
    # 29 February 2028 is a Tuesday: the 29th itself; the 30th is that same day, one run.
    assert [s.day for s in found] == [
        dt.date(2028, 2, 29), dt.date(2028, 3, 29), dt.date(2028, 3, 30)
    ]
    assert found[0].why_moved == ""
    t30 = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[30])
    slot = schedule_next_slot(tenant=t30, after=dt.datetime(2028, 2, 1, tzinfo=UTC))
    assert slot.day == dt.date(2028, 2, 29)
    assert slot.why_moved == "February has no 30th: its last day, the 29th"
    # 2027 is no leap year: the 29th in February is the 28th, a Sunday, then Monday.
    t29 = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[29])
    assert schedule_next_slot(
        tenant=t29, after=dt.datetime(2027, 2, 1, tzinfo=UTC)
    ).day == dt.date(2027, 3, 1)


# --- holidays -----------------------------------------------------------------------------------


def test_new_year_moves_the_1st_to_the_next_working_day():
    t = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[1, 15])
    found = slots(t, dt.datetime(2026, 12, 20, tzinfo=UTC), 3)
    assert [s.day for s in found] == [
        dt.date(2027, 1, 4), dt.date(2027, 1, 15), dt.date(2027, 2, 1)
    ]
    assert found[0].why_moved == "the 1st is a holiday: New Year's Day"
    assert found[0].at == dt.datetime(2027, 1, 4, 5, 0, tzinfo=UTC)  # 06:00 CET


def test_christmas_in_the_uk_moves_past_both_bank_holidays():
    # 25 December 2027 is a Saturday: the bank holidays are Monday 27 and Tuesday 28.
    t = tenant(zone="Europe/London", currencies=["GBP"], kind=ScheduleKind.MONTH_DAYS,
               month_days=[25])
    slot = schedule_next_slot(tenant=t, after=dt.datetime(2027, 12, 1, tzinfo=UTC))
    assert slot.day == dt.date(2027, 12, 29)
    assert slot.why_moved == "the 25th is a holiday: Christmas Day"
    assert slot.at == dt.datetime(2027, 12, 29, 6, 0, tzinfo=UTC)


def test_easter_monday_moves_a_monday_run_to_tuesday_once():
    t = tenant(kind=ScheduleKind.WEEKDAYS, weekdays=[0])
    found = slots(t, dt.datetime(2027, 3, 23, tzinfo=UTC), 2)
    assert [s.day for s in found] == [dt.date(2027, 3, 30), dt.date(2027, 4, 5)]
    assert found[0].why_moved == "Monday 29 March is a holiday: Easter Monday"
    # With Tuesday chosen as well, the two land on one day: one run, unmoved words.
    both = tenant(kind=ScheduleKind.WEEKDAYS, weekdays=[0, 1])
    found = slots(both, dt.datetime(2027, 3, 23, tzinfo=UTC), 3)
    assert [s.day for s in found] == [
        dt.date(2027, 3, 23), dt.date(2027, 3, 30), dt.date(2027, 4, 5)
    ]
    assert found[1].why_moved == ""


def test_a_uk_bank_holiday_is_no_target_holiday():
    # Monday 30 August 2027: the summer bank holiday in England, a TARGET working day.
    eur = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[30])
    gbp = tenant(zone="Europe/London", currencies=["GBP"], kind=ScheduleKind.MONTH_DAYS,
                 month_days=[30])
    after = dt.datetime(2027, 8, 1, tzinfo=UTC)
    assert schedule_next_slot(tenant=eur, after=after).day == dt.date(2027, 8, 30)
    slot = schedule_next_slot(tenant=gbp, after=after)
    assert slot.day == dt.date(2027, 8, 31)
    assert slot.why_moved == "the 30th is a holiday: Late Summer Bank Holiday"
    # Collecting both: a working day of both calendars.
    both = tenant(currencies=["EUR", "GBP"], kind=ScheduleKind.MONTH_DAYS, month_days=[30])
    assert schedule_schemes(both) == ("bacs", "sepa_core")
    assert schedule_next_slot(tenant=both, after=after).day == dt.date(2027, 8, 31)


def test_the_calendar_without_currencies_is_the_zones():
    assert schedule_schemes(tenant(currencies=[])) == ("sepa_core",)
    assert schedule_schemes(tenant(zone="Europe/London", currencies=[])) == ("bacs",)


def test_every_day_means_every_calendar_day():
    t = tenant()
    found = slots(t, dt.datetime(2027, 12, 24, 12, tzinfo=UTC), 3)
    assert [s.day for s in found] == [
        dt.date(2027, 12, 25), dt.date(2027, 12, 26), dt.date(2027, 12, 27)
    ]
    assert all(s.why_moved == "" for s in found)


# --- which slot is due --------------------------------------------------------------------------


def test_a_slot_is_due_from_its_instant_to_the_end_of_its_local_day():
    t = tenant(kind=ScheduleKind.MONTH_DAYS, month_days=[1, 15])
    slot = schedule_next_slot(tenant=t, after=dt.datetime(2027, 3, 10, tzinfo=UTC))
    assert slot.at == dt.datetime(2027, 3, 15, 5, 0, tzinfo=UTC)
    assert schedule_slot_due(tenant=t, now=dt.datetime(2027, 3, 10, 12, tzinfo=UTC)) is None
    assert schedule_slot_due(tenant=t, now=slot.at - dt.timedelta(seconds=1)) is None
    assert schedule_slot_due(tenant=t, now=slot.at) == slot
    # 23:59 in Amsterdam still that day; a minute later, the next day: missed, not run late.
    assert schedule_slot_due(tenant=t, now=dt.datetime(2027, 3, 15, 22, 59, tzinfo=UTC)) == slot
    assert schedule_slot_due(tenant=t, now=dt.datetime(2027, 3, 15, 23, 0, tzinfo=UTC)) is None
