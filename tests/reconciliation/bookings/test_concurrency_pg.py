"""Two (here: six) workers posting the same booking at once: one POST reaches Exact."""

from __future__ import annotations

import pytest

from reconciliation.bookings.models import Booking, BookingState
from reconciliation.bookings.posting import booking_post
from tests.concurrency import at_once
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
    results = at_once(*[lambda: booking_post(booking_pk=booking.pk)] * 6)
    assert results.count("posted") == 1
    assert set(results) <= {"posted", "in flight", "confirmed already"}
    assert len(world.ledger()) == 1
    assert Booking.objects.get(pk=booking.pk).state == BookingState.CONFIRMED
    assert world.open_amount(invoice) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_plan_payments_matched_at_once_never_pay_one_invoice_twice(tenant_a):
    """A webhook and the sweep match two payments of one subscription at the same moment;
    one open invoice fits both: one pays it, the other waits for a person."""
    import datetime as dt

    from core.audit import Actor
    from reconciliation.bookings.models import PlanMatchState
    from reconciliation.bookings.plan_matching import plan_payment_match
    from tests.gocardless.factories import PaymentFactory
    from tests.reconciliation.collection.selection_fixtures import (
        customer,
        gocardless_customer,
        invoice,
    )

    account, link, mandate = customer(tenant_a)
    gocardless_customer(tenant_a, link, mandate)
    day = dt.date(2026, 3, 10)
    invoice(tenant_a, account, "25.00", due=day)
    payments = [
        PaymentFactory(
            tenant=tenant_a,
            mandate_id=mandate.gocardless_id,
            amount=2500,
            charge_date=day,
            subscription_id="SB0000000077",
        )
        for _ in range(2)
    ]
    states = at_once(
        *(lambda p=p: plan_payment_match(payment=p, actor=Actor.system("t")).state
          for p in payments)
    )
    assert sorted(states) == [PlanMatchState.MATCHED, PlanMatchState.WAITING]
