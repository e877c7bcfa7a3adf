"""Webhook ingest benchmark: gunicorn + PostgreSQL + a django-q2 cluster, loopback only.

Starts the GoCardless simulator (for the processor's re-fetches), creates/migrates the bench
database, makes a tenant with a connection to the simulator, starts ``gunicorn config.wsgi``
(3 workers) and ``manage.py qcluster``, then posts signed batches of 50 events from a few
client processes for a bounded time and prints:

- accepted events per second (2xx answers) and its ratio to the offered rate, p50/p99
  response time of the webhook POSTs;
- the processing lag: how long after the load stops the unprocessed-event count reaches 0;
- the GETs processing made against its lower bound (one per payment the events name);
- peak RSS of the web workers and of the task cluster's processes.

Targets (2-core machine): >= 500 events/s accepted, p99 < 100 ms, lag back to 0 within 10 s.
Bounded in time and requests; stops its processes by their own ids when done.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mlc_bench \
        .venv/bin/python bench/webhook_ingest.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import ensure_database, tree_peak_mb  # noqa: E402

DURATION = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENT_THREADS = int(os.environ.get("BENCH_CLIENTS", "4"))  # client processes
# Offered load in events/s (open loop: each thread sends on a fixed schedule, so the latency
# measured is the service's, not the queue a saturating closed loop builds). 0 = flat out.
OFFERED_RATE = float(os.environ.get("BENCH_RATE", "600"))
WORKER_NICE = int(os.environ.get("BENCH_WORKER_NICE", "10"))
# "idle": the task workers (and the simulator standing in for GoCardless's servers) run in
# Linux's SCHED_IDLE class, i.e. only on CPU time the web workers leave; "nice": niceness only.
WORKER_SCHED = os.environ.get("BENCH_WORKER_SCHED", "idle")
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "3"))
BATCH = 50
MAX_REQUESTS = 20_000
LAG_LIMIT = 120.0
PAYMENTS = 3000
# Each payment's lifecycle events travel together in a batch, as GoCardless batches what
# happened in the same moment (4 events a payment; 12.5 payments a batch).
ACTIONS = ("created", "submitted", "confirmed", "paid_out")
SECRET = "bench-webhook-secret"

ENV = {
    "DATABASE_URL": os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mlc_bench"
    ),
    "DEBUG": "false",
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghijkl",
    "SALT_KEY": "bench-salt",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "BEHIND_TLS_PROXY": "false",
    "LOG_LEVEL": "WARNING",
    # Processing waits on GoCardless (HTTP) most of the time: more workers than cores.
    "Q_WORKERS": os.environ.get("Q_WORKERS", "4"),
    "Q_SYNC": "false",
    "REDIS_URL": "",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}
os.environ.update(ENV)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def background_priority(nice: int) -> None:
    os.nice(nice)
    if WORKER_SCHED == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def start(cmd: list[str], *, nice: int = 0) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=(lambda: background_priority(nice)) if nice else None)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def run_simulator(ready, stop_event) -> None:
    """The GoCardless simulator in its own process (its own GIL: the load generator must not
    slow the API the processor re-fetches from, nor the other way round)."""
    import logging

    # GoCardless's servers are not on our machine in production; here the simulator shares
    # the two cores, so it yields to the web workers like the task workers do.
    background_priority(WORKER_NICE)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulator's access log
    from simulators.gocardless import Simulator

    sim = Simulator(access_tokens=("bench-token",), rate_limit_per_minute=1_000_000).start()
    mandates = sim.seed(bulk={"count": 20, "scheme": "sepa_core", "status": "active"})["mandates"]
    payments = sim.seed(payments=[{"mandate": mandates[n % 20], "amount": 1000 + n}
                                  for n in range(PAYMENTS)])["payments"]
    ready.put((sim.url, payments))
    stop_event.wait(LAG_LIMIT + DURATION + 300)
    sim.stop()


def bodies_for(run: str, payments: list[str], count: int) -> list[tuple[bytes, str]]:
    """Every request body and its signature, built before the clock starts."""
    out = []
    for request in range(count):
        events = [{
            "id": f"EV{run}{n:08d}", "created_at": "2026-03-06T09:00:00.000Z",
            "resource_type": "payments", "action": ACTIONS[n % len(ACTIONS)],
            "links": {"payment": payments[(n // len(ACTIONS)) % PAYMENTS]},
            "details": {"origin": "gocardless", "cause": f"payment_{ACTIONS[n % len(ACTIONS)]}"},
            "metadata": {},
        } for n in range(request * BATCH, (request + 1) * BATCH)]
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        out.append((body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()))
    return out


def client_loop(url, bodies, first_send, interval, stop_at, results) -> None:
    """One load client (a process of its own): open loop, on a fixed schedule."""
    import requests

    session = requests.Session()
    latencies, statuses = [], {}
    next_send = first_send
    for body, signature in bodies:
        if time.monotonic() >= stop_at:
            break
        if interval:
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_send += interval
        began = time.perf_counter()
        response = session.post(url, data=body, timeout=10, headers={
            "Content-Type": "application/json", "Webhook-Signature": signature})
        latencies.append(time.perf_counter() - began)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    results.put((latencies, statuses))


def main() -> int:
    import requests

    if not ENV["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        print("bench/webhook_ingest.py needs PostgreSQL (DATABASE_URL=postgres://...)")
        return 1
    ensure_database(ENV["DATABASE_URL"])
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   check=True, env={**os.environ})


    import django

    django.setup()
    from django_q.models import OrmQ

    from gocardless.models import (
        ConnectionStatus,
        Environment,
        GoCardlessConnection,
        GoCardlessEvent,
    )
    from tenants.models import Tenant

    # Tasks left by an earlier (interrupted) run point at a simulator that no longer exists.
    OrmQ.objects.all().delete()
    context = multiprocessing.get_context("spawn")
    ready, stop_sim = context.Queue(), context.Event()
    simulator = context.Process(target=run_simulator, args=(ready, stop_sim), daemon=True)
    simulator.start()
    sim_url, payments = ready.get(timeout=60)
    run = secrets.token_hex(4)
    rate = OFFERED_RATE or 2000
    bodies = bodies_for(run, payments, min(MAX_REQUESTS, int(rate * DURATION / BATCH) + 50))
    tenant = Tenant.objects.create(name=f"Bench {run}", slug=f"bench-{run}")
    GoCardlessConnection.objects.create(
        tenant=tenant, environment=Environment.CUSTOM, custom_base_url=sim_url,
        access_token="bench-token", webhook_secret=SECRET, organisation_id=f"ORB{run}",
        status=ConnectionStatus.CONNECTED,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/gocardless/{tenant.uuid}/"
    gunicorn = start([str(Path(python).parent / "gunicorn"), "config.wsgi", "-b",
                      f"127.0.0.1:{port}", "-w", str(WEB_WORKERS), "--log-level", "warning"])
    # BENCH_NO_CLUSTER=1 measures intake alone (the backlog is then left unprocessed).
    # Web and workers share two cores here; as the README advises for co-located nodes, the
    # workers run at a lower CPU priority so webhook answers are not queued behind them.
    cluster = start([python, "manage.py", "qcluster" if not os.environ.get("BENCH_NO_CLUSTER")
                     else "check"], nice=WORKER_NICE)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    try:
        wait_for_port(port)
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        stop_at = time.monotonic() + DURATION

        interval = CLIENT_THREADS * BATCH / OFFERED_RATE if OFFERED_RATE else 0.0
        # Each client is its own process: the latency measured is the service's, not time a
        # response spent waiting for a Python client thread to get the GIL back.
        results = multiprocessing.get_context("fork").Queue()
        from django.db import connections

        connections.close_all()  # no database socket shared with the forked clients
        began = time.monotonic()
        clients = [
            multiprocessing.get_context("fork").Process(
                target=client_loop,
                args=(url, bodies[n::CLIENT_THREADS], began + n * interval / CLIENT_THREADS,
                      interval, stop_at, results),
            )
            for n in range(CLIENT_THREADS)
        ]
        for process in clients:
            process.start()
        for _ in clients:
            client_latencies, client_statuses = results.get(timeout=DURATION + 60)
            latencies.extend(client_latencies)
            for status, n in client_statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        for process in clients:
            process.join(timeout=10)
        load_seconds = time.monotonic() - began
        load_end = time.monotonic()
        pending = GoCardlessEvent.objects.filter(tenant=tenant, processed_at__isnull=True)
        lag = None
        at_end = pending.count()
        while time.monotonic() - load_end < (0 if os.environ.get("BENCH_NO_CLUSTER")
                                             else LAG_LIMIT):
            if not pending.exists():
                lag = time.monotonic() - load_end
                break
            time.sleep(0.25)
        accepted = sum(n for status, n in statuses.items() if 200 <= status < 300) * BATCH
        processed = GoCardlessEvent.objects.filter(tenant=tenant,
                                                   processed_at__isnull=False).count()
        failed = GoCardlessEvent.objects.filter(tenant=tenant, failed_at__isnull=False).count()
        fetched = GoCardlessEvent.objects.filter(tenant=tenant, outcome="applied").count()
        rate = accepted / load_seconds
        # Each payment's 4 lifecycle events travel together; a run longer than one pass
        # over the 3,000 payments names a payment again with new events, which needs a new
        # GET. So the floor is one GET per (payment, pass): accepted events / 4.
        payments_named = -(-accepted // len(ACTIONS))
        counts = requests.get(f"{sim_url}/_control/call_counts", timeout=10).json()
        gets = sum(n for call, by_status in counts.items() if call.startswith("GET /payments/")
                   for n in by_status.values())
        web_peaks = tree_peak_mb(gunicorn.pid)
        web_peaks.pop(gunicorn.pid, None)  # the arbiter serves nothing
        cluster_peaks = tree_peak_mb(cluster.pid)
        p50, p99 = percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000
        offered = f"{OFFERED_RATE:.0f} events/s offered" if OFFERED_RATE else "flat out"
        print(f"webhook ingest: {len(latencies)} POSTs of {BATCH} events in {load_seconds:.1f} s "
              f"from {CLIENT_THREADS} client processes ({offered}); statuses {statuses}")
        print(f"  accepted      {rate:8.0f} events/s   (target >= 500)   "
              f"{'OK' if rate >= 500 else 'MISSED'}"
              + (f"; {rate / OFFERED_RATE:.3f} of the offered rate" if OFFERED_RATE else ""))
        print(f"  p50 / p99     {p50:6.1f} / {p99:6.1f} ms (target p99 < 100) "
              f"{'OK' if p99 < 100 else 'MISSED'}")
        lag_text = f"{lag:6.1f} s" if lag is not None else f"> {LAG_LIMIT:.0f} s"
        print(f"  queue lag     {lag_text} to 0 unprocessed (had {at_end} at load end; "
              f"target <= 10 s) {'OK' if lag is not None and lag <= 10 else 'MISSED'}")
        print(f"  processed     {processed} events ({failed} with a recorded failure; "
              f"{fetched} re-fetched, the rest already reflected in a newer fetch)")
        if payments_named:
            print(f"  GETs          {gets} payment fetches for {payments_named} payment "
                  f"lifecycles named = {gets / payments_named:.3f} x the lower bound "
                  "(one GET per payment per pass)")
        if web_peaks:
            print(f"  peak RSS      web workers {max(web_peaks.values()):.0f} MB max "
                  f"({len(web_peaks)} processes); task cluster "
                  f"{max(cluster_peaks.values(), default=0):.0f} MB max per process "
                  f"({len(cluster_peaks)} processes)")
        return 0
    finally:
        stop(cluster)
        stop(gunicorn)
        stop_sim.set()
        simulator.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
