"""`manage.py schedules` registers every app's periodic jobs once, however often it runs."""

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
        "exact-keepalive",
        f"exact-sync:{tenant_a.pk}",
    } <= names
    assert f"exact-sync:{tenant_b.pk}" not in names
    assert Schedule.objects.count() == len(names)  # no duplicates
    sync = Schedule.objects.get(name=f"exact-sync:{tenant_a.pk}")
    assert (sync.func, sync.args, sync.repeats) == (
        "exact.tasks.exact_sync_task",
        f"({tenant_a.pk},)",
        -1,
    )


def test_disconnecting_removes_the_tenants_sync(tenant_a):
    connection = ExactConnectionFactory(tenant=tenant_a, status="connected")
    call_command("schedules", stdout=StringIO())
    connection.status = "disconnected"
    connection.save()
    out = StringIO()
    call_command("schedules", stdout=out)
    assert f"exact-sync:{tenant_a.pk}" not in out.getvalue()
    assert "gocardless.events_sweep" in out.getvalue()
