"""A controllable clock: every time-dependent rule of the simulator reads it, never the wall."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SimClock:
    """Starts at the real current time and only moves when told to (``advance``/``set``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = start or datetime.now(UTC)
        if self._now.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        with self._lock:
            self._now = dt.astimezone(UTC)
            return self._now
