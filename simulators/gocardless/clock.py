"""Simulated time and the working-day calendars the schemes run on."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import holidays


class SimClock:
    """A clock that starts at real now (or ``start``) and can be moved by hand.

    Not frozen, it keeps ticking with real time from wherever it was last set, so a demo or a
    benchmark sees minutes pass; frozen, it only moves through ``advance``/``set`` so that
    tests never depend on wall-clock timing.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self._lock = threading.Lock()
        self._frozen = frozen
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._base_monotonic = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen:
                return self._base
            return self._base + timedelta(seconds=time.monotonic() - self._base_monotonic)

    def today(self) -> date:
        return self.now().date()

    def advance(self, days: float = 0, seconds: float = 0) -> datetime:
        if days < 0 or seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._base += timedelta(days=days, seconds=seconds)
        return self.now()

    def set(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        with self._lock:
            self._base = dt.astimezone(UTC)
            self._base_monotonic = time.monotonic()
        return self.now()


# Which public-holiday calendar each scheme's banks close on. TARGET2 (the ECB calendar)
# governs SEPA; the others follow the payer's country.
_CALENDARS: dict[str, tuple[str, str | None]] = {
    "bacs": ("GB", "ENG"),
    "faster_payments": ("GB", "ENG"),
    "sepa_core": ("ECB", None),
    "autogiro": ("SE", None),
    "betalingsservice": ("DK", None),
    "becs": ("AU", None),
    "becs_nz": ("NZ", None),
    "pad": ("CA", None),
    "ach": ("US", None),
}


@lru_cache(maxsize=64)
def _holidays(scheme: str, year: int) -> frozenset[date]:
    code, subdiv = _CALENDARS.get(scheme, ("GB", "ENG"))
    if code == "ECB":
        calendar = holidays.financial_holidays("ECB", years=year)
    else:
        calendar = holidays.country_holidays(code, subdiv=subdiv, years=year)
    return frozenset(calendar.keys())


def is_working_day(day: date, scheme: str) -> bool:
    return day.weekday() < 5 and day not in _holidays(scheme, day.year)


def roll_forward(day: date, scheme: str) -> date:
    """The day itself if the banks work on it, else the next day they do."""
    while not is_working_day(day, scheme):
        day += timedelta(days=1)
    return day


def add_working_days(day: date, count: int, scheme: str) -> date:
    """``count`` working days after ``day`` (counting from the next working day)."""
    while count > 0:
        day += timedelta(days=1)
        if is_working_day(day, scheme):
            count -= 1
    return day


def subtract_working_days(day: date, count: int, scheme: str) -> date:
    while count > 0:
        day -= timedelta(days=1)
        if is_working_day(day, scheme):
            count -= 1
    return day


def iso_timestamp(moment: datetime) -> str:
    """GoCardless timestamps: UTC, millisecond precision, ``Z`` suffix."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
