"""Injected failures for API calls (and, when aimed at it by ``path``, the OAuth token
endpoint): latency, 5xx, HTML 502, timeouts, 429s, dropped replies."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from simulators.chaos import ChaosFaultsMixin

from .chaos import ChaosDice

KINDS = ("error_500", "html_502", "timeout", "timeout_after", "rate_limit", "drop_response")

# What Cloudflare in front of the API answers when the origin is unreachable; not JSON, so
# the SDK raises MalformedResponseError and retries the same request with the same key.
CLOUDFLARE_502 = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
"""


@dataclass
class Fault:
    kind: str
    remaining: int
    seconds: float = 0.0
    method: str | None = None
    path: str | None = None  # a path prefix, e.g. "/payments"
    chaos: bool = False  # drawn by chaos(): ``seconds`` is meant as given, even 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or path.startswith(self.path))

    def describe(self) -> dict:
        return {"kind": self.kind, "remaining": self.remaining, "seconds": self.seconds,
                "method": self.method, "path": self.path}


class Faults(ChaosFaultsMixin):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_ms = 0
        self._faults: list[Fault] = []
        self.dice = ChaosDice()

    def add(self, kind: str, count: int = 1, *, seconds: float = 0.0, method=None,
            path=None) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        fault = Fault(kind, int(count), float(seconds), method.upper() if method else None, path)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, *, explicit: bool = False) -> Fault | None:
        """The first pending fault matching this call, counted down by one. ``explicit``:
        only faults whose ``path`` names this call (the OAuth endpoints use this)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and not (explicit and fault.path is None):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- random faults (chaos(), chaos_off(), ...: simulators/chaos.py) -----------------

    def chaos_fault(self, *, token: str, method: str, path: str, route: str) -> Fault | None:
        kind = self.dice.draw(token=token, method=method, path=path, route=route)
        if kind is None:
            return None
        settings = self.dice.settings
        seconds = settings.timeout_seconds if settings is not None else 0.0
        return Fault(kind, 0, seconds, method, path, chaos=True)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency_ms = 0

    def describe(self) -> dict:
        with self._lock:
            return {"latency_ms": self.latency_ms,
                    "pending": [fault.describe() for fault in self._faults]}
