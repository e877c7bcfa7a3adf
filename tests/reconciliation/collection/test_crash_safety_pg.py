"""PostgreSQL acceptance (issue 6): a live run of 300 invoices killed with SIGKILL at random
points, ten times, then run to completion, leaves exactly one payment per invoice at
GoCardless, each for the right amount, and every attempt knows its payment.

Each repetition starts ``manage.py collection run`` as a real process against this test's
database (committed rows: ``transaction=True``) and the simulator running in this process,
then kills it:

- *after a random delay* (seeded RNG), spread from "still starting Django" over "creating
  payments" to "already finished" (then the kill finds nothing to kill);
- or *in flight*: from inside the simulator, right after it created the N-th payment of that
  process and before the answer leaves (the process never learns the payment's id: the worst
  moment, which a timer hits only by luck).

The simulator adds latency to every call so that a run lasts a few seconds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection as db_connection

from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
INVOICES = 300
REPETITIONS = 10
SEED = 20260306
LATENCY_MS = 15
# How each repetition is killed: "starting" -- a random delay after the process starts
# (Django start-up, lock, resuming, selection: before any new payment); "running" -- a random
# delay after its live run row appears (while payments are created; >= 15 ms each: at most
# ~40 a kill, so the final run still has work);
# "in_flight" -- by the simulator, right after the process's N-th payment was created.
PLAN = (
    "starting",
    "running",
    "in_flight",
    "running",
    "starting",
    "in_flight",
    "running",
    "running",
    "in_flight",
    "running",
)
STARTING_SPAN = 1.2
RUNNING_SPAN = 0.8
FINAL_REFUSED_RETRIES = 20


def _database_url() -> str:
    s = db_connection.settings_dict
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = s["HOST"] or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{s['NAME']}"


def _start_run(slug: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "LOG_LEVEL": "ERROR",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "collection", "run", "--tenant", slug, "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class InFlightKiller:
    """Wraps the simulator's API: after the N-th payment create of the watched process has
    been processed, SIGKILL that process before the answer is sent."""

    def __init__(self, sim) -> None:
        self._inner = sim._api
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._after = 0
        self._seen = 0
        self.kills = 0
        sim._api = self

    def arm(self, process: subprocess.Popen | None, after: int = 0) -> None:
        with self._lock:
            self._process, self._after, self._seen = process, after, 0

    def __call__(self, environ, start_response):
        result = self._inner(environ, start_response)
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == "/payments":
            with self._lock:
                self._seen += 1
                if self._process is not None and self._seen == self._after:
                    os.kill(self._process.pid, signal.SIGKILL)
                    self.kills += 1
        return result


def _wait_for_live_run(tenant, *, after_pk: int, process, timeout: float = 30) -> None:
    """Until the process has created its live run (or ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if CollectionRun.objects.filter(tenant=tenant, kind=RunKind.LIVE, pk__gt=after_pk).exists():
            return
        time.sleep(0.01)


def _snapshot(world) -> dict:
    attempts = CollectionAttempt.objects.filter(tenant=world.tenant)
    return {
        "gc_payments": len(world.sim_payments()),
        "attempts": attempts.count(),
        "pending": attempts.filter(state=AttemptState.PENDING).count(),
    }


def test_run_killed_ten_times_then_rerun_charges_every_invoice_exactly_once(
    collection_world_factory,
):
    world = collection_world_factory(customers=INVOICES)
    slug = world.tenant.slug
    world.sim.inject("latency", ms=LATENCY_MS)
    killer = InFlightKiller(world.sim)
    rng = random.Random(SEED)
    assert len(PLAN) == REPETITIONS
    log = []
    started = time.monotonic()

    for rep in range(REPETITIONS):
        before = _snapshot(world)
        last_run = CollectionRun.objects.filter(tenant=world.tenant).order_by("-pk").first()
        process = _start_run(slug)
        mode = PLAN[rep]
        if mode == "in_flight":
            after = rng.randint(1, 15)
            how = f"in flight, create #{after}"
            killer.arm(process, after)
            try:
                process.wait(timeout=60)
            finally:
                killer.arm(None)
        else:
            if mode == "starting":
                delay = rng.uniform(0, STARTING_SPAN)
                how = f"{delay:.2f} s after start"
            else:
                _wait_for_live_run(
                    world.tenant, after_pk=last_run.pk if last_run else 0, process=process
                )
                delay = rng.uniform(0, RUNNING_SPAN)
                how = f"{delay:.2f} s into the run"
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        _stdout, stderr = process.communicate()
        after_kill = _snapshot(world)
        log.append((rep, how, process.returncode, before, after_kill))
        # Nothing but a kill, a refusal (the dead process's lock not yet released) or
        # success may end a run.
        assert process.returncode in (-signal.SIGKILL, 0, 3), (process.returncode, stderr)

    # Run to completion (a run still refused because the server has not yet noticed a
    # killed client's connection is retried).
    for _ in range(FINAL_REFUSED_RETRIES):
        final = _start_run(slug)
        _stdout, stderr = final.communicate(timeout=120)
        if final.returncode != 3:
            break
        time.sleep(0.5)
    assert final.returncode == 0, stderr
    elapsed = time.monotonic() - started

    print(f"\n{INVOICES} invoices, {REPETITIONS} kills in {elapsed:.1f} s:")
    for rep, how, code, before, after_kill in log:
        print(
            f"  rep {rep}: {how:<28} exit {code:>3}  GC payments {before['gc_payments']:>3}"
            f" -> {after_kill['gc_payments']:>3}, pending attempts {after_kill['pending']}"
        )
    counts = world.sim.call_counts()
    print(f"  simulator calls: {counts}")

    world.assert_one_payment_per_invoice()
    attempts = CollectionAttempt.objects.filter(tenant=world.tenant)
    assert attempts.count() == INVOICES
    assert set(attempts.values_list("state", flat=True)) == {AttemptState.SUBMITTED}
    assert not attempts.exclude(attempt_number=1).exists()
    assert (
        CollectionRun.objects.filter(
            tenant=world.tenant, kind=RunKind.LIVE, state=RunState.RUNNING
        ).count()
        == 0
    )

    # The kills really interrupted runs at the moments that matter.
    killed = [entry for entry in log if entry[2] == -signal.SIGKILL]
    assert len(killed) >= REPETITIONS // 2, log
    assert killer.kills == PLAN.count("in_flight"), log
    # In flight: the payment exists at GoCardless, the attempt is still pending (the
    # process died before reading the answer) -- the rerun adopted it under the same key.
    assert any(
        entry[4]["pending"] > 0 and entry[4]["gc_payments"] > entry[3]["gc_payments"]
        for entry in killed
    ), log
    assert counts["POST /payments"].get("409", 0) >= 1
    # During creation: some payments made, others not yet.
    assert any(0 < entry[4]["gc_payments"] < INVOICES for entry in killed), log
    # The final run still had work left (the kills did not let a run finish everything).
    assert log[-1][4]["gc_payments"] < INVOICES, log
