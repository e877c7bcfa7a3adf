"""An inactive tenant has no Exact sync schedule: `manage.py schedules` does not register one,
`tenants deactivate` removes it and `tenants activate` brings it back."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from tests.factories import ExactConnectionFactory

pytestmark = pytest.mark.django_db


def names() -> set[str]:
    return set(Schedule.objects.values_list("name", flat=True))


def test_schedules_leave_out_an_inactive_tenant(tenant_a, tenant_b):
    ExactConnectionFactory(tenant=tenant_a, status="connected")
    ExactConnectionFactory(tenant=tenant_b, status="connected")
    tenant_a.is_active = False
    tenant_a.save()
    call_command("schedules", stdout=StringIO())
    assert f"exact-sync:{tenant_a.pk}" not in names()
    assert {f"exact-sync:{tenant_b.pk}", "exact-keepalive"} <= names()


def test_deactivate_and_activate_move_the_sync_schedule(
    tenant_a, django_capture_on_commit_callbacks
):
    ExactConnectionFactory(tenant=tenant_a, status="connected")
    call_command("schedules", stdout=StringIO())
    assert f"exact-sync:{tenant_a.pk}" in names()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "deactivate", tenant_a.slug, stdout=StringIO())
    assert f"exact-sync:{tenant_a.pk}" not in names()
    call_command("schedules", stdout=StringIO())  # the next deploy does not bring it back
    assert f"exact-sync:{tenant_a.pk}" not in names()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "activate", tenant_a.slug, stdout=StringIO())
    sync = Schedule.objects.get(name=f"exact-sync:{tenant_a.pk}")
    assert (sync.func, sync.args) == ("exact.tasks.exact_sync_task", f"({tenant_a.pk},)")
    assert Schedule.objects.filter(name=f"exact-sync:{tenant_a.pk}").count() == 1


def test_activating_a_tenant_with_a_disconnected_exact_adds_no_schedule(
    tenant_a, django_capture_on_commit_callbacks
):
    ExactConnectionFactory(tenant=tenant_a, status="disconnected")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "deactivate", tenant_a.slug, stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "activate", tenant_a.slug, stdout=StringIO())
    assert f"exact-sync:{tenant_a.pk}" not in names()
