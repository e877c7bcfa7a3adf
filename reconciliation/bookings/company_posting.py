"""Posting a company's due bookings in turns, and handing the turns out company by company.

Why turns: with one task per booking, a company with more bookings due than its Exact
division allows in a minute (60 calls) put every worker that took one of them to sleep until
the next minute, and everyone else's queued work waited behind it (docs/scale.md,
"Fairness"). Now:

- A **turn** (``bookings_company_post``) posts one company's due bookings, oldest first, one
  after another, never sleeping on Exact's budget (``wait_for_budget=False``). It ends when
  nothing of the company is due, after ``TURN`` bookings (then it queues itself again, behind
  everyone else's work: round robin), or when the division's minute is spent: then every
  due booking of the company gets ``next_retry_at`` = the minute's reset (no attempt
  counted, no error shown) and the worker is free for other companies. The sweep after the
  reset hands the company a new turn.
- **One turn per company at a time**, on every cluster and machine: a PostgreSQL session
  advisory lock on the tenant (released by the server if the worker dies, as
  reconciliation/collection/locking.py's). A task for a company whose turn is running
  returns at once; the running turn looks for new due bookings before it ends, and once
  more after letting go of the lock, so a booking queued in that moment is not left for the
  next sweep. SQLite (one machine, no advisory locks) runs turns side by side: correct, as
  exactly-once is the booking's own claim (posting.py), only less tidy.
- **Handing out** (``bookings_hand_out``, the scheduled sweep every minute): one turn queued
  per company with due bookings, the company whose oldest due booking waited longest first,
  so a company with 50,000 bookings gets one turn in the round like everyone else.

- **Queued once** (``company_turn_queue``): a receiver queues its company's turn only when
  none is queued and not yet started (``CompanyTurnQueued``, one row per company, deleted by
  the turn as it starts). A burst of receipts (a payout's confirmations, the morning's
  collection) is one task, not one per receipt: django-q2's work around a task (pushing,
  pulling, saving its result) cost more CPU than the post itself (docs/scale.md). A row
  older than ``QUEUED_FRESH`` is a turn lost with its worker or its broker: the next
  receipt, or the sweep, queues another.

``booking_post_task`` (one booking's task, as receivers queued before) still runs the turn of
the booking's company, for tasks already queued when an installation upgrades.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from django.db import connection as db_connection
from django.db.models import Min
from django.utils import timezone

from core.audit import Actor
from exact.client import ExactClient
from exact.errors import ExactError
from exact.models import ExactConnection
from tenants.activity import inactive_tenants_log

from .models import Booking, CompanyTurnQueued
from .posting import booking_post, bookings_due, bookings_gave_up_alert, company_put_off

logger = logging.getLogger(__name__)

# Bookings a turn takes at most before the company goes to the back of the queue: a minute
# of Exact's budget for one division, so a turn lasts seconds, not minutes.
TURN = 60
# How many times a turn looks again after letting go of the company (bookings that arrived
# while it was ending); bounded so a steady trickle cannot keep one worker forever.
RECHECKS = 2
# First key of the two-int advisory lock space: "bookings turn" (the tenant id is the second).
_ADVISORY_CLASS = 0x6D6C6342  # "mlcB"
COMPANY_TURN_TASK = "reconciliation.bookings.tasks.bookings_company_post_task"
# A queued turn not started within this long is taken for lost (its worker killed, the broker
# restarted with it): the next receipt or the sweep queues another. Longer than the queue
# usually waits; the sweep runs every minute anyway.
QUEUED_FRESH = timedelta(seconds=90)
# Outcomes that say the company's Exact connection cannot be used right now: the turn ends.
CONNECTION_DOWN = ("exact not usable", "failed: connection")


@contextlib.contextmanager
def _company_turn(tenant_id: int):
    """Yields True when this process has the company's turn (always on SQLite)."""
    if db_connection.vendor != "postgresql":
        yield True
        return
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_ADVISORY_CLASS, tenant_id])
        mine = bool(cursor.fetchone()[0])
    try:
        yield mine
    finally:
        if mine:
            try:
                with db_connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", [_ADVISORY_CLASS, tenant_id]
                    )
            except Exception:  # the connection is gone, and the server let go with it
                logger.warning("bookings: could not release company %s's turn", tenant_id)


def _due_pks(tenant_id: int, *, now, exclude: set[int], limit: int) -> list[int]:
    due = bookings_due(now=now).filter(tenant_id=tenant_id).exclude(pk__in=exclude)
    return list(due.values_list("pk", flat=True)[:limit])


def _client(tenant_id: int) -> ExactClient | None:
    """One client for the whole turn (one HTTP connection kept alive, one limiter), or None
    when the company has no usable connection (each booking then says why it waits)."""
    connection = ExactConnection.objects.filter(tenant_id=tenant_id).first()
    if connection is None or not connection.is_usable:
        return None
    try:
        client = ExactClient(connection, wait_for_budget=False)
        client.base_url  # noqa: B018 - a host the installation does not allow raises here
    except ExactError:
        return None
    return client


def _turn(tenant_id: int, *, now, api, turn: int, tried: set[int], outcomes: dict[str, int]) -> str:
    """Post the company's due bookings; returns why it stopped: "done", "turn" (``turn``
    bookings taken), "budget" (the division's minute is spent; the rest put off) or
    "connection" (Exact cannot be used for the company now)."""
    limiter = None
    taken = 0
    while True:
        at = now or timezone.now()
        pks = _due_pks(tenant_id, now=at, exclude=tried, limit=turn)
        if not pks:
            return "done"
        if limiter is None and api is None:  # built only when there is work to send
            api = _client(tenant_id)
        if limiter is None and api is not None:
            limiter = api.limiter(api.connection.division)
        # A look before the turn's first claim: a company whose minute is spent is passed
        # over without a claim made and undone. Within the turn ``acquire`` decides (a claim
        # is then handed back once, below): a query a booking saved.
        reset = limiter.busy_until() if limiter is not None and not taken else None
        if reset is not None:
            company_put_off(tenant_id=tenant_id, until=reset, now=at)
            outcomes["budget busy"] = outcomes.get("budget busy", 0) + 1
            return "budget"
        for pk in pks:
            if taken >= turn:
                return "turn"
            tried.add(pk)
            taken += 1
            try:
                outcome = booking_post(
                    booking_pk=pk,
                    api=api,
                    now=now,
                    actor=Actor.schedule("bookings.sweep"),
                    wait_for_budget=False,
                )
            except Exception:  # one bad booking must not stop the company's others
                logger.exception("booking %s: unexpected error while posting", pk)
                outcome = "error"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "budget busy":  # another process took the minute's last call
                until = Booking.objects.filter(pk=pk).values_list("next_retry_at", flat=True)
                company_put_off(tenant_id=tenant_id, until=until[0], now=at)
                return "budget"
            if outcome in CONNECTION_DOWN:
                # The company's next bookings would fail the same way, each using an
                # attempt: they wait for the next turn (the sweep, within the minute).
                return "connection"


def bookings_company_post(
    *,
    tenant_id: int,
    now=None,
    api: ExactClient | None = None,
    turn: int = TURN,
    booking_pk: int | None = None,
) -> dict[str, int]:
    """One turn of the company: its due bookings posted until none is left, ``turn`` are
    taken (then queued again, at the back) or its division's minute is spent (put off to
    the reset). Returns the outcomes counted (``posting.OUTCOME_WORDS``), or
    ``{"company busy": 1}`` when its turn runs elsewhere.

    ``booking_pk``: the receipt task's own booking. When the company's turn runs elsewhere,
    that one booking is posted on its own (never sleeping) instead of nothing: receipt tasks
    are queued company after company (one per receipt, services.py), and a task that only
    found the turn taken would make the workers work through a company's queued tasks
    before the next company's turn could start (measured: turns then ran one at a time).
    Both post the same company's bookings side by side, safely: each booking's claim decides
    who sends it."""
    outcomes: dict[str, int] = {}
    tried: set[int] = set()
    # Before the first look for due bookings: a receipt stored after that look finds no
    # queued turn and queues the next one (or this turn's rechecks take it).
    CompanyTurnQueued.objects.filter(tenant_id=tenant_id).delete()
    for _ in range(1 + RECHECKS):
        with _company_turn(tenant_id) as mine:
            if not mine:
                if booking_pk is not None and not outcomes:
                    return _post_alone(booking_pk, tenant_id=tenant_id, now=now, api=api)
                return outcomes or {"company busy": 1}
            stopped = _turn(tenant_id, now=now, api=api, turn=turn, tried=tried, outcomes=outcomes)
        if stopped == "turn":
            company_turn_queue(tenant_id=tenant_id)
            break
        # "done": due bookings that came in after the last look, while another task for the
        # company found the turn taken and returned, are this turn's to post.
        if stopped != "done" or not _due_pks(
            tenant_id, now=now or timezone.now(), exclude=tried, limit=1
        ):
            break
    return outcomes


def _post_alone(booking_pk: int, *, tenant_id: int, now, api) -> dict[str, int]:
    """One booking, beside its company's running turn, never sleeping on the budget."""
    outcome = booking_post(
        booking_pk=booking_pk,
        api=api,
        now=now,
        actor=Actor.schedule("bookings.sweep"),
        wait_for_budget=False,
    )
    if outcome == "budget busy":
        until = Booking.objects.filter(pk=booking_pk).values_list("next_retry_at", flat=True)
        company_put_off(tenant_id=tenant_id, until=until[0], now=now or timezone.now())
    return {outcome: 1}


def company_turn_queue(*, tenant_id: int, now=None) -> bool:
    """Queue the company's turn unless one is queued and not started (nor lost); True when
    this call queued it. One statement either way, on SQLite and PostgreSQL: the row is
    inserted, or taken over when it is older than ``QUEUED_FRESH``, or left (then nothing is
    queued)."""
    now = now or timezone.now()
    ops = db_connection.ops
    table = ops.quote_name(CompanyTurnQueued._meta.db_table)
    try:
        with db_connection.cursor() as cursor:
            # The table name is our model's; the values are parameters.
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, queued_at) VALUES (%s, %s) "  # noqa: S608
                "ON CONFLICT (tenant_id) DO UPDATE SET queued_at = excluded.queued_at "
                f"WHERE {table}.queued_at < %s RETURNING tenant_id",
                [
                    tenant_id,
                    ops.adapt_datetimefield_value(now),
                    ops.adapt_datetimefield_value(now - QUEUED_FRESH),
                ],
            )
            mine = cursor.fetchone() is not None
    except Exception:  # the database hiccuped: queue anyway (a turn too many is harmless)
        logger.warning("bookings: could not mark company %s's turn queued", tenant_id,
                       exc_info=True)
        mine = True
    return _queue_turn(tenant_id) if mine else False


def _queue_turn(tenant_id: int) -> bool:
    from django_q.tasks import async_task

    try:
        async_task(COMPANY_TURN_TASK, tenant_id)
    except Exception:  # the sweep hands the company a turn within the minute
        logger.warning("bookings: could not queue company %s's turn", tenant_id, exc_info=True)
        return False
    return True


def bookings_hand_out(*, now=None, limit: int = 1000) -> dict[str, int]:
    """The scheduled sweep: one turn queued per company with due bookings and no turn queued
    (at most ``limit`` companies a minute), the longest waiting first; then the gave-up
    alert."""
    now = now or timezone.now()
    inactive_tenants_log(bookings_due(now=now, active_only=False), job="bookings sweep")
    companies = [
        row["tenant_id"]
        for row in bookings_due(now=now)
        .order_by()
        .values("tenant_id")
        .annotate(first=Min("id"))
        .order_by("first")[:limit]
    ]
    queued = sum(company_turn_queue(tenant_id=tenant_id, now=now) for tenant_id in companies)
    try:
        bookings_gave_up_alert(now=now)
    except Exception:  # the next sweep tries again
        logger.exception("bookings: alerting about bookings that gave up failed")
    return {"companies handed a turn": queued} if queued else {}
