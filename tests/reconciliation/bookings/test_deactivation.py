"""Nothing is posted to Exact for an inactive tenant: the booking stays pending, untouched, and
the first sweep after `tenants activate` posts it once."""

from __future__ import annotations

import logging

import pytest

from core.audit import Actor
from reconciliation.bookings.models import Booking, BookingState
from reconciliation.bookings.posting import booking_post, booking_repost, bookings_sweep
from tenants.services import tenant_set_active
from tests.reconciliation.bookings.factories import BookingFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
FIELDS = ("state", "attempts", "next_retry_at", "claimed_at", "last_error", "outcome_unknown")


@pytest.fixture
def receipt(tenant_a, booking_settings, world):
    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "121.00")
    return BookingFactory(
        tenant=tenant_a,
        facts={
            "payment": "PM0001",
            "invoice": invoice["InvoiceNumber"],
            "amount": 12100,
            "account": customer["account"],
            "attempt": f"{invoice['TermID']}/1",
        },
        gocardless_id="PM0001",
        key="receipt:PM0001:1",
    )


def state(booking) -> dict:
    row = Booking.objects.get(pk=booking.pk)
    return {name: getattr(row, name) for name in FIELDS}


def exact_calls(sim) -> int:
    return sum(row.get("total", 0) for row in sim.call_counts().values())


def test_sweep_leaves_an_inactive_tenants_bookings_pending(receipt, world, ex_sim, caplog):
    tenant_set_active(tenant=receipt.tenant, active=False, actor=ACTOR)
    before = state(receipt)
    ex_sim.call_counts(reset=True)

    with caplog.at_level(logging.INFO):
        assert bookings_sweep() == {}
        assert bookings_sweep() == {}
    assert state(receipt) == before and before["state"] == BookingState.PENDING
    assert world.ledger() == [] and exact_calls(ex_sim) == 0
    skipped = [r for r in caplog.records if "inactive" in r.getMessage()]
    assert skipped and all(r.levelno == logging.INFO for r in skipped)

    tenant_set_active(tenant=receipt.tenant, active=True, actor=ACTOR)
    assert bookings_sweep() == {"posted": 1}
    assert bookings_sweep() == {}
    assert len(world.ledger()) == 1
    assert state(receipt)["state"] == BookingState.CONFIRMED


def test_post_and_repost_refuse_an_inactive_tenant(receipt, world, ex_sim):
    tenant_set_active(tenant=receipt.tenant, active=False, actor=ACTOR)
    before = state(receipt)
    ex_sim.call_counts(reset=True)

    assert booking_post(booking_pk=receipt.pk) == "tenant inactive"
    assert booking_repost(booking=receipt, actor=ACTOR) == "tenant inactive"
    assert state(receipt) == before
    assert world.ledger() == [] and exact_calls(ex_sim) == 0

    tenant_set_active(tenant=receipt.tenant, active=True, actor=ACTOR)
    assert booking_post(booking_pk=receipt.pk) == "posted"
    assert booking_post(booking_pk=receipt.pk) == "confirmed already"
    assert len(world.ledger()) == 1
