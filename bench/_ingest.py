"""The webhook ingest stack the two intake benches share (not a bench itself: `make bench`
skips files starting with _): bench/webhook_ingest.py (web and workers sharing the cores) and
bench/webhook_cores.py (web and workers on separate CPU sets, 1 and 2 web processes).

``IngestStack`` starts the GoCardless simulator (for the processor's re-fetches), a tenant
connected to it, ``gunicorn config.wsgi`` and ``manage.py qcluster`` as subprocesses, each
placed on the CPUs and in the scheduling class a ``Layout`` names; ``load_phase`` posts signed
batches of 50 events from client processes (open loop on a fixed schedule, or closed loop flat
out) and measures the answers, the processing lag after the load, and the CPU time each part
used. Everything is loopback; processes are stopped by their own ids.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BATCH = 50
PAYMENTS = 3000
# Each payment's lifecycle events travel together in a batch, as GoCardless batches what
# happened in the same moment (4 events a payment; 12.5 payments a batch).
ACTIONS = ("created", "submitted", "confirmed", "paid_out")
SECRET = "bench-webhook-secret"
MAX_REQUESTS = 20_000
LAG_LIMIT = float(os.environ.get("BENCH_LAG_LIMIT", "120"))
TICK = os.sysconf("SC_CLK_TCK")


def ingest_environ(*, default_db: str) -> str:
    """Settings for the stack (inherited by every process it starts); returns DATABASE_URL.

    The bench writes thousands of rows into its database: it only ever uses one whose name
    says it is a bench's. Any other DATABASE_URL lends its server and credentials, and the
    bench uses ``default_db`` there."""
    url = os.environ.get("DATABASE_URL") or f"postgres://postgres@127.0.0.1:5432/{default_db}"
    parsed = urlsplit(url)
    if "bench" not in parsed.path.lstrip("/"):
        url = parsed._replace(path=f"/{default_db}").geturl()
    os.environ.update({
        "DATABASE_URL": url,
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
        # The connection points at the local simulator (production refuses custom hosts).
        "GOCARDLESS_ALLOW_CUSTOM_BASE_URL": "true",
    })
    return url


@dataclass(frozen=True)
class Layout:
    """Where each part of the stack runs.

    ``web_cpus``: gunicorn (arbiter and its worker processes); ``back_cpus``: the task
    cluster and the simulator; ``client_cpus``: the load clients. None: anywhere.
    ``back_sched``: "normal", "nice" (nice 10) or "idle" (Linux's SCHED_IDLE after nice 10:
    only CPU time nothing else wants). ``client_sched``: "normal", or "fifo" (SCHED_FIFO
    priority 1: a client that wakes up to read an answer runs at once, so the time it measures
    is the service's, not its own wait for a CPU behind the task workers)."""

    name: str
    web_workers: int
    web_cpus: frozenset[int] | None = None
    back_cpus: frozenset[int] | None = None
    client_cpus: frozenset[int] | None = None
    back_sched: str = "idle"
    client_sched: str = "normal"


def place(*, cpus: frozenset[int] | None, sched: str = "normal") -> None:
    """Put the calling process on ``cpus`` in the scheduling class ``sched`` (its children
    inherit both)."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    if sched in ("nice", "idle"):
        os.nice(10)
    if sched == "idle":
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif sched == "fifo":
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def start(cmd: list[str], *, cpus=None, sched: str = "normal") -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: place(cpus=cpus, sched=sched))


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


# -- CPU accounting from /proc (Linux) ---------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children_of(root_pid: int) -> list[int]:
    """Every descendant of ``root_pid`` (not itself)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            parents[int(entry)] = int(fields[1])
    tree, frontier = [], [root_pid]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) a process tree has used, exited children included: each live
    process's own time plus what it reaped (cutime/cstime: the time of its children that
    have exited). The difference of two readings is exactly what the tree used in between,
    short-lived children (one PostgreSQL backend per connection) and grandchildren (the
    workers django-q2's sentinel recycles, which it reaps) included. Counting only the root's
    reaped time made a cluster's CPU go backwards when a worker was recycled (found in the
    1,000-company run)."""
    total = 0.0
    for pid in [root_pid, *children_of(root_pid)]:
        if fields := _stat_fields(pid):
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def cpu_busy_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) jiffies since boot, from /proc/stat."""
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq soft steal
                out[int(name[3:])] = (sum(ticks) - ticks[3] - ticks[4], sum(ticks))
    return out


def postgres_root(dsn_pid: int) -> int | None:
    """The postmaster: parent of the backend serving our connection (None when PostgreSQL
    runs on another machine or its processes are not visible)."""
    fields = _stat_fields(dsn_pid)
    return int(fields[1]) if fields else None


def peaks_mb(pids: list[int]) -> list[float]:
    """Peak RSS (VmHWM) in MB of each live process in ``pids``."""
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        out.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return out


# -- the simulator and the load --------------------------------------------------------------


def run_simulator(ready, stop_event, cpus, sched) -> None:
    """The GoCardless simulator in its own process (its own GIL: the load generator must not
    slow the API the processor re-fetches from, nor the other way round). GoCardless's servers
    are not on our machine in production; here the simulator runs with the task workers."""
    import logging

    place(cpus=cpus, sched=sched)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulator's access log
    from simulators.gocardless import Simulator

    sim = Simulator(access_tokens=("bench-token",), rate_limit_per_minute=1_000_000).start()
    mandates = sim.seed(bulk={"count": 20, "scheme": "sepa_core", "status": "active"})["mandates"]
    payments = sim.seed(payments=[{"mandate": mandates[n % 20], "amount": 1000 + n}
                                  for n in range(PAYMENTS)])["payments"]
    ready.put((sim.url, payments, os.getpid()))
    stop_event.wait(24 * 3600)
    sim.stop()


def bodies_for(run: str, payments: list[str], count: int,
               batch: int = BATCH) -> list[tuple[bytes, str]]:
    """Every request body (``batch`` events) and its signature, built before the clock
    starts."""
    out = []
    for request in range(count):
        events = [{
            "id": f"EV{run}{n:08d}", "created_at": "2026-03-06T09:00:00.000Z",
            "resource_type": "payments", "action": ACTIONS[n % len(ACTIONS)],
            "links": {"payment": payments[(n // len(ACTIONS)) % PAYMENTS]},
            "details": {"origin": "gocardless", "cause": f"payment_{ACTIONS[n % len(ACTIONS)]}"},
            "metadata": {},
        } for n in range(request * batch, (request + 1) * batch)]
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        out.append((body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()))
    return out


def client_loop(url, bodies, first_send, interval, stop_at, results, cpus, sched) -> None:
    """One load client (a process of its own): open loop on a fixed schedule (``interval``
    seconds between its sends), or closed loop flat out (``interval`` 0). Reports its
    latencies, the statuses, and the CPU time it used itself."""
    import requests

    place(cpus=cpus, sched=sched)
    session = requests.Session()
    latencies, statuses = [], {}
    cpu_before = os.times()
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
    cpu_after = os.times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.put((latencies, statuses, cpu, peak))


@dataclass
class Phase:
    """What one load phase measured."""

    rate: float  # offered events/s; 0 = flat out (closed loop)
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted_events: int = 0
    at_end: int = 0  # events not yet processed when the load stopped
    lag: float | None = None  # seconds after the load until none was left (None: not within)
    cpu: dict[str, float] = field(default_factory=dict)  # seconds: web, back, clients, postgres
    busy: dict[int, float] = field(default_factory=dict)  # CPU number -> busy fraction
    client_peak_mb: float = 0.0

    @property
    def accepted_rate(self) -> float:
        return self.accepted_events / self.seconds

    @property
    def posts(self) -> int:
        return len(self.latencies)

    def ms(self, fraction: float) -> float:
        return percentile(self.latencies, fraction) * 1000


class IngestStack:
    """Simulator, tenant, gunicorn and the task cluster placed as ``layout`` says; a context
    manager that stops them all (by their own process ids) on the way out."""

    def __init__(self, layout: Layout, *, cluster: bool = True):
        self.layout = layout
        self.with_cluster = cluster
        self.run = secrets.token_hex(4)
        self.phases = 0
        self.gets_before = 0

    def __enter__(self) -> IngestStack:
        import django
        import requests

        django.setup()
        from django.db import connection
        from django_q.models import OrmQ

        from gocardless.models import ConnectionStatus, Environment, GoCardlessConnection
        from tenants.models import Tenant

        # Tasks left by an earlier (interrupted) run point at a simulator that no longer exists.
        OrmQ.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.postgres = postgres_root(cursor.fetchone()[0])
        layout = self.layout
        context = multiprocessing.get_context("spawn")
        ready, self.stop_sim = context.Queue(), context.Event()
        self.simulator = context.Process(
            target=run_simulator, daemon=True,
            args=(ready, self.stop_sim, layout.back_cpus, layout.back_sched))
        self.simulator.start()
        self.sim_url, self.payments, self.sim_pid = ready.get(timeout=120)
        self.tenant = Tenant.objects.create(name=f"Bench {self.run}", slug=f"bench-{self.run}")
        GoCardlessConnection.objects.create(
            tenant=self.tenant, environment=Environment.CUSTOM, custom_base_url=self.sim_url,
            access_token="bench-token", webhook_secret=SECRET, organisation_id=f"ORB{self.run}",
            status=ConnectionStatus.CONNECTED,
        )
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/webhooks/gocardless/{self.tenant.uuid}/"
        bin_dir = Path(sys.executable).parent
        self.gunicorn = start(
            [str(bin_dir / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}",
             "-w", str(layout.web_workers), "--log-level", "warning"],
            cpus=layout.web_cpus)
        # --skip-checks: mlc.E010 refuses the custom base URL with DEBUG off (right for
        # production; the bench talks to the local simulator on purpose). Without the cluster
        # (intake alone) a process that exits at once stands in, and the backlog stays.
        self.cluster = start(
            [sys.executable, "manage.py", "qcluster", "--skip-checks"] if self.with_cluster
            else [sys.executable, "-c", "pass"],
            cpus=layout.back_cpus, sched=layout.back_sched)
        try:
            wait_for_port(port)
            requests.get(f"{self.base}/healthz", timeout=10)
            deadline = time.monotonic() + 30
            while len(self.web_pids()) < layout.web_workers and time.monotonic() < deadline:
                time.sleep(0.1)
            self.gets_before = self._payment_gets()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        stop(self.cluster)
        stop(self.gunicorn)
        self.stop_sim.set()
        self.simulator.join(timeout=10)

    def web_pids(self) -> list[int]:
        """The gunicorn worker processes (the arbiter serves nothing)."""
        return children_of(self.gunicorn.pid)

    def cluster_pids(self) -> list[int]:
        return [self.cluster.pid, *children_of(self.cluster.pid)]

    def _cpu(self) -> dict[str, float]:
        out = {
            "web": tree_cpu_seconds(self.gunicorn.pid),
            "back": tree_cpu_seconds(self.cluster.pid) + tree_cpu_seconds(self.sim_pid),
        }
        if self.postgres:
            out["postgres"] = tree_cpu_seconds(self.postgres)
        return out

    def load_phase(self, *, rate: float, seconds: float, clients: int,
                   wait_lag: bool = True) -> Phase:
        """Post for ``seconds`` at ``rate`` events/s (0: flat out, each client sending its
        next batch when the answer to the last arrives), then wait (up to LAG_LIMIT) until no
        event of the tenant is left unprocessed."""
        from django.db import connections

        from gocardless.models import GoCardlessEvent

        self.phases += 1
        count = min(MAX_REQUESTS, int((rate or 3000) * seconds / BATCH) + 50)
        bodies = bodies_for(f"{self.run}{self.phases}", self.payments, count)
        interval = clients * BATCH / rate if rate else 0.0
        results = multiprocessing.get_context("fork").Queue()
        connections.close_all()  # no database socket shared with the forked clients
        phase = Phase(rate=rate, clients=clients, seconds=seconds)
        busy_before, cpu_before = cpu_busy_ticks(), self._cpu()
        began = time.monotonic()
        stop_at = began + seconds
        # Each client is its own process: the latency measured is the service's, not time a
        # response spent waiting for a Python client thread to get the GIL back.
        processes = [
            multiprocessing.get_context("fork").Process(
                target=client_loop,
                args=(self.url, bodies[n::clients], began + n * interval / clients, interval,
                      stop_at, results, self.layout.client_cpus, self.layout.client_sched),
            )
            for n in range(clients)
        ]
        for process in processes:
            process.start()
        client_cpu = 0.0
        for _ in processes:
            latencies, statuses, cpu, peak = results.get(timeout=seconds + 60)
            phase.latencies.extend(latencies)
            for status, n in statuses.items():
                phase.statuses[status] = phase.statuses.get(status, 0) + n
            client_cpu += cpu
            phase.client_peak_mb = max(phase.client_peak_mb, peak)
        for process in processes:
            process.join(timeout=10)
        load_end = time.monotonic()
        phase.seconds = load_end - began
        busy_after, cpu_after = cpu_busy_ticks(), self._cpu()
        phase.cpu = {part: cpu_after[part] - cpu_before[part] for part in cpu_before}
        phase.cpu["clients"] = client_cpu
        for cpu, (busy, total) in busy_after.items():
            phase.busy[cpu] = (busy - busy_before[cpu][0]) / max(1, total - busy_before[cpu][1])
        phase.accepted_events = BATCH * sum(
            n for status, n in phase.statuses.items() if 200 <= status < 300)
        pending = GoCardlessEvent.objects.filter(tenant=self.tenant, processed_at__isnull=True)
        phase.at_end = pending.count()
        limit = LAG_LIMIT if (self.with_cluster and wait_lag) else 0
        while time.monotonic() - load_end < limit:
            if not pending.exists():
                phase.lag = time.monotonic() - load_end
                break
            time.sleep(0.25)
        return phase

    def _payment_gets(self) -> int:
        import requests

        counts = requests.get(f"{self.sim_url}/_control/call_counts", timeout=10).json()
        return sum(n for call, by_status in counts.items() if call.startswith("GET /payments/")
                   for n in by_status.values())

    def processing_summary(self, phases: list[Phase]) -> str:
        """Processed events and payment GETs against their lower bound: a payment's 4 events
        travel together, and every phase starts again at the first payment with new events,
        so the floor is one GET per 4 accepted events."""
        from gocardless.models import GoCardlessEvent

        events = GoCardlessEvent.objects.filter(tenant=self.tenant)
        processed = events.filter(processed_at__isnull=False).count()
        failed = events.filter(failed_at__isnull=False).count()
        fetched = events.filter(outcome="applied").count()
        floor = sum(-(-p.accepted_events // len(ACTIONS)) for p in phases)
        gets = self._payment_gets() - self.gets_before
        text = (f"processed     {processed} events ({failed} with a recorded failure; "
                f"{fetched} re-fetched, the rest already reflected in a newer fetch)")
        if floor:
            text += (f"\n  GETs          {gets} payment fetches for {floor} payment lifecycles "
                     f"named = {gets / floor:.3f} x the lower bound (one GET per payment per "
                     "pass)")
        return text


def prepare_database(url: str) -> None:
    """Create (if missing) and migrate the bench database."""
    sys.path.insert(0, str(ROOT))
    from bench._support import ensure_database

    ensure_database(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0",
                    "--skip-checks"], cwd=ROOT, check=True, env={**os.environ})


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"
