"""Staying inside Exact's API budget (60 calls a minute, 5,000 a day per app and division).

Choice: the budget lives in the database (``ExactRateBudget``, one row per app + division),
updated under a row lock. It is shared by every web process, worker and machine, needs no
Redis, and costs two tiny transactions per call — nothing next to an HTTP round trip.

Per call:
1. ``acquire()`` locks the row, rolls a passed window over (minutes reset on the minute
   boundary, days at 00:00 UTC — what Exact's reset headers show), and reserves one call.
   With nothing left this minute it waits, outside the transaction, until the reset
   (+ a small margin for clock skew) — so we never provoke a 429. With nothing left today
   it raises ``ExactDailyBudgetExhausted``; the caller pauses the connection.
   ``acquire(wait=False)`` never sleeps: with nothing left this minute it raises
   ``ExactRateBudgetBusy`` (``reset_at``: when to try again). Background work that can be
   put off (posting a booking) uses it, so a worker is never asleep on one company's minute
   while other companies' work waits in the queue (docs/scale.md, "Fairness").
   Who still waits, and why: a person's request (a *Re-post*, settings validation: they
   asked for it now), and a sync's page loop. A sync follows Exact's ``__next`` links (a
   cursor), so putting it off mid-way would mean storing the cursor and resuming a
   half-copied mirror; and it costs little: a company has one sync at a time
   (``ExactConnection.sync_queued_at``), so it holds one worker at most, and a first sync
   takes a few calls a feed (5 for 50 invoices, ~20 for 12,000 open ones), so it only waits
   when the company's own receipts spent its minute, and then only that company's worker,
   for less than a minute.
2. ``record()`` stores what Exact's ``X-RateLimit-*`` headers (epoch ms) say. Within the same
   window it keeps the *lower* remaining count, because other processes' reserved calls may
   still be in flight and not yet counted by Exact.
3. ``after_429()`` believes the headers of a 429 and tells the caller how long to wait.

The budget row is keyed by (app, host, division): only answers from the Exact host that
holds the division count for it. Header values are clamped before they are stored: a reset
more than two minutes (minutely) or 25 hours (daily) ahead is not Exact's (its windows end at
the next minute and at 00:00 UTC) and becomes that boundary; counts stay within 0…1,000,000.
So no answer, however odd, can pause a company until 2099.

Clock and sleep are injectable, so tests run on the simulator's clock without real sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from exact.errors import ExactDailyBudgetExhausted, ExactError
from exact.locks import lock_row
from exact.models import ExactRateBudget

MARGIN_SECONDS = 0.25  # clock skew between us and Exact at a window edge
MAX_WAIT_LOOPS = 20
# Exact's windows end at the next minute boundary and at the next 00:00 UTC; a reset further
# ahead than these is clamped to that boundary.
MAX_MINUTELY_AHEAD = timedelta(minutes=2)
MAX_DAILY_AHEAD = timedelta(hours=25)
MAX_COUNT = 1_000_000  # Exact's limits are 60 and 5,000; the columns are 32-bit


class ExactRateBudgetBusy(ExactError):
    """This minute's budget of the division is spent; nothing was sent. Try again at
    ``reset_at`` (the minute's reset, plus the clock-skew margin). Not a failure: the caller
    puts the work off, it counts no attempt and shows no error."""

    def __init__(self, message: str, *, reset_at: datetime):
        super().__init__(message)
        self.reset_at = reset_at


def _from_ms(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _int(value: str | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return None if number is None else min(max(number, 0), MAX_COUNT)


def _clamp(reset: datetime | None, now: datetime, *, daily: bool) -> datetime | None:
    """A reset time as Exact could mean it: never beyond the window's own end."""
    if reset is None:
        return None
    if daily and reset > now + MAX_DAILY_AHEAD:
        return _next_midnight(now)
    if not daily and reset > now + MAX_MINUTELY_AHEAD:
        return _next_minute(now)
    return reset


def _next_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def _next_midnight(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


class RateLimiter:
    def __init__(
        self,
        *,
        client_id: str,
        division: int,
        host: str = "",
        clock: Callable[[], datetime] = timezone.now,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client_id = client_id
        self.host = host
        self.division = division
        self.clock = clock
        self.sleep = sleep
        self.waited_seconds = 0.0  # how long this limiter slept (for the benchmark)
        # The row as this limiter's last reservation left it: (limit, remaining, reset) per
        # window. ``record`` skips its write when the answer cannot change the row.
        self._reserved: dict[str, tuple] = {}

    # --- storage ---------------------------------------------------------------------------
    def _row_pk(self) -> int:
        row, _ = ExactRateBudget.objects.get_or_create(
            client_id=self.client_id, host=self.host, division=self.division
        )
        return row.pk

    def _locked(self) -> ExactRateBudget:
        if not hasattr(self, "_pk"):
            self._pk = self._row_pk()
        return lock_row(ExactRateBudget, self._pk)

    def _roll(self, row: ExactRateBudget, now: datetime) -> None:
        # A row stored before resets were clamped may still hold one years ahead.
        row.minutely_reset_at = _clamp(row.minutely_reset_at, now, daily=False)
        row.daily_reset_at = _clamp(row.daily_reset_at, now, daily=True)
        if row.minutely_reset_at and now >= row.minutely_reset_at:
            row.minutely_remaining = row.minutely_limit
            row.minutely_reset_at = _next_minute(now)
        if row.daily_reset_at and now >= row.daily_reset_at:
            row.daily_remaining = row.daily_limit
            row.daily_reset_at = _next_midnight(now)

    # --- the three steps -------------------------------------------------------------------
    def acquire(self, *, wait: bool = True) -> None:
        """Reserve one call. When this minute is spent: wait for the reset, or with
        ``wait=False`` raise ``ExactRateBudgetBusy`` at once (nothing reserved)."""
        if self._reserve_quick():
            return
        for _ in range(MAX_WAIT_LOOPS):
            with transaction.atomic():
                row = self._locked()
                now = self.clock()
                self._roll(row, now)
                if row.daily_remaining is not None and row.daily_remaining <= 0:
                    row.save()
                    raise ExactDailyBudgetExhausted(
                        "Exact's daily API budget for this division is spent",
                        reset_at=row.daily_reset_at,
                        status=None,
                    )
                if row.minutely_remaining is not None and row.minutely_remaining <= 0:
                    reset = row.minutely_reset_at or _next_minute(now)
                    seconds = max((reset - now).total_seconds(), 0) + MARGIN_SECONDS
                    row.save()
                else:
                    if row.minutely_remaining is not None:
                        row.minutely_remaining -= 1
                    if row.daily_remaining is not None:
                        row.daily_remaining -= 1
                    row.save()
                    self._reserved = {
                        "minutely": (
                            row.minutely_limit,
                            row.minutely_remaining,
                            row.minutely_reset_at,
                        ),
                        "daily": (row.daily_limit, row.daily_remaining, row.daily_reset_at),
                    }
                    return
            if not wait:
                raise ExactRateBudgetBusy(
                    "Exact's budget for this division is spent for this minute",
                    reset_at=now + timedelta(seconds=seconds),
                )
            self._wait(seconds)
        raise RuntimeError("rate limiter could not reserve a call")  # pragma: no cover

    def _reserve_quick(self) -> bool:
        """The common case in one statement (PostgreSQL): calls are left in both windows and
        neither has passed, so nothing rolls over and the reservation is a decrement. One
        round trip instead of four (BEGIN, SELECT … FOR UPDATE, UPDATE, COMMIT); the UPDATE
        takes the same row lock for its own duration, so the count stays exact. Anything else
        (a window to roll, a spent minute, a new row, SQLite) takes the locked path."""
        if db_connection.vendor != "postgresql":
            return False
        if not hasattr(self, "_pk"):
            self._pk = self._row_pk()
        now = self.clock()
        with db_connection.cursor() as cursor:
            cursor.execute(
                'UPDATE "exact_exactratebudget" SET '
                "minutely_remaining = minutely_remaining - 1, "
                "daily_remaining = daily_remaining - 1, updated_at = %s "
                "WHERE id = %s AND minutely_remaining > 0 AND daily_remaining > 0 "
                "AND minutely_reset_at > %s AND minutely_reset_at <= %s "
                "AND daily_reset_at > %s AND daily_reset_at <= %s "
                "RETURNING minutely_limit, minutely_remaining, minutely_reset_at, "
                "daily_limit, daily_remaining, daily_reset_at",
                [
                    timezone.now(),
                    self._pk,
                    now,
                    now + MAX_MINUTELY_AHEAD,
                    now,
                    now + MAX_DAILY_AHEAD,
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return False
        self._reserved = {"minutely": tuple(row[:3]), "daily": tuple(row[3:])}
        return True

    def busy_until(self) -> datetime | None:
        """When this minute's spent budget resets, or None while calls are left. A plain
        read (no lock, nothing reserved): a look before claiming work, so a company whose
        minute is spent is passed over without touching its bookings; ``acquire`` still
        decides."""
        row = budget_snapshot(client_id=self.client_id, division=self.division, host=self.host)
        if row is None or row.minutely_remaining is None or row.minutely_remaining > 0:
            return None
        now = self.clock()
        reset = _clamp(row.minutely_reset_at, now, daily=False)
        if reset is None or now >= reset:
            return None  # the window has rolled over: calls are left again
        return reset + timedelta(seconds=MARGIN_SECONDS)

    def record(self, headers) -> None:
        """Fold a response's X-RateLimit-* headers (clamped) into the shared budget."""
        now = self.clock()
        minutely = (
            _int(headers.get("X-RateLimit-Minutely-Limit")),
            _int(headers.get("X-RateLimit-Minutely-Remaining")),
            _clamp(_from_ms(headers.get("X-RateLimit-Minutely-Reset")), now, daily=False),
        )
        daily = (
            _int(headers.get("X-RateLimit-Limit")),
            _int(headers.get("X-RateLimit-Remaining")),
            _clamp(_from_ms(headers.get("X-RateLimit-Reset")), now, daily=True),
        )
        if minutely[1] is None and daily[1] is None:
            return
        if _unchanged(self._reserved.get("minutely"), minutely) and _unchanged(
            self._reserved.get("daily"), daily
        ):
            # Same windows, no fewer calls left than our own reservation left: the merge
            # below would keep the row as it is (it keeps the lower count, and other
            # processes only lower it within a window). One transaction a call saved.
            return
        with transaction.atomic():
            row = self._locked()
            if minutely[1] is not None:
                (
                    row.minutely_limit,
                    row.minutely_remaining,
                    row.minutely_reset_at,
                ) = _merge(
                    (row.minutely_limit, row.minutely_remaining, row.minutely_reset_at),
                    minutely,
                )
            if daily[1] is not None:
                row.daily_limit, row.daily_remaining, row.daily_reset_at = _merge(
                    (row.daily_limit, row.daily_remaining, row.daily_reset_at), daily
                )
            row.save()

    def after_429(self, headers) -> float:
        """Seconds to wait before retrying a 429; raises when the day's budget is spent."""
        self.record(headers)
        now = self.clock()
        daily_remaining = _int(headers.get("X-RateLimit-Remaining"))
        if daily_remaining is not None and daily_remaining <= 0:
            raise ExactDailyBudgetExhausted(
                "Exact's daily API budget for this division is spent",
                reset_at=_clamp(_from_ms(headers.get("X-RateLimit-Reset")), now, daily=True)
                or _next_midnight(now),
                status=429,
            )
        reset = _clamp(
            _from_ms(headers.get("X-RateLimit-Minutely-Reset")), now, daily=False
        ) or _next_minute(now)
        with transaction.atomic():
            row = self._locked()
            row.minutely_remaining = 0
            row.minutely_reset_at = reset
            row.save()
        return max((reset - now).total_seconds(), 0) + MARGIN_SECONDS

    def _wait(self, seconds: float) -> None:
        self.waited_seconds += seconds
        self.sleep(seconds)


def _unchanged(reserved: tuple | None, header: tuple) -> bool:
    """Whether folding ``header`` into a row whose window our reservation saw as
    ``reserved`` leaves that row as it is (``_merge``: same reset, the lower count)."""
    limit, remaining, reset = header
    if remaining is None:
        return True  # this window is not in the answer: the row keeps it
    if reserved is None or reserved[1] is None or reset is None:
        return False
    old_limit, old_remaining, old_reset = reserved
    return reset == old_reset and remaining >= old_remaining and (limit or old_limit) == old_limit


def _merge(stored: tuple, header: tuple) -> tuple:
    limit, remaining, reset = header
    old_limit, old_remaining, old_reset = stored
    if reset is None:
        return (limit or old_limit, remaining, old_reset)
    if old_reset is not None and reset < old_reset:
        return stored  # an answer from a window that has already rolled over
    if old_reset == reset and old_remaining is not None:
        return (limit or old_limit, min(old_remaining, remaining), reset)
    return (limit or old_limit, remaining, reset)


def budget_snapshot(
    *, client_id: str, division: int | None, host: str = ""
) -> ExactRateBudget | None:
    if not division:
        return None
    return ExactRateBudget.objects.filter(client_id=client_id, host=host, division=division).first()
