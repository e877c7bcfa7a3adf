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
