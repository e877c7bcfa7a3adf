"""Helpers the benches share (not a bench itself: `make bench` skips files starting with _)."""

from __future__ import annotations

import os
import resource
from datetime import UTC, datetime
from urllib.parse import urlsplit


class WallClock:
    """The simulators' clock interface, on real time (a bench must live real minutes)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> datetime:  # pragma: no cover - never used here
        raise RuntimeError("the bench runs on the wall clock")

    def set(self, dt: datetime) -> datetime:  # pragma: no cover
        raise RuntimeError("the bench runs on the wall clock")


def rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database a bench runs on, if missing (no-op for SQLite)."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    parsed = urlsplit(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def tree_peak_mb(root_pid: int) -> dict[int, float]:
    """Peak RSS (VmHWM) in MB of a process and each of its descendants, by pid (Linux /proc).

    For benches that start servers as subprocesses: read before stopping them."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
                parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    tree, frontier = [root_pid], [root_pid]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    peaks = {}
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return peaks
