"""Hourly budgets for what the intake stores: bytes of webhook deliveries per tenant, and a
count of audit entries written for anonymous OAuth callbacks.

One row per (key, clock hour) holds what was used. Taking from a budget is ONE statement,
atomic under concurrency on PostgreSQL and SQLite alike: an INSERT … ON CONFLICT DO UPDATE
that adds the amount only while the total stays within the limit and returns the new total;
no row back means "over". It runs on its own (autocommit), before the request's transaction,
so the row lock lasts one statement and concurrent deliveries of a tenant do not queue
behind each other's event inserts.
"""

from __future__ import annotations

import logging
import time

from django.db import connection as db_connection

from gocardless.models import IntakeBudget

logger = logging.getLogger(__name__)

# Quoted once: "key" is a keyword in SQL dialects, and the names are ours, never input.
_q = db_connection.ops.quote_name
_T = _q(IntakeBudget._meta.db_table)
_KEY, _HOUR, _USED, _REFUSED = (_q(n) for n in ("key", "hour", "used", "refused"))


def current_hour(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 3600)


def budget_take(*, key: str, amount: int, limit: int, hour: int | None = None) -> bool:
    """Add ``amount`` to ``key``'s use this hour if the total stays within ``limit``; False
    (and the refusal counted, logged at the 1st, 10th, 100th… of the hour) when it would not."""
    hour = current_hour() if hour is None else hour
    if amount <= limit:
        with db_connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_T} ({_KEY}, {_HOUR}, {_USED}, {_REFUSED}) "  # noqa: S608 - our names
                f"VALUES (%s, %s, %s, 0) ON CONFLICT ({_KEY}, {_HOUR}) DO UPDATE "
                f"SET {_USED} = {_T}.{_USED} + excluded.{_USED} "
                f"WHERE {_T}.{_USED} + excluded.{_USED} <= %s RETURNING {_USED}",
                [key, hour, amount, limit],
            )
            if cursor.fetchone() is not None:
                return True
    refused = _refusal_count(key=key, hour=hour)
    if str(refused).rstrip("0") == "1":  # 1st, 10th, 100th…: a flood is not a log flood
        logger.warning(
            "gocardless intake: %s is over its hourly budget of %d (refusal %d this hour)",
            key, limit, refused,
        )
    return False


def _refusal_count(*, key: str, hour: int) -> int:
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_T} ({_KEY}, {_HOUR}, {_USED}, {_REFUSED}) "  # noqa: S608 - our names
            f"VALUES (%s, %s, 0, 1) ON CONFLICT ({_KEY}, {_HOUR}) DO UPDATE "
            f"SET {_REFUSED} = {_T}.{_REFUSED} + 1 RETURNING {_REFUSED}",
            [key, hour],
        )
        return cursor.fetchone()[0]


def budgets_prune(*, keep_hours: int = 48) -> int:
    """Forget budgets older than ``keep_hours`` (the retention job)."""
    return IntakeBudget.objects.filter(hour__lt=current_hour() - keep_hours).delete()[0]
