"""Races on purpose: the PostgreSQL tests start the same work in several threads at the same
instant (a barrier), as several workers or clusters would, and then check that the database's
locks and constraints let exactly one of them do it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections


def at_once(
    *calls: Callable[..., Any],
    prepare: Callable[[], Any] | Sequence[Callable[[], Any]] | None = None,
    timeout: float = 60.0,
) -> list:
    """Run each of ``calls`` in a thread of its own, all released together by a barrier once
    each thread is set up: ``prepare()`` (optional; or one per call) runs in the thread
    before the barrier and its result is passed to the call. Each thread closes its database
    connections when done. Returns the results in the order of ``calls``; the first error a
    thread raised is raised here, and a thread still running after ``timeout`` seconds fails
    the test."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    preparers = [prepare] * len(calls) if prepare is None or callable(prepare) else prepare
    assert len(preparers) == len(calls), "one prepare per call"

    def run(index: int, call: Callable[..., Any]) -> None:
        try:
            setup = preparers[index]
            prepared = setup() if setup is not None else None
            barrier.wait(timeout=10)
            results[index] = call(prepared) if setup is not None else call()
        except BaseException as exc:  # raised in the test's thread below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    hung = sum(thread.is_alive() for thread in threads)
    assert hung == 0, f"{hung} of {len(threads)} threads still running after {timeout} s"
    return results
