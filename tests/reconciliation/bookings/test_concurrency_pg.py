"""Two (here: six) workers posting the same booking at once: one POST reaches Exact."""

from __future__ import annotations

import threading

import pytest
from django.db import connection as db_connection

from reconciliation.bookings.models import Booking, BookingState
from reconciliation.bookings.posting import booking_post
from tests.reconciliation.bookings.factories import BookingFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_six_workers_post_one_booking_once(tenant_a, booking_settings, world):
    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "50.00")
    booking = BookingFactory(
        tenant=tenant_a,
        facts={
            "payment": "PM1",
            "invoice": invoice["InvoiceNumber"],
            "amount": 5000,
            "account": customer["account"],
            "attempt": "x/1",
        },
        amount_minor=5000,
    )
    world.ex_sim.inject("latency", ms=200)
    barrier = threading.Barrier(6)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(booking_post(booking_pk=booking.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert results.count("posted") == 1
    assert set(results) <= {"posted", "in flight", "confirmed already"}
    assert len(world.ledger()) == 1
    assert Booking.objects.get(pk=booking.pk).state == BookingState.CONFIRMED
    assert world.open_amount(invoice) == 0
