"""PostgreSQL acceptance (issue 6): two clusters starting the same tenant's run at the same
moment produce no duplicate payment.

- two threads (each with its own database connection, as two django-q2 workers on two
  machines have) call ``run_live`` at once behind a barrier;
- two ``manage.py collection run`` processes started together;
- and the second line of defence: with the live-run lock taken away, two simultaneous runs
  still create one payment per invoice (unique attempt keys + the same Idempotency-Key).

In each case one run does the work and the other is refused (the tenant's run is active) or,
arriving after it, finds nothing left to collect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection as db_connection

from reconciliation.collection import live, runs
from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from tenants.models import Tenant
from tests.concurrency import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
INVOICES = 60
LATENCY_MS = 10


def _simultaneous_runs(tenant_pk: int, count: int = 2) -> list[CollectionRun]:
    return at_once(
        *[lambda tenant: runs.run_live(tenant=tenant, trigger=RunTrigger.SCHEDULE)] * count,
        prepare=lambda: Tenant.objects.get(pk=tenant_pk),
        timeout=120,
    )


def _one_worked_other_refused_or_idle(results: list[CollectionRun]) -> None:
    worked = [r for r in results if r.state == RunState.COMPLETED and r.submitted > 0]
    others = [r for r in results if r not in worked]
    assert len(worked) == 1, [(r.state, r.submitted) for r in results]
    assert worked[0].submitted == INVOICES and worked[0].errors == 0
    for run in others:
        assert run.state == RunState.REFUSED or (
            run.state == RunState.COMPLETED and run.to_collect == 0 and run.submitted == 0
        ), (run.state, run.to_collect, run.submitted)


def test_two_workers_starting_the_same_run_at_once_create_no_duplicate(
    collection_world_factory,
):
    world = collection_world_factory(customers=INVOICES)
    world.sim.inject("latency", ms=LATENCY_MS)

    results = _simultaneous_runs(world.tenant.pk)

    _one_worked_other_refused_or_idle(results)
    # Started together behind a barrier while the first takes ~1 s: refused, not idle.
    assert sorted(r.state for r in results) == [RunState.COMPLETED, RunState.REFUSED]
    world.assert_one_payment_per_invoice()
    assert world.sim.call_counts()["POST /payments"] == {"201": INVOICES}
    assert not CollectionRun.objects.filter(state=RunState.RUNNING).exists()


def test_two_processes_starting_the_same_run_at_once_create_no_duplicate(
    collection_world_factory,
):
    world = collection_world_factory(customers=INVOICES)
    world.sim.inject("latency", ms=LATENCY_MS)
    s = db_connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    if s.get("PASSWORD"):
        url = url.replace(f"{s['USER']}@", f"{s['USER']}:{s['PASSWORD']}@")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = [sys.executable, "manage.py", "collection", "run", "--tenant", world.tenant.slug]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    codes = sorted(p.returncode for p in processes)

    # 0 and 3 (refused: another live run is active), or 0 and 0 when one started after the
    # other had finished and found nothing to collect.
    assert codes in ([0, 3], [0, 0]), outputs
    live = list(CollectionRun.objects.filter(tenant=world.tenant, kind=RunKind.LIVE))
    _one_worked_other_refused_or_idle(live)
    world.assert_one_payment_per_invoice()


def test_without_the_run_lock_unique_attempt_keys_still_prevent_duplicates(
    collection_world_factory, monkeypatch
):
    """The lock keeps runs from doing the same work twice; it is not what prevents a double
    charge. Taken away here, two simultaneous runs race for every invoice."""
    world = collection_world_factory(customers=INVOICES)
    world.sim.inject("latency", ms=LATENCY_MS)

    def acquire_without_lock(*, run):
        # Saved outside the one-live-run constraint (it covers "queued" and "running" only).
        run.state = RunState.FAILED
        run.save()
        run.state = RunState.RUNNING
        return True

    monkeypatch.setattr(live, "live_run_acquire", acquire_without_lock)
    monkeypatch.setattr(live, "live_run_release", lambda *, run: None)

    results = _simultaneous_runs(world.tenant.pk)

    assert all(r.state == RunState.COMPLETED for r in results)
    assert sum(r.submitted for r in results) >= INVOICES
    world.assert_one_payment_per_invoice()


def test_a_queued_run_delivered_to_two_workers_at_once_is_carried_out_once(
    collection_world_factory,
):
    """Issue 15: Collect now stores the live run queued; the broker may hand its task to two
    workers (a redelivery after the visibility timeout, the sweep handing out a slow one)."""
    world = collection_world_factory(customers=INVOICES)
    world.sim.inject("latency", ms=LATENCY_MS)
    queued = runs.run_start_queued(tenant=world.tenant, trigger=RunTrigger.USER)
    assert queued.state == RunState.QUEUED

    said = at_once(*[lambda: runs.queued_run_execute(queued.pk)] * 2, timeout=120)
    assert sorted(s.endswith("nothing done") for s in said) == [False, True], said
    queued.refresh_from_db()
    assert queued.state == RunState.COMPLETED and queued.submitted == INVOICES
    assert CollectionRun.objects.filter(kind=RunKind.LIVE).count() == 1
    world.assert_one_payment_per_invoice()
