"""Issue 18's acceptance: the month under faults ends in exactly the state of the fault-free
month. Seeds come from MLC_CHAOS_SEEDS ("1 2 3"); `make chaos SEED=n` sets it. Without it the
test is skipped (tests/conftest.py): `make test` does not run the month."""

from __future__ import annotations

import os

import pytest

from tests.chaos.check import check

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def test_the_month_under_faults_equals_the_fault_free_month():
    seeds = [int(s) for s in os.environ.get("MLC_CHAOS_SEEDS", "").replace(",", " ").split()]
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    assert check(seeds, out=out), "\n".join(lines)
