"""A controllable clock: every time-dependent rule of the simulator reads it, never the wall."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Starts at the real current time and only moves when told to (``advance``/``set``).

    ``set(dt, ticking=True)`` lets it run on with real time from ``dt`` (until the next
    ``set``): the demo keeps Exact's clock in step with the product's this way."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = start or datetime.now(UTC)
        self._ticking_since: float | None = None  # monotonic reading when set ticking
        if self._now.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")

    def _read(self) -> datetime:
        if self._ticking_since is None:
            return self._now
        return self._now + timedelta(seconds=time.monotonic() - self._ticking_since)

    def now(self) -> datetime:
        with self._lock:
            return self._read()

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._read()

    def set(self, dt: datetime, *, ticking: bool = False) -> datetime:
        if dt.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        with self._lock:
            self._now = dt.astimezone(UTC)
            self._ticking_since = time.monotonic() if ticking else None
            return self._read()
