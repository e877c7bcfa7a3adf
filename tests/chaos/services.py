"""Private PostgreSQL and Redis servers that a chaos run (and the outage bench) may restart.

The machine's own PostgreSQL and Redis serve every other suite that may be running; a run
that restarts them would fail those suites. So the faults are aimed at servers of our own: a
throw-away PostgreSQL cluster (initdb into a temporary directory, owned by the ``postgres``
user when we run as root, as PostgreSQL refuses to run as root) and a Redis server that keeps
nothing on disk, each on its own port.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, *, up: bool, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} in {seconds:.0f} s")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return path


class PrivatePostgres:
    """``start()``, ``restart(down_seconds=…)``, ``stop()``; ``url(name)`` for a database."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mlc-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8")
        self._pg_ctl("start")
        wait_port(self.port, up=True)
        return self

    def _pg_ctl(self, action: str) -> None:
        # Durability is not what is under test: fsync off keeps a run quick. Unix sockets in
        # the data directory, so nothing collides with the machine's server.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off "
                   f"-c unix_socket_directories={self.root} -c max_connections=200")
        argv = [_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                "-t", "60", action]
        if action in ("start", "restart"):
            argv += ["-o", options]
        if action in ("stop", "restart"):
            argv += ["-m", "fast"]
        self._run(*argv)

    def stop(self) -> None:
        self._pg_ctl("stop")
        wait_port(self.port, up=False)

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Stop (every connection is cut), stay down ``down_seconds``, start again."""
        self.stop()
        time.sleep(down_seconds)
        self._pg_ctl("start")
        wait_port(self.port, up=True)

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        try:
            self.stop()
        except (subprocess.CalledProcessError, RuntimeError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, up=True)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        wait_port(self.port, up=False)

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Redis keeps nothing on disk: what was queued in it is gone, as after a crash."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        self.stop()
