"""An inactive tenant's Exact copy is not synced: the installation-wide sweep
(`exact.sync_due`, registered by `manage.py schedules`) does not pick it, `tenants deactivate`
needs no schedule change to stop it, and after `tenants activate` the next sweep syncs it
again, once."""

from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from exact.tasks import exact_sync_due_task
from tests.factories import ExactConnectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *args: calls.append(args) or "task")
    return calls


def synced(queued) -> list[int]:
    """Tenant ids whose sync the sweeps queued so far."""
    return [args[1] for args in queued if args[0] == "exact.tasks.exact_sync_task"]


def test_the_sweep_leaves_out_an_inactive_tenant(tenant_a, tenant_b, queued):
    ExactConnectionFactory(tenant=tenant_a, status="connected")
    ExactConnectionFactory(tenant=tenant_b, status="connected")
    tenant_a.is_active = False
    tenant_a.save()
    call_command("schedules", stdout=StringIO())
    assert Schedule.objects.filter(name="exact.sync_due").exists()
    assert exact_sync_due_task() == [tenant_b.pk]
    assert synced(queued) == [tenant_b.pk]


def test_deactivate_stops_the_sync_and_activate_brings_it_back_once(
    tenant_a, queued, django_capture_on_commit_callbacks
):
    ExactConnectionFactory(tenant=tenant_a, status="connected")
    call_command("schedules", stdout=StringIO())
    schedules = set(Schedule.objects.values_list("name", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "deactivate", tenant_a.slug, stdout=StringIO())
    assert exact_sync_due_task() == [] and synced(queued) == []
    call_command("schedules", stdout=StringIO())  # the next deploy does not bring it back
    assert exact_sync_due_task() == [] and synced(queued) == []

    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "activate", tenant_a.slug, stdout=StringIO())
    assert exact_sync_due_task() == [tenant_a.pk]
    assert exact_sync_due_task() == []  # queued already: not twice
    assert synced(queued) == [tenant_a.pk]
    # (de)activation changed no schedule row
    assert set(Schedule.objects.values_list("name", flat=True)) == schedules


def test_activating_a_tenant_with_a_disconnected_exact_syncs_nothing(
    tenant_a, queued, django_capture_on_commit_callbacks
):
    ExactConnectionFactory(tenant=tenant_a, status="disconnected")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "deactivate", tenant_a.slug, stdout=StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenants", "activate", tenant_a.slug, stdout=StringIO())
    assert exact_sync_due_task() == [] and synced(queued) == []
