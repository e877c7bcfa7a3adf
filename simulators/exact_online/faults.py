"""Injected misbehaviour: latency on every call, and the next N matching requests answered
with an error status, a timeout, or a response that is lost after the work was done."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .chaos import CHAOS_KINDS, ChaosDice

API_PATH = "/api/v1/"
TOKEN_PATH = "/api/oauth2/token"
DIVISION_IN_PATH = re.compile(r"^/api/v1/(\d+)/")


@dataclass
class Fault:
    kind: str  # "status" | "timeout"
    remaining: int
    path: str
    status: int = 0
    seconds: float = 0.0
    # timeout only: do the work first (the client cannot know it happened), then drop.
    process: bool = False

    # --- random faults (chaos.py) -----------------------------------------------------

    def chaos(self, *, seed: int, rate: float, kinds: tuple[str, ...] = CHAOS_KINDS,
              timeout_seconds: float = 2.5, burst: int = 3,
              paths: tuple[str, ...] | None = None) -> dict:
        """Fault each ``/api/v1/`` call (never the OAuth endpoints, never /_control/) with
        probability ``rate``, the kind drawn from ``kinds`` by ``random.Random(seed)``;
        ``paths``: only calls whose path contains one of these fragments."""
        return self.dice.start(seed=seed, rate=rate, kinds=kinds,
                               timeout_seconds=timeout_seconds, burst=burst, paths=paths)

    def chaos_off(self) -> dict:
        return self.dice.stop()

    def chaos_counts(self, by_path: bool = False) -> dict:
        """{kind: faults injected} for every kind; ``by_path``: {"by_kind": …, "by_path":
        {"GET /api/v1/{division}/crm/Accounts": {kind: n}}}. A 429 burst counts each call
        it answered."""
        return self.dice.counts(by_path=by_path)

    def chaos_log(self) -> list[dict]:
        """The newest faults drawn, oldest first: {call, kind, route, path, burst}."""
        return self.dice.entries()

    def chaos_fault(self, path: str, route: str) -> tuple[str, float] | None:
        """(kind, seconds to hold the request) for this call, or None."""
        if not path.startswith(API_PATH):
            return None
        match = DIVISION_IN_PATH.match(path)
        kind = self.dice.draw(division=match[1] if match else "current", path=path,
                              route=route)
        settings = self.dice.settings
        if kind is None:
            return None
        return kind, settings.timeout_seconds if settings is not None else 0.0

    def describe(self) -> dict:
        return {"fault": self.kind, "remaining": self.remaining, "path": self.path,
                "status": self.status, "seconds": self.seconds, "process": self.process}


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_ms = 0
        self._queue: list[Fault] = []
        self.dice = ChaosDice()

    def inject(
        self,
        fault: str,
        *,
        count: int = 1,
        status: int | None = None,
        seconds: float | None = None,
        ms: int | None = None,
        path: str | None = None,
        process: bool | None = None,
    ) -> dict:
        with self._lock:
            if fault == "clear":
                self.latency_ms = 0
                self._queue.clear()
            elif fault == "latency":
                self.latency_ms = int(ms or 0)
            elif fault == "status":
                if not status or not 400 <= int(status) <= 599:
                    raise ValueError("status fault needs an HTTP error status")
                self._queue.append(Fault("status", count, path or API_PATH, status=int(status)))
            elif fault == "timeout":
                self._queue.append(Fault("timeout", count, path or API_PATH,
                                         seconds=1.0 if seconds is None else float(seconds),
                                         process=bool(process)))
            elif fault == "lose_token_response":
                # New tokens are issued (the chain rotates) but the client never sees them.
                self._queue.append(Fault("timeout", count, TOKEN_PATH,
                                         seconds=float(seconds or 0), process=True))
            else:
                raise ValueError(f"unknown fault {fault!r}")
            return self.describe()

    def take(self, path: str) -> Fault | None:
        """Consume one pending fault whose path fragment occurs in this request's path."""
        with self._lock:
            for fault in self._queue:
                if fault.path in path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._queue.remove(fault)
                    return fault
            return None

    # --- random faults (chaos.py) -----------------------------------------------------

    def chaos(self, *, seed: int, rate: float, kinds: tuple[str, ...] = CHAOS_KINDS,
              timeout_seconds: float = 2.5, burst: int = 3,
              paths: tuple[str, ...] | None = None) -> dict:
        """Fault each ``/api/v1/`` call (never the OAuth endpoints, never /_control/) with
        probability ``rate``, the kind drawn from ``kinds`` by ``random.Random(seed)``;
        ``paths``: only calls whose path contains one of these fragments."""
        return self.dice.start(seed=seed, rate=rate, kinds=kinds,
                               timeout_seconds=timeout_seconds, burst=burst, paths=paths)

    def chaos_off(self) -> dict:
        return self.dice.stop()

    def chaos_counts(self, by_path: bool = False) -> dict:
        """{kind: faults injected} for every kind; ``by_path``: {"by_kind": …, "by_path":
        {"GET /api/v1/{division}/crm/Accounts": {kind: n}}}. A 429 burst counts each call
        it answered."""
        return self.dice.counts(by_path=by_path)

    def chaos_log(self) -> list[dict]:
        """The newest faults drawn, oldest first: {call, kind, route, path, burst}."""
        return self.dice.entries()

    def chaos_fault(self, path: str, route: str) -> tuple[str, float] | None:
        """(kind, seconds to hold the request) for this call, or None."""
        if not path.startswith(API_PATH):
            return None
        match = DIVISION_IN_PATH.match(path)
        kind = self.dice.draw(division=match[1] if match else "current", path=path,
                              route=route)
        settings = self.dice.settings
        if kind is None:
            return None
        return kind, settings.timeout_seconds if settings is not None else 0.0

    def describe(self) -> dict:
        return {"latency_ms": self.latency_ms, "pending": [f.describe() for f in self._queue]}
