"""The one-statement reservation (PostgreSQL) never hands out more calls than are left:
eight workers ask at once for a minute with three calls left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exact.models import ExactRateBudget
from exact.ratelimit import ExactRateBudgetBusy, RateLimiter
from tests.concurrency import at_once

NOW = datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC)


def _never_sleep(seconds: float) -> None:
    raise AssertionError("a reservation without waiting slept")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_workers_share_three_calls_exactly():
    ExactRateBudget.objects.create(
        client_id="app",
        host="",
        division=7,
        minutely_limit=60,
        minutely_remaining=3,
        minutely_reset_at=NOW.replace(second=0) + timedelta(minutes=1),
        daily_limit=5000,
        daily_remaining=100,
        daily_reset_at=NOW.replace(hour=0, minute=0, second=0) + timedelta(days=1),
    )

    def reserve(limiter):
        try:
            limiter.acquire(wait=False)
        except ExactRateBudgetBusy as exc:
            return ("busy", exc.reset_at)
        return ("got", limiter._reserved["minutely"][1])

    said = at_once(
        *[reserve] * 8,
        prepare=lambda: RateLimiter(
            client_id="app", division=7, clock=lambda: NOW, sleep=_never_sleep
        ),
        timeout=30,
    )
    got = [value for kind, value in said if kind == "got"]
    busy = [value for kind, value in said if kind == "busy"]
    assert sorted(got) == [0, 1, 2]  # each reservation saw its own count
    assert len(busy) == 5
    row = ExactRateBudget.objects.get(division=7)
    assert (row.minutely_remaining, row.daily_remaining) == (0, 97)
