"""Exact's two API budgets per (app, division): minutely and daily (API-NOTES §3).

Windows are calendar-aligned on the simulator clock — the minute resets on the next minute
boundary and the day at 00:00 UTC — which is what the ``X-RateLimit-*-Reset`` values of real
responses show. Resets are epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import ApiError


@dataclass
class _Window:
    reset_at: datetime
    used: int = 0


def _ms(dt: datetime) -> str:
    return str(int(dt.timestamp() * 1000))


class RateLimiter:
    """Not locked itself: callers hold ``State.lock``."""

    def __init__(self, clock, minutely_limit: int, daily_limit: int) -> None:
        self.clock = clock
        self.minutely_limit = minutely_limit
        self.daily_limit = daily_limit
        self._minute: dict[tuple[str, int], _Window] = {}
        self._day: dict[tuple[str, int], _Window] = {}

    def consume(self, client_id: str, division: int) -> dict[str, str]:
        """Count one call; return the six headers, or raise a 429 carrying only the
        headers of the budget that ran out."""
        now = self.clock.now()
        key = (client_id, division)
        minute = self._window(self._minute, key, now, _next_minute(now))
        day = self._window(self._day, key, now, _next_midnight(now))
        daily = {
            "X-RateLimit-Limit": str(self.daily_limit),
            "X-RateLimit-Remaining": str(max(self.daily_limit - day.used, 0)),
            "X-RateLimit-Reset": _ms(day.reset_at),
        }
        minutely = {
            "X-RateLimit-Minutely-Limit": str(self.minutely_limit),
            "X-RateLimit-Minutely-Remaining": str(max(self.minutely_limit - minute.used, 0)),
            "X-RateLimit-Minutely-Reset": _ms(minute.reset_at),
        }
        if day.used >= self.daily_limit:
            raise ApiError(429, "API rate limit exceeded (daily).", headers=daily)
        if minute.used >= self.minutely_limit:
            raise ApiError(429, "API rate limit exceeded (minutely).", headers=minutely)
        day.used += 1
        minute.used += 1
        daily["X-RateLimit-Remaining"] = str(self.daily_limit - day.used)
        minutely["X-RateLimit-Minutely-Remaining"] = str(self.minutely_limit - minute.used)
        return daily | minutely

    def exhausted_headers(self) -> dict[str, str]:
        """Minutely headers for an injected 429: as if this minute's budget were spent."""
        return {
            "X-RateLimit-Minutely-Limit": str(self.minutely_limit),
            "X-RateLimit-Minutely-Remaining": "0",
            "X-RateLimit-Minutely-Reset": _ms(_next_minute(self.clock.now())),
        }

    @staticmethod
    def _window(windows: dict, key, now: datetime, next_reset: datetime) -> _Window:
        window = windows.get(key)
        if window is None or now >= window.reset_at:
            window = windows[key] = _Window(next_reset)
        return window


def _next_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _next_midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
