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


def exact_bench_environ(*, log_level: str) -> None:
    """Settings for a bench that runs the app against the in-process Exact simulator (an
    on-disk SQLite in a temp dir unless DATABASE_URL says otherwise). Call before
    ``django.setup()``."""
    import tempfile

    tmp = tempfile.mkdtemp(prefix="mlc-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",  # DEBUG keeps every SQL query in memory: not a fair RSS
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghijkl",
            "SALT_KEY": "bench-salt",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            # The benches talk to the local simulators: this installation allows their hosts
            # (production does not; docs/security.md).
            "EXACT_ALLOW_CUSTOM_BASE_URL": "true",
            "GOCARDLESS_ALLOW_CUSTOM_BASE_URL": "true",
            "LOG_LEVEL": log_level,
            "EXACT_CLIENT_ID": "sim-client-id",
            "EXACT_CLIENT_SECRET": "sim-client-secret",
            "EXACT_WEBHOOK_SECRET": "sim-webhook-secret",
            "PUBLIC_BASE_URL": "https://connector.example.test",
            "EMAIL_URL": "consolemail://",
        }
    )


def exact_connect_simulator(*, sim, division: int, slug: str):
    """A tenant connected to ``division`` of the Exact simulator through its consent page and
    a real code exchange, as a user would; returns ``(tenant, connection)``."""
    from datetime import timedelta
    from urllib.parse import parse_qs, urlsplit

    import requests
    from django.conf import settings
    from django.utils import timezone

    from exact.client import oauth_code_exchange
    from exact.models import ConnectionStatus, ExactConnection, Region
    from tenants.models import Tenant

    resp = requests.get(
        f"{sim.url}/api/oauth2/auth",
        params={
            "client_id": "sim-client-id",
            "redirect_uri": settings.EXACT_REDIRECT_URI,
            "response_type": "code",
            "state": "bench",
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    tokens = oauth_code_exchange(base_url=sim.url, code=code)
    tenant = Tenant.objects.create(name=f"Bench {division}", slug=slug)
    now = timezone.now()
    connection = ExactConnection.objects.create(
        tenant=tenant,
        region=Region.CUSTOM,
        custom_base_url=sim.url,
        division=division,
        division_name="Bench",
        status=ConnectionStatus.CONNECTED,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        token_issued_at=now,
        access_expires_at=now + timedelta(seconds=600),
    )
    return tenant, connection


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database a bench made (no-op for SQLite, or when it is absent).

    Only for a database the bench itself names and creates: never point it at another."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    parsed = urlsplit(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
