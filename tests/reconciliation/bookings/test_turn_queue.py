"""A company's posting turn is queued once for a burst of receipts: one task posts them all,
instead of one django-q2 task per receipt (company_posting.company_turn_queue). A turn lost
with its worker or broker is queued again after ``QUEUED_FRESH``; the turn's start lets the
next receipt queue the next turn."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from reconciliation.bookings import company_posting
from reconciliation.bookings.models import Booking, CompanyTurnQueued
from reconciliation.bookings.services import booking_create
from tests.factories import TenantFactory
from tests.reconciliation.bookings.factories import BookingFactory

pytestmark = pytest.mark.django_db

TURN = company_posting.COMPANY_TURN_TASK


@pytest.fixture
def queued(monkeypatch):
    calls: list = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *a, **k: calls.append((func, a)))
    return calls


def _receipt(tenant, n: int):
    return booking_create(
        tenant=tenant,
        rule="receipt",
        gocardless_id=f"PM{n:04d}",
        facts={"payment": f"PM{n:04d}", "invoice": str(n), "amount": 1000, "account": "x"},
        currency="EUR",
        amount_minor=1000,
        booking_date=date(2027, 2, 1),
    )


def test_a_burst_of_receipts_queues_one_turn_per_company(
    queued, booking_settings, tenant_a, django_capture_on_commit_callbacks
):
    other = TenantFactory(name="Other BV")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            _receipt(tenant_a, n)
    with django_capture_on_commit_callbacks(execute=True):
        BookingFactory(tenant=other)  # made directly: queue as its receiver would
        company_posting.company_turn_queue(tenant_id=other.pk)
    assert Booking.objects.filter(tenant=tenant_a).count() == 5
    assert queued == [(TURN, (tenant_a.pk,)), (TURN, (other.pk,))]


def test_the_turn_starting_lets_the_next_receipt_queue_the_next_turn(queued, tenant_a):
    assert company_posting.company_turn_queue(tenant_id=tenant_a.pk) is True
    assert company_posting.company_turn_queue(tenant_id=tenant_a.pk) is False
    # The turn starts (nothing due for this company): its queued mark is gone ...
    assert company_posting.bookings_company_post(tenant_id=tenant_a.pk) == {}
    assert not CompanyTurnQueued.objects.filter(tenant=tenant_a).exists()
    # ... so a receipt stored after its look for due bookings queues the next turn.
    assert company_posting.company_turn_queue(tenant_id=tenant_a.pk) is True
    assert queued == [(TURN, (tenant_a.pk,))] * 2


def test_a_turn_lost_with_its_worker_is_queued_again_after_a_while(queued, tenant_a):
    now = timezone.now()
    assert company_posting.company_turn_queue(tenant_id=tenant_a.pk, now=now)
    later = now + company_posting.QUEUED_FRESH - timedelta(seconds=1)
    assert not company_posting.company_turn_queue(tenant_id=tenant_a.pk, now=later)
    lost = now + company_posting.QUEUED_FRESH + timedelta(seconds=1)
    assert company_posting.company_turn_queue(tenant_id=tenant_a.pk, now=lost)
    assert CompanyTurnQueued.objects.get(tenant=tenant_a).queued_at == lost
    # Taken over: the next look counts from the new mark.
    again = lost + timedelta(seconds=1)
    assert not company_posting.company_turn_queue(tenant_id=tenant_a.pk, now=again)
    assert len(queued) == 2


def test_the_sweep_passes_over_a_company_whose_turn_is_queued(queued):
    waiting, fresh = TenantFactory(name="Waiting"), TenantFactory(name="Fresh")
    BookingFactory(tenant=waiting)
    BookingFactory(tenant=fresh)
    now = timezone.now()
    company_posting.company_turn_queue(tenant_id=waiting.pk, now=now - timedelta(seconds=10))
    assert company_posting.bookings_hand_out(now=now) == {"companies handed a turn": 1}
    assert queued == [(TURN, (waiting.pk,)), (TURN, (fresh.pk,))]
    # A minute on, the first company's turn has still not started: lost, queued again.
    later = now + company_posting.QUEUED_FRESH
    assert company_posting.bookings_hand_out(now=later) == {"companies handed a turn": 1}
    assert queued[-1] == (TURN, (waiting.pk,))


def test_a_database_hiccup_while_marking_queues_the_turn_anyway(queued, tenant_a, monkeypatch):
    real = company_posting.db_connection

    class Broken:
        ops = real.ops

        def cursor(self):
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(company_posting, "db_connection", Broken())
    assert company_posting.company_turn_queue(tenant_id=tenant_a.pk) is True
    assert queued == [(TURN, (tenant_a.pk,))]


def test_a_broker_outage_leaves_the_booking_to_the_sweep(tenant_a, monkeypatch):
    from reconciliation.bookings import services

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("django_q.tasks.async_task", down)
    booking = BookingFactory(tenant=tenant_a)
    services.booking_post_enqueue(booking_pk=booking.pk, tenant_id=tenant_a.pk)  # logged
    assert Booking.objects.get(pk=booking.pk).state == "pending"
