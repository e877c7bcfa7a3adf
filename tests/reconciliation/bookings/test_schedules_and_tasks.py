"""The sweeper schedule and the thin tasks."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from reconciliation.bookings import services, tasks
from reconciliation.bookings.schedules import booking_schedules_ensure

pytestmark = pytest.mark.django_db


def test_sweeper_schedule_is_registered_once():
    assert booking_schedules_ensure() == ["bookings-sweep", "plan-payments-match"]
    booking_schedules_ensure()
    (schedule,) = Schedule.objects.filter(name="bookings-sweep")
    assert schedule.func == "reconciliation.bookings.tasks.bookings_sweep_task"
    assert schedule.minutes == 1
    (matching,) = Schedule.objects.filter(name="plan-payments-match")
    assert matching.func == "reconciliation.bookings.tasks.plan_payments_sweep_task"
    assert matching.minutes == 15


def test_post_task_never_raises(monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("reconciliation.bookings.posting.booking_post", boom)
    assert tasks.booking_post_task(12345) == "error"


def test_enqueue_survives_a_broker_outage(monkeypatch, tenant_a):
    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("django_q.tasks.async_task", down)
    services.booking_post_enqueue(booking_pk=1, tenant_id=tenant_a.pk)  # logged; swept later
    assert tasks.bookings_sweep_task() == {}
