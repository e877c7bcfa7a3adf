"""Lock order of plan payment matching against GoCardless event processing (PostgreSQL).

Event processing locks a payment's mirror row first (``mirrors_lock``: SELECT … FOR UPDATE)
and only then touches its plan match and the invoice's receivable (``plan_payment_seen``).
``plan_payment_match`` run by the plan-payments sweep must take the payment first as well:
it used to lock the receivable (``_still_free``) and insert / lock the match row first, and
to reach the payment only through the match row's foreign key, which Django makes
``DEFERRABLE INITIALLY DEFERRED`` — a FOR KEY SHARE on the payment at COMMIT, while still
holding the receivable and the uncommitted match row. The chaos month (tests/chaos) ran
into the resulting ``deadlock detected``; these tests replay it step by step, with the event
worker holding the payment while the sweep runs.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import DatabaseError, transaction
from django.db import connection as db_connection

from core.audit import Actor
from exact.locks import lock_row
from exact.models import ExactReceivable
from gocardless.mirrors import mirrors_lock
from reconciliation.bookings.models import PlanMatchState, PlanPaymentMatch
from reconciliation.bookings.plan_bookings import plan_payment_seen
from reconciliation.bookings.plan_matching import plan_payment_match
from tests.gocardless.factories import PaymentFactory
from tests.reconciliation.collection.selection_fixtures import (
    customer,
    gocardless_customer,
    invoice,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DAY = dt.date(2026, 3, 10)
WAIT = 15  # seconds: a bound for a step that takes milliseconds, never a sleep


def _plan_payment(tenant, mandate, *, status="confirmed"):
    return PaymentFactory(
        tenant=tenant,
        mandate_id=mandate.gocardless_id,
        amount=2500,
        currency="EUR",
        charge_date=DAY,
        status=status,
        subscription_id="SB0000000042",
    )


def _backend_pid() -> int:
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _blocked_by(waiter: threading.Thread, waiter_pid: int, holder_pid: int) -> bool:
    """Does ``waiter``'s backend wait for a lock ``holder``'s backend holds? False as soon
    as the waiter's thread has ended (it never waited), or after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if not waiter.is_alive():
            return False
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_blocking_pids(%s)", [waiter_pid])
            if holder_pid in cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


def _free(model, pk) -> bool:
    """From a third connection: can the row be locked right now (NOWAIT)?"""
    try:
        with transaction.atomic():
            list(model.objects.select_for_update(nowait=True).filter(pk=pk))
        return True
    except DatabaseError:
        return False


class _Worker(threading.Thread):
    """A thread with its own database connection; keeps its result, error and backend pid."""

    def __init__(self, body):
        super().__init__(daemon=True)
        self.body = body
        self.result = self.error = self.pid = None
        self.started_db = threading.Event()

    def run(self):
        try:
            self.pid = _backend_pid()
            self.started_db.set()
            self.result = self.body(self)
        except Exception as exc:  # reported by the test's assertions
            self.error = exc
        finally:
            self.started_db.set()
            db_connection.close()


def _event_worker(tenant, payment, *, holding: threading.Event, go_on: threading.Event, then):
    """Event processing of ``payment``'s event: the mirror row locked first, as
    ``gocardless.event_processing`` does, then (once the test says so) ``then(row)``."""

    def body(worker):
        with transaction.atomic():
            rows, _new = mirrors_lock(
                tenant=tenant, resource_type="payments", gocardless_ids=[payment.gocardless_id]
            )
            holding.set()
            if not go_on.wait(WAIT * 2):
                raise TimeoutError("the test never let the event worker go on")
            return then(rows[payment.gocardless_id])

    return _Worker(body)


def _sweep_worker(payment):
    """The plan-payments sweep matching the same payment."""
    return _Worker(
        lambda worker: plan_payment_match(
            payment=payment, actor=Actor.schedule("plan-payments-match")
        )
    )


def _run(event_worker: _Worker, sweep: _Worker, holding: threading.Event, look) -> dict:
    """Start the event worker; once it holds the payment start the sweep; once the sweep
    waits for the event worker (or has ended), ``look()`` from this, a third, connection;
    then let the event worker go on and wait for both."""
    event_worker.start()
    assert holding.wait(WAIT), f"the event worker never locked the payment: {event_worker.error!r}"
    sweep.start()
    assert sweep.started_db.wait(WAIT)
    seen = {"sweep waits for the event worker": _blocked_by(sweep, sweep.pid, event_worker.pid)}
    seen.update(look())
    return seen


def _finish(event_worker: _Worker, sweep: _Worker, go_on: threading.Event) -> None:
    go_on.set()
    for worker in (event_worker, sweep):
        worker.join(WAIT * 3)
        assert not worker.is_alive(), "a worker is still stuck on a lock"


def test_sweep_and_event_worker_matching_a_new_plan_payment_do_not_deadlock(tenant_a):
    """A plan payment nobody has matched yet, one open invoice fits. Its event's worker holds
    the payment's mirror row; the sweep tries to match it. The sweep must wait for the
    payment before it locks the invoice or inserts the match row: otherwise it holds both
    and waits (at COMMIT, for the match's foreign key) for the payment, while the event
    worker, matching the same payment, waits for the sweep's match row → deadlock."""
    account, link, mandate = customer(tenant_a)
    gocardless_customer(tenant_a, link, mandate)
    receivable = invoice(tenant_a, account, "25.00", due=DAY)
    payment = _plan_payment(tenant_a, mandate)
    holding, go_on = threading.Event(), threading.Event()
    event_worker = _event_worker(
        tenant_a,
        payment,
        holding=holding,
        go_on=go_on,
        then=lambda row: plan_payment_seen(tenant=tenant_a, payment=row, event=None),
    )
    sweep = _sweep_worker(payment)
    try:
        seen = _run(
            event_worker,
            sweep,
            holding,
            lambda: {"invoice's receivable free": _free(ExactReceivable, receivable.pk)},
        )
    finally:
        _finish(event_worker, sweep, go_on)

    # One comparison, so that a failure shows the errors and what was seen together.
    assert ((event_worker.error, sweep.error), seen) == (
        (None, None),
        {"sweep waits for the event worker": True, "invoice's receivable free": True},
    )
    match = PlanPaymentMatch.objects.get(payment=payment)
    assert match.state == PlanMatchState.MATCHED
    assert match.receivable_exact_id == receivable.exact_id
    # The event worker matched it; the sweep, once it had the payment, found its decision.
    assert event_worker.result.pk == sweep.result.pk == match.pk
    assert sweep.result.state == PlanMatchState.MATCHED


def test_sweep_retrying_a_waiting_match_takes_the_payment_before_the_match_row(tenant_a):
    """A plan payment that waited for its invoice, which has arrived since. While the event
    worker holds the payment, the sweep holds neither the match row nor the receivable
    (both lockable from a third connection); the event worker then takes the match row as
    event processing does, commits, and the sweep matches the payment."""
    account, link, mandate = customer(tenant_a)
    gocardless_customer(tenant_a, link, mandate)
    payment = _plan_payment(tenant_a, mandate)
    waiting = plan_payment_match(payment=payment, actor=Actor.system("t"))
    assert waiting.state == PlanMatchState.WAITING  # no invoice yet
    receivable = invoice(tenant_a, account, "25.00", due=DAY)
    holding, go_on = threading.Event(), threading.Event()
    event_worker = _event_worker(
        tenant_a,
        payment,
        holding=holding,
        go_on=go_on,
        then=lambda row: lock_row(PlanPaymentMatch, waiting.pk).state,
    )
    sweep = _sweep_worker(payment)
    try:
        seen = _run(
            event_worker,
            sweep,
            holding,
            lambda: {
                "match row free": _free(PlanPaymentMatch, waiting.pk),
                "invoice's receivable free": _free(ExactReceivable, receivable.pk),
            },
        )
    finally:
        _finish(event_worker, sweep, go_on)

    assert ((event_worker.error, sweep.error), seen) == (
        (None, None),
        {
            "sweep waits for the event worker": True,
            "match row free": True,
            "invoice's receivable free": True,
        },
    )
    assert event_worker.result == PlanMatchState.WAITING  # it got the row before the sweep
    match = PlanPaymentMatch.objects.get(pk=waiting.pk)
    assert sweep.result.pk == match.pk
    assert match.state == PlanMatchState.MATCHED
    assert match.receivable_exact_id == receivable.exact_id
