"""Injected failures for API calls (and, when aimed at it by ``path``, the OAuth token
endpoint): latency, 5xx, HTML 502, timeouts, 429s, dropped replies."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .chaos import CHAOS_KINDS, ChaosDice

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


class Faults:
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

    # -- random faults (chaos.py) -------------------------------------------------------

    def chaos(self, *, seed: int, rate: float, kinds: tuple[str, ...] = CHAOS_KINDS,
              timeout_seconds: float = 2.5, burst: int = 3,
              paths: tuple[str, ...] | None = None) -> dict:
        """Fault each API call (never /_control/, /oauth/ or /flows/) with probability
        ``rate``, the kind drawn from ``kinds`` by ``random.Random(seed)``; ``paths``: only
        calls whose path starts with one of these prefixes."""
        return self.dice.start(seed=seed, rate=rate, kinds=kinds,
                               timeout_seconds=timeout_seconds, burst=burst, paths=paths)

    def chaos_off(self) -> dict:
        return self.dice.stop()

    def chaos_counts(self, by_path: bool = False) -> dict:
        """{kind: faults injected} for every kind; ``by_path``: {"by_kind": …, "by_path":
        {"POST /payments": {kind: n}}}. A 429 burst counts each call it answered."""
        return self.dice.counts(by_path=by_path)

    def chaos_log(self) -> list[dict]:
        """The newest faults drawn, oldest first: {call, kind, route, path, burst}."""
        return self.dice.entries()

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
