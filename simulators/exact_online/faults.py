"""Injected misbehaviour: latency on every call, and the next N matching requests answered
with an error status, a timeout, or a response that is lost after the work was done."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from simulators.chaos import ChaosFaultsMixin

from .chaos import ChaosDice

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

    def describe(self) -> dict:
        return {"fault": self.kind, "remaining": self.remaining, "path": self.path,
                "status": self.status, "seconds": self.seconds, "process": self.process}


class Faults(ChaosFaultsMixin):
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

    # --- random faults (chaos(), chaos_off(), ...: simulators/chaos.py) ----------------

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
