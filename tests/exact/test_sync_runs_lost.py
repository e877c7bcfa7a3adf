"""A sync run whose worker was killed never records its end; the sync sweep closes it after
two hours with the reason in words, so the sync runs page does not show it "Running" forever
(found by the chaos month, tests/chaos). A run that is merely long is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exact.admin_mirrors import run_state
from exact.models import SyncRun
from exact.schedules import sync_sweep
from exact.sync_runs import LOST_AFTER

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def _run(tenant, *, started_ago: timedelta, finished: bool = False) -> SyncRun:
    started = NOW - started_ago
    return SyncRun.objects.create(tenant=tenant, entity="accounts", mode="full",
                                  trigger="schedule", started_at=started,
                                  finished_at=started + timedelta(seconds=5) if finished else None)


def test_the_sweep_closes_runs_whose_worker_was_lost(tenant_a):
    lost = _run(tenant_a, started_ago=LOST_AFTER + timedelta(minutes=1))
    long = _run(tenant_a, started_ago=LOST_AFTER - timedelta(minutes=1))
    done = _run(tenant_a, started_ago=timedelta(days=1), finished=True)
    assert run_state(lost) == "Running"

    sync_sweep(now=NOW)

    lost.refresh_from_db()
    long.refresh_from_db()
    done.refresh_from_db()
    assert lost.finished_at == NOW and "the worker running it was lost" in lost.error
    assert run_state(lost) == "Failed"
    assert long.finished_at is None and run_state(long) == "Running"
    assert done.error == "" and done.finished_at == done.started_at + timedelta(seconds=5)
