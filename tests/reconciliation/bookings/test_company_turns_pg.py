"""One turn per company at a time across workers (PostgreSQL advisory lock): three tasks of
one company started together; one posts, the others return at once; every entry once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection as db_connection

from reconciliation.bookings import company_posting
from reconciliation.bookings.models import Booking, BookingState
from tests.reconciliation.bookings.test_company_turns import receipts


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_tasks_of_one_company_make_one_turn(tenant_a, booking_settings, world):
    receipts(tenant_a, world, 4)
    world.ex_sim.inject("latency", ms=150)  # the turn lasts while the others try
    barrier = threading.Barrier(3)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(company_posting.bookings_company_post(tenant_id=tenant_a.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results, key=str) == [{"company busy": 1}, {"company busy": 1}, {"posted": 4}]
    assert set(Booking.objects.values_list("state", flat=True)) == {BookingState.CONFIRMED}
    assert len(world.ledger()) == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_receipt_task_posts_its_own_booking_beside_a_running_turn(
    tenant_a, booking_settings, world
):
    """Receipt tasks are queued company after company; one that found the turn taken and did
    nothing would leave the workers chewing through the company's tasks while its turn runs
    (turns then run one at a time). It posts its own booking instead."""
    import psycopg

    from reconciliation.bookings import tasks

    first, second = receipts(tenant_a, world, 2)
    params = db_connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as other:
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", [company_posting._ADVISORY_CLASS, tenant_a.pk]
        )  # the company's turn runs in another worker
        assert tasks.booking_post_task(second.pk) == {"posted": 1}
    states = dict(Booking.objects.values_list("pk", "state"))
    assert states == {first.pk: BookingState.PENDING, second.pk: BookingState.CONFIRMED}
    assert len(world.ledger()) == 1
