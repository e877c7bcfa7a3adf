"""One scenario of bench/many_tenants.py, in a process of its own (fresh database, fresh
simulators, fresh Redis db): seed, start the task clusters, run the 07:00 burst phase by
phase through the scheduled path, measure, clean up. Prints one JSON line (not a bench
itself: `make bench` skips files starting with _).

Phases (each starts when the one before has finished for every small tenant):

1. sync: ``exact.schedules.sync_sweep`` (what ``exact.sync_due`` runs every minute) claims
   every tenant and queues one ``exact_sync_task`` each through the Redis broker;
2. collection: ``scheduled_runs.scheduled_runs_start`` (what ``collection.runs_due`` runs)
   stores one queued run per tenant slot and queues its task; the workers create the payments;
3. bookings: for every payment made, the receipt ``Booking`` a confirmed payment's receiver
   makes, queued with ``booking_post_enqueue`` as the receiver does (its company's turn,
   queued once for the company's burst); the workers post them.

Between 1 and 2 the accounts the sync mirrored are linked to GoCardless customers (what
matching leaves behind); that is set-up, not measured.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import drop_database, ensure_database, peak_mb, tree_peak_mb  # noqa: E402

LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "50"))
REDIS_DB = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
PHASE_TIMEOUT = float(os.environ.get("BENCH_PHASE_TIMEOUT", "1800"))
# Receipts of the big tenant (fairness run) queued ahead of the small tenants' receipts.
BIG_BOOKINGS = int(os.environ.get("BENCH_BIG_BOOKINGS", "300"))
# BENCH_PIN=1: cluster i runs on CPU i (mod the CPUs there are); the simulators, PostgreSQL
# and the bench stay where the scheduler puts them.
PIN = os.environ.get("BENCH_PIN", "") == "1"


class _Cpu:
    """CPU seconds used between two looks: each cluster's process tree, each simulator's,
    PostgreSQL's whole server (its postmaster's tree: other sessions' queries included when
    the machine is shared) and the machine's cores (busy share), from /proc."""

    def __init__(self, clusters, simulators) -> None:
        from django.db import connection

        from bench._ingest import postgres_root

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.postgres = postgres_root(cursor.fetchone()[0])
        self.trees = {"clusters": [p.pid for p in clusters],
                      "simulators": [p.pid for p in simulators],
                      "postgres": [self.postgres] if self.postgres else []}
        self.last = self._read()

    def _read(self) -> dict:
        from bench._ingest import cpu_busy_ticks, tree_cpu_seconds

        ticks = cpu_busy_ticks()
        return {**{k: sum(tree_cpu_seconds(pid) for pid in pids)
                   for k, pids in self.trees.items()},
                "busy": sum(b for b, _ in ticks.values()),
                "total": sum(t for _, t in ticks.values()),
                "self": time.process_time()}

    def take(self) -> dict:
        now = self._read()
        out = {k: now[k] - self.last[k] for k in ("clusters", "simulators", "postgres", "self")}
        out["machine_busy"] = ((now["busy"] - self.last["busy"])
                               / max(now["total"] - self.last["total"], 1))
        self.last = now
        return out


def _environ(name: str, workers: int) -> str:
    url = f"postgres://postgres@127.0.0.1:5432/mlc_bench_many_{name}"
    os.environ["DATABASE_URL"] = url
    from bench._support import exact_bench_environ

    exact_bench_environ(log_level="ERROR")
    os.environ.update({"REDIS_URL": REDIS_DB, "Q_WORKERS": str(workers), "Q_SYNC": "false",
                       "Q_CLUSTER_NAME": "mlc-bench-many", "DB_CONN_MAX_AGE": "60"})
    return url


def _redis_flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_DB).flushdb()  # our own db number only


class _ExactCounts:
    """Exact calls per division since the last look (the simulator's budgets), and the
    statuses of all calls (its call counter, which names routes, not divisions)."""

    def __init__(self, exact, budgets) -> None:
        self.exact, self.budgets, self.seen = exact, budgets, budgets()
        exact("call_counts", reset=True)

    def take(self) -> tuple[dict[int, int], Counter]:
        now = self.budgets()
        per_division = {d: n - self.seen.get(d, 0) for d, n in now.items()
                        if n - self.seen.get(d, 0)}
        self.seen = now
        statuses: Counter = Counter()
        for route, counts in self.exact("call_counts", reset=True).items():
            if route.split(" ", 1)[1].startswith("/api/v1/"):
                statuses.update(counts)
        return per_division, statuses


def _gc_counts(gc_url: str) -> Counter:
    import requests

    total: Counter = Counter()
    for statuses in requests.get(f"{gc_url}/_control/call_counts", timeout=60).json().values():
        total.update({str(k): v for k, v in statuses.items()})
        total["total"] += sum(statuses.values())
    return total


def _mean(values) -> float:
    return sum(values) / len(values) if values else float("nan")


def _percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def run(*, name: str, tenants: int, invoices: int, clusters: int, workers: int,
        big_invoices: int) -> dict:
    url = _environ(name, workers)
    drop_database(url)
    ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    _redis_flush()
    from bench import _many_tenants_world as world

    big = 1 if big_invoices else 0
    exact_url, gc_url, gc_per_minute, sim_processes, sims_stop, budgets = (
        world.simulators_start(tokens=tenants + big))
    clusters_running = []
    try:
        return _measure(world=world, exact_url=exact_url, gc_url=gc_url,
                        gc_per_minute=gc_per_minute, sim_processes=sim_processes, budgets=budgets,
                        clusters_running=clusters_running, tenants=tenants, invoices=invoices,
                        clusters=clusters, workers=workers, big_invoices=big_invoices)
    finally:
        for process in clusters_running:
            world.cluster_stop(process)
        sims_stop()
        _redis_flush()
        from django.db import connections

        connections.close_all()
        drop_database(url)


def _measure(*, world, exact_url, gc_url, gc_per_minute, sim_processes, budgets,
             clusters_running,
             tenants, invoices, clusters, workers, big_invoices) -> dict:
    import requests
    from django.utils import timezone

    from exact.models import ExactConnection, ExactReceivable, SyncRun
    from exact.schedules import sync_sweep
    from reconciliation.collection.models import CollectionAttempt, CollectionRun, RunState
    from reconciliation.collection.scheduled_runs import scheduled_runs_start

    exact = world.ExactControl(exact_url)
    seed_started = time.monotonic()
    hour = timezone.now().hour
    # The big tenant (fairness) comes first: the oldest, picked first by every sweep.
    sizes = ([(big_invoices, max(big_invoices // 10, 1), int(big_invoices * 0.24))]
             if big_invoices else [])
    sizes += [(invoices, invoices, invoices)] * tenants
    tenant_rows = []
    for n, (count, accounts, opened) in enumerate(sizes):
        tenant, _ = world.exact_tenant_connect(exact=exact, n=n, accounts=accounts,
                                               invoices=count, open_invoices=opened,
                                               slug=f"bench-many-{n:05d}", hour=hour)
        world.gocardless_connect(tenant=tenant, n=n, gc_url=gc_url)
        world.booking_settings_make(tenant=tenant)
        tenant_rows.append((tenant, accounts))
    big_id = tenant_rows[0][0].pk if big_invoices else None
    small_ids = [t.pk for t, _ in tenant_rows if t.pk != big_id]
    mandates = world.gocardless_mandates_seed(gc_url=gc_url,
                                              count=sum(a for _, a in tenant_rows))
    exact("inject", fault="latency", ms=LATENCY_MS)
    requests.post(f"{gc_url}/_control/faults", json={"kind": "latency", "ms": LATENCY_MS},
                  timeout=30).raise_for_status()
    seeded = time.monotonic() - seed_started

    # The periodic bookings sweep, as production registers it (manage.py schedules): it
    # hands a turn to each company whose bookings were put off to its division's reset.
    from reconciliation.bookings.schedules import booking_schedules_ensure

    booking_schedules_ensure()
    env = {"Q_WORKERS": str(workers)}
    cpus = sorted(os.sched_getaffinity(0))
    for index in range(clusters):
        pinned = frozenset({cpus[index % len(cpus)]}) if PIN else None
        clusters_running.append(world.cluster_start(env=env, cpus=pinned))
    time.sleep(8)  # the clusters spawn their workers; not part of the burst
    cpu = _Cpu(clusters_running, sim_processes)
    exact_counts = _ExactCounts(exact, budgets)
    gc_before = _gc_counts(gc_url)
    load = [os.getloadavg()[0]]
    phases: dict[str, dict] = {}

    # --- 1. sync ---------------------------------------------------------------------------
    began = timezone.now()
    queued = sync_sweep(now=began)

    def sync_done_at() -> dict[int, float]:
        finished = defaultdict(list)
        for tenant_id, at in SyncRun.objects.filter(
            trigger="schedule", finished_at__isnull=False
        ).values_list("tenant_id", "finished_at"):
            finished[tenant_id].append(at)
        return {t: (max(ats) - began).total_seconds() for t, ats in finished.items()
                if len(ats) >= 3}

    everyone = set(small_ids) | ({big_id} if big_id else set())
    ok = world.wait_until(lambda: everyone <= set(sync_done_at()), timeout=PHASE_TIMEOUT,
                          alive=clusters_running)
    done = sync_done_at()
    phases["sync"] = {"wall": max(done.values(), default=0.0), "ok": ok, "queued": len(queued),
                      "per_tenant": {t: done.get(t) for t in everyone},
                      "exact": exact_counts.take(), "gc": Counter(), "cpu": cpu.take()}
    load.append(os.getloadavg()[0])
    sync_errors = list(SyncRun.objects.exclude(error="").values_list("tenant_id", "error")[:5])
    receivables = dict(Counter(ExactReceivable.objects.values_list("tenant_id", flat=True)))

    # --- link (set-up, not measured) -------------------------------------------------------
    offset = 0
    for tenant, accounts in tenant_rows:
        world.customers_link(tenant=tenant, mandates=mandates[offset:offset + accounts])
        offset += accounts
    cpu.take()  # set-up: not counted in the next phase

    # --- 2. collection ---------------------------------------------------------------------
    gc_mid = _gc_counts(gc_url)
    began = timezone.now()
    said = scheduled_runs_start(now=began)
    finished_states = (RunState.COMPLETED, RunState.FAILED, RunState.REFUSED)

    def runs_done_at(ids) -> dict[int, float]:
        return {t: (at - began).total_seconds() for t, at in CollectionRun.objects.filter(
            tenant_id__in=ids, trigger="schedule", state__in=finished_states
        ).values_list("tenant_id", "finished_at")}

    ok = world.wait_until(lambda: set(small_ids) <= set(runs_done_at(small_ids)),
                          timeout=PHASE_TIMEOUT, alive=clusters_running)
    done = runs_done_at(small_ids)
    gc_after = _gc_counts(gc_url)
    phases["collection"] = {
        "wall": max(done.values(), default=0.0), "ok": ok, "said": said[:3],
        "per_tenant": {t: done.get(t) for t in small_ids},
        "exact": exact_counts.take(), "gc": gc_after - gc_mid, "cpu": cpu.take(),
        "states": dict(Counter(CollectionRun.objects.filter(tenant_id__in=small_ids)
                               .values_list("state", flat=True))),
        "errors": list(CollectionRun.objects.exclude(error="").values_list("error", flat=True)
                       [:3]),
    }
    load.append(os.getloadavg()[0])

    # --- 3. bookings -----------------------------------------------------------------------
    from core.money import to_minor_units
    from reconciliation.bookings.models import Booking, BookingState, Rule
    from reconciliation.bookings.services import booking_post_enqueue

    attempts = list(CollectionAttempt.objects.filter(tenant_id__in=small_ids)
                    .exclude(payment_gocardless_id="").order_by("tenant_id", "id"))
    payments_per_tenant = Counter(a.tenant_id for a in attempts)
    if big_id:
        # The big tenant's payments made so far are confirmed first and queued first: the
        # worst case for the small ones (its division posts 60 a minute).
        attempts = list(CollectionAttempt.objects.filter(tenant_id=big_id)
                        .exclude(payment_gocardless_id="").order_by("id")[:BIG_BOOKINGS]
                        ) + attempts
    today = timezone.now().date()
    bookings = []
    for attempt in attempts:
        minor = to_minor_units(attempt.amount, attempt.currency)
        bookings.append(Booking(
            tenant_id=attempt.tenant_id, key=f"receipt:{attempt.payment_gocardless_id}:1",
            rule=Rule.RECEIPT, gocardless_id=attempt.payment_gocardless_id,
            reference=Booking.new_reference(),
            facts={"payment": attempt.payment_gocardless_id,
                   "invoice": attempt.invoice_number,
                   "account": str(attempt.account_exact_id), "amount": minor,
                   "attempt": attempt.key},
            currency=attempt.currency, amount_minor=minor, booking_date=today,
        ))
    # Made before the clock starts (in production the event processing makes them, spread
    # over the day's webhooks: bench/webhook_ingest.py measures that); queued as the
    # receiver queues each one, after its transaction commits.
    bookings = Booking.objects.bulk_create(bookings, batch_size=1000)
    cpu.take()  # set-up: not counted
    began = timezone.now()
    for booking in bookings:
        booking_post_enqueue(booking_pk=booking.pk, tenant_id=booking.tenant_id)

    def bookings_done_at() -> dict[int, float] | None:
        small = Booking.objects.filter(tenant_id__in=small_ids)
        if small.filter(state__in=(BookingState.PENDING, BookingState.SENT)).exists():
            return None
        last = defaultdict(float)
        for tenant_id, at in small.values_list("tenant_id", "updated_at"):
            last[tenant_id] = max(last[tenant_id], (at - began).total_seconds())
        return dict(last)

    ok = world.wait_until(lambda: bookings_done_at() is not None, timeout=PHASE_TIMEOUT,
                          alive=clusters_running)
    done = bookings_done_at() or {}
    phases["bookings"] = {
        "wall": max(done.values(), default=0.0), "ok": ok,
        "per_tenant": {t: done.get(t) for t in small_ids},
        "exact": exact_counts.take(), "gc": _gc_counts(gc_url) - gc_after, "cpu": cpu.take(),
        "states": dict(Counter(Booking.objects.filter(tenant_id__in=small_ids)
                               .values_list("state", flat=True))),
        "big_bookings": Booking.objects.filter(tenant_id=big_id).count() if big_id else 0,
        # from the claim to the stored answer: the HTTP call and the two transactions
        "post_seconds": _mean([(u - c).total_seconds() for c, u in Booking.objects.filter(
            tenant_id__in=small_ids, claimed_at__isnull=False
        ).values_list("claimed_at", "updated_at")]),
        "errors": list(Booking.objects.exclude(last_error="").values_list("last_error", flat=True)
                       [:3]),
    }
    load.append(os.getloadavg()[0])

    # --- what the simulators hold: duplicates ---------------------------------------------
    payments = requests.get(f"{gc_url}/_control/state/payments", timeout=600).json()["payments"]
    per_invoice = Counter(p["metadata"].get("mlc_attempt", "").split("/")[0] for p in payments)
    gc_duplicates = sum(1 for n in per_invoice.values() if n > 1)
    exact_duplicates, entries = 0, 0
    divisions = dict(ExactConnection.objects.filter(tenant_id__in=small_ids)
                     .values_list("tenant_id", "division"))
    for division in divisions.values():
        applied: Counter = Counter()
        for entry in exact("ledger", division=division):
            entries += 1
            for line in entry.get("Lines", entry.get("lines", [])):
                if line.get("AppliedInvoice"):
                    applied[line["AppliedInvoice"]] += 1
        exact_duplicates += sum(1 for n in applied.values() if n > 1)

    rss = {
        "clusters": [tree_peak_mb(p.pid) for p in clusters_running],
        "simulators": {name: max(tree_peak_mb(p.pid).values(), default=0.0)
                       for name, p in zip(("exact", "gocardless"), sim_processes, strict=True)},
        "bench": peak_mb(),
    }
    cluster_logs = [world.cluster_stop(p) for p in clusters_running]
    clusters_running.clear()
    for phase in phases.values():
        per_division, statuses = phase.pop("exact")
        phase["exact"] = {str(k): v for k, v in per_division.items()}
        phase["exact_statuses"] = dict(statuses)
        phase["gc"] = dict(phase["gc"])
        phase["per_tenant"] = {str(k): v for k, v in phase["per_tenant"].items()}
    return {
        "tenants": tenants, "invoices": invoices, "clusters": clusters, "workers": workers,
        "big_invoices": big_invoices, "big_id": big_id, "latency_ms": LATENCY_MS,
        "gc_per_minute": gc_per_minute, "seed_seconds": seeded, "load": load,
        "cpus": os.cpu_count(), "phases": phases, "sync_errors": sync_errors,
        "receivables": {str(k): v for k, v in receivables.items()},
        "payments_per_tenant": {str(k): v for k, v in payments_per_tenant.items()},
        "divisions": {str(k): v for k, v in divisions.items()},
        "gc_payments": len(payments), "gc_duplicates": gc_duplicates,
        "exact_entries": entries, "exact_duplicates": exact_duplicates,
        "gc_total": dict(_gc_counts(gc_url) - gc_before), "rss": rss, "pinned": PIN,
        "cluster_stderr": [log[-600:] for log in cluster_logs],
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(run(**spec), default=str))
