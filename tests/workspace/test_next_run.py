"""*Next collection run* on the dashboard follows the slots the sweep starts
(``schedule_slots``): across the DST changes, month ends, holidays, and "due now" while a
slot has come without its run. The clock is pinned with time-machine for each case."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from reconciliation.collection.scheduled_runs import scheduled_run_start
from reconciliation.workspace.dashboard import dashboard_build
from reconciliation.workspace.schedule import next_run
from tenants.models import CollectionMode, ScheduleKind

UTC = dt.UTC


@pytest.fixture
def company(tenant_a):
    tenant_a.time_zone = "Europe/Amsterdam"
    tenant_a.currencies = ["EUR"]
    tenant_a.collection_mode = CollectionMode.AUTO
    tenant_a.collection_hour = 6
    tenant_a.save()
    return tenant_a


def shown(tenant, now: dt.datetime) -> str:
    with time_machine.travel(now, tick=False):
        today = now.astimezone(tenant.zone).date()
        when, _what = next_run(tenant, now, today)
    return when


def schedule(tenant, **fields):
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.full_clean()
    tenant.save()


def test_days_of_the_month_after_new_year(company):
    schedule(company, schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days=[1, 15])
    assert shown(company, dt.datetime(2026, 12, 20, 12, tzinfo=UTC)) == (
        "Mon 4 Jan 2027, 06:00 CET (the 1st is a holiday: New Year's Day)"
    )
    assert shown(company, dt.datetime(2027, 1, 14, 12, tzinfo=UTC)) == (
        "Tomorrow, Fri 15 Jan 2027, 06:00 CET"
    )


def test_due_now_until_the_slot_has_its_run_then_the_next_slot(company):
    schedule(company, schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days=[1, 15])
    slot = dt.datetime(2027, 3, 15, 5, 0, tzinfo=UTC)
    assert shown(company, slot - dt.timedelta(minutes=1)) == "Today, Mon 15 Mar 2027, 06:00 CET"
    assert shown(company, slot) == "Due now: starts within 15 minutes"
    assert shown(company, slot + dt.timedelta(hours=10)) == "Due now: starts within 15 minutes"
    with time_machine.travel(slot, tick=False):
        scheduled_run_start(tenant=company, slot_at=slot)
    # After the change to summer time the 1st of April is at 06:00 CEST.
    assert shown(company, slot + dt.timedelta(minutes=20)) == "Thu 1 Apr 2027, 06:00 CEST"


def test_a_refused_scheduled_run_leaves_it_due(company):
    slot = dt.datetime(2027, 3, 15, 5, 0, tzinfo=UTC)
    CollectionRun.objects.create(
        tenant=company, kind=RunKind.LIVE, trigger=RunTrigger.SCHEDULE, slot_at=slot,
        state=RunState.REFUSED, as_of=dt.date(2027, 3, 15),
    )
    assert shown(company, slot + dt.timedelta(minutes=20)) == "Due now: starts within 15 minutes"


@pytest.mark.parametrize("spring", [dt.date(2026, 3, 29), dt.date(2027, 3, 28),
                                    dt.date(2028, 3, 26)])
def test_a_missing_hour_in_spring_is_shown_as_the_hour_it_runs(company, spring):
    schedule(company, collection_hour=2)
    eve = dt.datetime.combine(spring - dt.timedelta(days=1), dt.time(12), tzinfo=UTC)
    with time_machine.travel(eve, tick=False):
        scheduled_run_start(tenant=company, slot_at=eve.replace(hour=1))
    # 02:00 CET does not exist that night: the run starts at 03:00 CEST, and says so.
    assert shown(company, eve) == f"Tomorrow, Sun {spring.day} Mar {spring.year}, 03:00 CEST"


@pytest.mark.parametrize("autumn", [dt.date(2026, 10, 25), dt.date(2027, 10, 31),
                                    dt.date(2028, 10, 29)])
def test_the_repeated_hour_in_autumn_runs_once(company, autumn):
    schedule(company, collection_hour=2)
    first = dt.datetime.combine(autumn, dt.time(0), tzinfo=UTC)  # 02:00 CEST
    assert shown(company, first - dt.timedelta(minutes=1)).endswith(", 02:00 CEST")
    with time_machine.travel(first, tick=False):
        scheduled_run_start(tenant=company, slot_at=first)
    # 02:30 CET, the second time the clock reads 02:xx: the slot has had its run.
    monday = autumn + dt.timedelta(days=1)
    assert shown(company, first + dt.timedelta(minutes=90)) == (
        f"Tomorrow, Mon {monday.day} {monday:%b} {monday.year}, 02:00 CET"
    )


def test_month_ends(company):
    schedule(company, schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days=[31])
    assert shown(company, dt.datetime(2027, 2, 10, 12, tzinfo=UTC)) == (
        "Mon 1 Mar 2027, 06:00 CET (February has no 31st: its last day, the 28th; "
        "the 28th is a Sunday)"
    )
    assert shown(company, dt.datetime(2027, 4, 10, 12, tzinfo=UTC)) == (
        "Fri 30 Apr 2027, 06:00 CEST (April has no 31st: its last day, the 30th)"
    )
    schedule(company, schedule_month_days=[30])
    assert shown(company, dt.datetime(2028, 2, 10, 12, tzinfo=UTC)) == (
        "Tue 29 Feb 2028, 06:00 CET (February has no 30th: its last day, the 29th)"
    )


def test_uk_bank_holidays_for_a_company_collecting_pounds(company):
    schedule(company, time_zone="Europe/London", currencies=["GBP"],
             schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days=[25])
    assert shown(company, dt.datetime(2027, 12, 1, 12, tzinfo=UTC)) == (
        "Wed 29 Dec 2027, 06:00 GMT (the 25th is a holiday: Christmas Day)"
    )
    schedule(company, schedule_kind=ScheduleKind.WEEKDAYS, schedule_weekdays=[0])
    assert shown(company, dt.datetime(2028, 4, 12, 12, tzinfo=UTC)) == (
        "Tue 18 Apr 2028, 06:00 BST (Monday 17 April is a holiday: Easter Monday)"
    )


def test_the_dashboard_shows_it(company):
    schedule(company, schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days=[1, 15])
    now = dt.datetime(2026, 12, 20, 12, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        board = dashboard_build(tenant=company, now=now)
    assert board.next_run == "Mon 4 Jan 2027, 06:00 CET (the 1st is a holiday: New Year's Day)"
    assert board.next_run_detail == "Collects automatically"
