"""The limiter's non-blocking mode: background work that can be put off is told when the
division's minute resets instead of being put to sleep (docs/scale.md, "Fairness")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exact.client import ExactClient
from exact.models import ExactRateBudget
from exact.ratelimit import MARGIN_SECONDS, ExactRateBudgetBusy, RateLimiter
from tests.exact.conftest import status_count
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s: background work must not wait for the minute")


def _journals(api: ExactClient) -> list:
    return list(api.iter_rows("financial/Journals", select=("Code",)))


def test_spent_minute_raises_the_reset_instead_of_sleeping(sim, connection):
    sim.settings(minutely_limit=3)
    api = ExactClient(connection, clock=sim.clock.now, sleep=_never_sleep, wait_for_budget=False)
    for _ in range(3):
        _journals(api)
    with pytest.raises(ExactRateBudgetBusy) as busy:
        _journals(api)
    now = sim.clock.now()
    next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert busy.value.reset_at == next_minute + timedelta(seconds=MARGIN_SECONDS)
    assert status_count(sim, 429) == 0  # nothing was sent: no 429 provoked
    assert api.calls == 3  # the fourth never left
    # Nothing reserved by the refusal: after the reset the budget is whole again.
    sim.advance((next_minute - now).total_seconds() + 1)
    _journals(api)
    assert ExactRateBudget.objects.get(division=DIVISION).minutely_remaining == 2


def test_busy_until_reads_without_reserving(sim, connection):
    sim.settings(minutely_limit=2)
    api = ExactClient(connection, clock=sim.clock.now, sleep=_never_sleep, wait_for_budget=False)
    limiter = api.limiter(DIVISION)
    assert limiter.busy_until() is None  # nothing known yet: calls are left
    _journals(api)
    assert limiter.busy_until() is None
    assert ExactRateBudget.objects.get(division=DIVISION).minutely_remaining == 1  # not taken
    _journals(api)
    reset = limiter.busy_until()
    assert reset is not None and reset > sim.clock.now()
    sim.advance((reset - sim.clock.now()).total_seconds())
    assert limiter.busy_until() is None  # the window rolled over


def test_a_429_raises_busy_when_not_waiting(sim, connection):
    sim.inject("status", status=429, count=1, path="/financial/Journals")
    api = ExactClient(connection, clock=sim.clock.now, sleep=_never_sleep, wait_for_budget=False)
    with pytest.raises(ExactRateBudgetBusy) as busy:
        _journals(api)
    assert busy.value.reset_at > sim.clock.now()
    assert status_count(sim, 429) == 1


def test_waiting_stays_the_default(sim, connection, sim_sleep):
    """A sync and a person's request still wait for the minute (the default)."""
    sim.settings(minutely_limit=2)
    api = ExactClient(connection, clock=sim.clock.now, sleep=sim_sleep)
    for _ in range(3):
        _journals(api)
    assert len(sim_sleep.calls) == 1 and 0 < sim_sleep.calls[0] <= 61
    assert status_count(sim, 429) == 0


def test_limiter_acquire_without_wait(sim, connection):
    limiter = RateLimiter(
        client_id="sim-client-id", division=DIVISION, clock=sim.clock.now, sleep=_never_sleep
    )
    row = ExactRateBudget.objects.get_or_create(
        client_id="sim-client-id", host="", division=DIVISION
    )[0]
    row.minutely_limit, row.minutely_remaining = 60, 1
    row.minutely_reset_at = sim.clock.now() + timedelta(seconds=30)
    row.save()
    limiter.acquire(wait=False)
    with pytest.raises(ExactRateBudgetBusy) as busy:
        limiter.acquire(wait=False)
    assert busy.value.reset_at == row.minutely_reset_at + timedelta(seconds=MARGIN_SECONDS)
    row.refresh_from_db()
    assert row.minutely_remaining == 0


def _headers(*, remaining: int, reset, limit: int = 60) -> dict[str, str]:
    return {
        "X-RateLimit-Minutely-Limit": str(limit),
        "X-RateLimit-Minutely-Remaining": str(remaining),
        "X-RateLimit-Minutely-Reset": str(int(reset.timestamp() * 1000)),
    }


def test_record_writes_only_what_can_change_the_budget(sim, django_assert_num_queries):
    """An answer that leaves the shared row as it is costs no transaction; one that counts
    calls we did not (another process's, or Exact's own view) is folded in."""
    now = sim.clock.now()
    reset = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    ExactRateBudget.objects.create(
        client_id="sim-client-id",
        host="",
        division=DIVISION,
        minutely_limit=60,
        minutely_remaining=10,
        minutely_reset_at=reset,
    )
    limiter = RateLimiter(
        client_id="sim-client-id", division=DIVISION, clock=sim.clock.now, sleep=_never_sleep
    )
    limiter.acquire(wait=False)  # 10 -> 9
    with django_assert_num_queries(0):
        limiter.record(_headers(remaining=9, reset=reset))  # what we reserved: no change
    other = RateLimiter(
        client_id="sim-client-id", division=DIVISION, clock=sim.clock.now, sleep=_never_sleep
    )
    other.acquire(wait=False)  # another process: 9 -> 8
    limiter.record(_headers(remaining=9, reset=reset))  # skipped, and the 8 stays
    assert ExactRateBudget.objects.get(division=DIVISION).minutely_remaining == 8
    limiter.acquire(wait=False)  # 8 -> 7
    limiter.record(_headers(remaining=4, reset=reset))  # Exact counted more: folded in
    assert ExactRateBudget.objects.get(division=DIVISION).minutely_remaining == 4
    limiter.acquire(wait=False)  # 4 -> 3
    later = reset + timedelta(minutes=1)
    limiter.record(_headers(remaining=59, reset=later))  # a newer window: taken as it is
    budget = ExactRateBudget.objects.get(division=DIVISION)
    assert (budget.minutely_remaining, budget.minutely_reset_at) == (59, later)
