"""`manage.py schedules` registers every app's periodic jobs once, however often it runs; every
job is installation-wide (no schedule row per tenant)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from tests.factories import ExactConnectionFactory

pytestmark = pytest.mark.django_db


def test_all_schedules_are_upserted_idempotently(tenant_a, tenant_b):
    ExactConnectionFactory(tenant=tenant_a, status="connected")
    ExactConnectionFactory(tenant=tenant_b, status="disconnected")
    for _ in range(2):
        call_command("schedules", stdout=StringIO())
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {
        "gocardless.events_sweep",
        "gocardless.events_poll",
        "customers-invitations",
        "customers-reflections",
        "customers-registration",
        "exact.sync_due",
        "exact-keepalive",
    } <= names
    assert not any(name.startswith("exact-sync:") for name in names)  # none per tenant
    assert Schedule.objects.count() == len(names)  # no duplicates
    sweep = Schedule.objects.get(name="exact.sync_due")
    assert (sweep.func, sweep.args, sweep.schedule_type, sweep.minutes, sweep.repeats) == (
        "exact.tasks.exact_sync_due_task",
        None,
        Schedule.MINUTES,
        1,
        -1,
    )
    keepalive = Schedule.objects.get(name="exact-keepalive")
    assert (keepalive.func, keepalive.schedule_type) == (
        "exact.tasks.exact_keepalive_task",
        Schedule.DAILY,
    )


def test_an_upgraded_installation_loses_its_per_tenant_sync_rows(tenant_a, tenant_b):
    """Before the sweep each tenant had `exact-sync:<id>`; left in place they would sync the
    tenant a second time next to the sweep."""
    for tenant in (tenant_a, tenant_b):
        Schedule.objects.create(
            name=f"exact-sync:{tenant.pk}",
            func="exact.tasks.exact_sync_task",
            args=f"({tenant.pk},)",
            schedule_type=Schedule.MINUTES,
            minutes=15,
            repeats=-1,
        )
    Schedule.objects.create(name="exact-synchronise-other", func="x.y")  # not ours: kept
    out = StringIO()
    call_command("schedules", stdout=out)
    names = set(Schedule.objects.values_list("name", flat=True))
    assert not any(name.startswith("exact-sync:") for name in names)
    assert {"exact.sync_due", "exact-keepalive", "exact-synchronise-other"} <= names
    assert "exact-sync:" not in out.getvalue() and "exact.sync_due" in out.getvalue()
