"""The sync sweep (`exact.sync_due`, every minute): which tenants it queues a sync for, and that
each due tenant is synced once. Time passes through the sweep's ``now``."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from core.audit import Actor
from exact.models import ConnectionStatus, ExactAccount, ExactConnection, SyncMode, SyncRun
from exact.schedules import connections_due_for_sync, sync_sweep
from exact.tasks import exact_sync_due_task, exact_sync_task
from tenants.services import tenant_set_active
from tests.factories import ExactConnectionFactory, TenantFactory
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db

SYNC = "exact.tasks.exact_sync_task"


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *args: calls.append(args) or "task")
    return calls


def run_queued(queued) -> list[str]:
    """What the django-q2 cluster would do with the queued syncs."""
    results = [exact_sync_task(*args[1:]) for args in queued if args[0] == SYNC]
    queued.clear()
    return results


def started(tenant, minutes_ago: float, *, mode=SyncMode.INCREMENTAL) -> SyncRun:
    return SyncRun.objects.create(
        tenant=tenant,
        entity="accounts",
        mode=mode,
        trigger="schedule",
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        finished_at=timezone.now(),
    )


def test_a_due_tenant_is_synced_once(sim, connection, queued):
    sim.seed_account(DIVISION, name="Swept Customer")
    assert exact_sync_due_task() == [connection.tenant_id]
    assert queued == [(SYNC, connection.tenant_id)]
    assert run_queued(queued)[0].startswith("accounts: +1")
    assert ExactAccount.objects.get().name == "Swept Customer"
    assert SyncRun.objects.count() == 3

    assert exact_sync_due_task() == []  # it just ran
    later = timezone.now() + timedelta(minutes=16)
    assert sync_sweep(now=later) == [connection.tenant_id]  # the next interval
    assert sync_sweep(now=later) == []  # once per interval
    assert run_queued(queued)[0].startswith("accounts: +0 ~0 -0")


def test_due_only_after_the_interval(connection, queued, settings):
    tenant = connection.tenant
    started(tenant, 14.5)
    assert sync_sweep() == []
    SyncRun.objects.all().delete()
    started(tenant, 15.5)
    assert sync_sweep() == [tenant.pk]

    settings.EXACT_SYNC_EVERY_MINUTES = 30  # read by every sweep: no re-registration
    ExactConnection.objects.update(sync_queued_at=None)
    assert sync_sweep() == []


def test_a_webhooks_targeted_resync_is_not_a_sync_of_the_copy(connection, queued):
    started(connection.tenant, 16)
    started(connection.tenant, 1, mode=SyncMode.TARGETED)  # one account after a webhook
    assert sync_sweep() == [connection.tenant_id]


def test_a_queued_sync_that_has_not_started_is_not_queued_again(connection, queued):
    now = timezone.now()
    assert sync_sweep(now=now) == [connection.tenant_id]
    # the queue is busy: no SyncRun yet; the next sweeps leave the tenant alone
    for minute in range(1, 16):
        assert sync_sweep(now=now + timedelta(minutes=minute)) == []
    # lost from the queue altogether: queued again after the interval
    assert sync_sweep(now=now + timedelta(minutes=15, seconds=30)) == [connection.tenant_id]
    assert queued == [(SYNC, connection.tenant_id)] * 2


@pytest.mark.parametrize(
    "state",
    [
        {"status": ConnectionStatus.DISCONNECTED},
        {"status": ConnectionStatus.NEEDS_REAUTH},
        {"division": None},
        {"paused_until": "in an hour"},
    ],
    ids=["disconnected", "needs-reauth", "no-division", "paused"],
)
def test_unusable_connections_are_not_synced(tenant_a, queued, state):
    if state.get("paused_until"):
        state = {"paused_until": timezone.now() + timedelta(hours=1)}
    ExactConnectionFactory(tenant=tenant_a, **state)
    assert connections_due_for_sync() == [] and sync_sweep() == [] and queued == []


def test_inactive_tenant_is_not_synced_and_is_again_after_activation(sim, connection, queued):
    actor = Actor.system("test")
    sim.seed_account(DIVISION, name="Paused Company Customer")
    tenant_set_active(tenant=connection.tenant, active=False, actor=actor)
    assert exact_sync_due_task() == [] and queued == []
    assert SyncRun.objects.count() == 0

    tenant_set_active(tenant=connection.tenant, active=True, actor=actor)
    assert exact_sync_due_task() == [connection.tenant_id]
    assert run_queued(queued)[0].startswith("accounts: +1")
    assert exact_sync_due_task() == []


def test_longest_waiting_first_and_one_failure_does_not_stop_the_others(
    tenant_a, tenant_b, monkeypatch, caplog
):
    never = ExactConnectionFactory(tenant=tenant_b)
    waited = ExactConnectionFactory(tenant=tenant_a)
    started(tenant_a, 60)
    third = ExactConnectionFactory(tenant=TenantFactory())
    started(third.tenant, 20)
    assert [c.pk for c in connections_due_for_sync()] == [never.pk, waited.pk, third.pk]

    queued = []

    def enqueue(func, tenant_id):
        if tenant_id == tenant_b.pk:
            raise ConnectionError("broker down")
        queued.append(tenant_id)
        return "task"

    monkeypatch.setattr("exact.queue.enqueue", enqueue)
    with caplog.at_level(logging.ERROR, logger="exact.schedules"):
        assert sync_sweep() == [tenant_a.pk, third.tenant_id]
    assert "broker down" in caplog.text
    # the failed claim was released: the next sweep tries that tenant again
    assert ExactConnection.objects.get(pk=never.pk).sync_queued_at is None
    monkeypatch.setattr("exact.queue.enqueue", lambda func, tenant_id: queued.append(tenant_id))
    assert sync_sweep() == [tenant_b.pk]
