"""The world of a chaos month: private PostgreSQL and Redis, the simulators (in this process),
the product's web server and task cluster (processes of their own, on the story's clock), and
the operations that move it: clock hops, settling, killing workers, restarting servers.

One clock, the story's. This process travels to it with time-machine (the services the
"people" of the story call: consent, matching, refunds). The product's processes cannot be
travelled from here: each is started under libfaketime with the offset of the story's clock
from the real one, and restarted whenever the story's clock jumps (a day passes, or an hour
so that leases and back-offs run out). The simulators' clocks are set to the story's at every
jump. Between jumps everyone's clock runs on with real time.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
QUIET_SAMPLES = 2  # consecutive looks with nothing queued or running and nothing moved ...
QUIET_EVERY = 0.7  # ... this many seconds apart
HTTP_TIMEOUT = 2.0  # the product's timeout for both APIs here (the faults sleep 2.5 s)


def _real_now() -> float:
    """Wall-clock seconds, whatever time-machine does to this process."""
    import time_machine

    return time_machine.escape_hatch.time.time()


@dataclass
class Processes:
    """The product's web server (gunicorn) and task cluster (qcluster), restartable."""

    env: dict
    web_port: int
    workers: int = 2
    web: subprocess.Popen | None = None
    cluster: subprocess.Popen | None = None
    restarts: dict = field(default_factory=lambda: {"web": 0, "cluster": 0, "crashed": 0})

    def _spawn(self, argv: list[str], offset: int, log: str) -> subprocess.Popen:
        # libfaketime preloaded directly: the faketime wrapper's semaphore collides when a
        # process is restarted many times. Only the offset is faked (no shared start time).
        libraries = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
        if not libraries:
            raise RuntimeError("libfaketime is not installed (Debian package faketime)")
        env = {**self.env, "LD_PRELOAD": libraries[0], "FAKETIME": f"{offset:+d}"}
        out = open(log, "ab")  # the child keeps it
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start(self, *, offset: int, logdir: Path) -> None:
        from tests.chaos.services import wait_port

        wait_port(self.web_port, up=False)  # the last server's socket is gone
        self.web = self._spawn(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b",
             f"127.0.0.1:{self.web_port}", "-w", "2", "--threads", "4", "--timeout", "60",
             "--graceful-timeout", "2", "--log-level", "warning"],
            offset, str(logdir / "web.log"))
        self.cluster = self._spawn(
            [sys.executable, "manage.py", "qcluster", "--skip-checks"], offset,
            str(logdir / "cluster.log"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"the web server stopped (see {logdir / 'web.log'})")
            try:
                requests.get(f"http://127.0.0.1:{self.web_port}/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("the web server did not answer in 60 s")

    def stop(self, *, hard: bool = False) -> None:
        for process in (self.cluster, self.web):
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.web = self.cluster = None

    def cluster_restart(self, *, offset: int, logdir: Path) -> None:
        if self.cluster is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.cluster.pid, signal.SIGKILL)  # its workers too
            self.cluster.wait(timeout=10)
        self.cluster = self._spawn([sys.executable, "manage.py", "qcluster", "--skip-checks"],
                                   offset, str(logdir / "cluster.log"))

    def supervise(self, *, offset: int, logdir: Path) -> None:
        """What systemd does in production: a process that died is started again."""
        if self.cluster is not None and self.cluster.poll() is not None:
            self.restarts["crashed"] += 1
            self.cluster_restart(offset=offset, logdir=logdir)
        if self.web is not None and self.web.poll() is not None:
            self.restarts["crashed"] += 1
            self.stop()
            self.start(offset=offset, logdir=logdir)


class Clock:
    """The story's clock: this process (time-machine), the simulators, the product."""

    def __init__(self, start: datetime) -> None:
        import time_machine

        self.traveller = time_machine.travel(start, tick=True)
        self.coordinates = self.traveller.start()

    def now(self) -> datetime:
        from django.utils import timezone

        return timezone.now()

    def offset(self) -> int:
        """Seconds the product's clock runs ahead of the real one (libfaketime's offset)."""
        return round(self.now().timestamp() - _real_now())

    def move_to(self, when: datetime) -> None:
        self.coordinates.move_to(when, tick=True)

    def stop(self) -> None:
        self.traveller.stop()


class WorkerKiller:
    """SIGKILLs a random worker of the task cluster every so often (seeded), as the OOM killer
    or a lost machine would. django-q2 starts a new worker; the task it was running is lost
    with it (the Redis broker has no acknowledgements) and the product's sweeps must heal."""

    def __init__(self, *, seed: int, mean_seconds: float) -> None:
        self.rng = random.Random(seed)
        self.mean = mean_seconds
        self.killed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="chaos-killer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.rng.expovariate(1 / self.mean)):
            pids = busy_worker_pids()
            if not pids:
                continue
            pid = self.rng.choice(sorted(pids))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                self.killed += 1


def busy_worker_pids() -> list[int]:
    """The workers running a task now (tests/chaos/inflight.py).

    Only those: an idle django-q2 worker waits for its next task inside
    ``multiprocessing.Queue.get`` holding the queue's read lock, and killed there it takes
    the lock with it: every other worker then waits on that lock for ever and the cluster
    stops (django-q2's design, not ours; docs/chaos.md). Killing a worker mid-task is the
    fault the product must survive: the task is lost half done."""
    try:
        from tests.chaos.inflight import running_pids

        return running_pids()
    except Exception:  # Redis may be restarting: no workers to kill now
        return []


def broker_queue_size() -> int:
    from django_q.brokers import get_broker

    try:
        return get_broker().queue_size() or 0
    except Exception:  # Redis restarting: not quiet
        return -1


def enqueue(func: str, *args) -> None:
    """Queue a task through the broker, as django-q2's scheduler does."""
    from django_q.tasks import async_task

    for _ in range(20):
        try:
            async_task(func, *args)
            return
        except Exception:  # Redis restarting: try again shortly
            time.sleep(0.5)
    raise RuntimeError(f"could not queue {func}")


def with_database(func, *args, tries: int = 40, **kwargs):
    """Run a read of this process against PostgreSQL, reconnecting after a restart."""
    from django.db import InterfaceError, OperationalError, connections

    for attempt in range(tries):
        try:
            return func(*args, **kwargs)
        except (OperationalError, InterfaceError):
            connections.close_all()
            if attempt == tries - 1:
                raise
            time.sleep(0.5)
    return None


def wait_until(check, *, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def hop(clock: Clock, delta: timedelta) -> datetime:
    when = clock.now() + delta
    clock.move_to(when)
    return when
