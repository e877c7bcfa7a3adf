"""One turn per company at a time across workers (PostgreSQL advisory lock): three tasks of
one company started together; one posts, the others return at once; every entry once."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection

from reconciliation.bookings import company_posting
from reconciliation.bookings.models import Booking, BookingState
from tests.concurrency import at_once
from tests.reconciliation.bookings.test_company_turns import receipts


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_tasks_of_one_company_make_one_turn(tenant_a, booking_settings, world):
    receipts(tenant_a, world, 4)
    world.ex_sim.inject("latency", ms=150)  # the turn lasts while the others try
    results = at_once(
        *[lambda: company_posting.bookings_company_post(tenant_id=tenant_a.pk)] * 3
    )
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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_post_reads_its_company_in_the_claims_locking_query(tenant_a, booking_settings, world):
    """Each post's claim reads the booking, its company, the company's Exact connection and
    booking settings in its one locking query, and writes only what a claim changes: per
    post 10 statements (was 12; the 200-company bench's bookings phase is CPU-bound)."""
    from django.test.utils import CaptureQueriesContext

    receipts(tenant_a, world, 3)
    with CaptureQueriesContext(db_connection) as queries:
        assert company_posting.bookings_company_post(tenant_id=tenant_a.pk) == {"posted": 3}
    sql = [q["sql"] for q in queries.captured_queries]
    locking = [s for s in sql if "FOR UPDATE OF" in s and '"bookings_booking"' in s]
    assert len(locking) == 6  # the claim's and the confirmation's, per post
    claims = [s for s in locking if '"exact_exactconnection"' in s]
    assert len(claims) == 3 and all('"bookings_bookingsettings"' in s for s in claims)
    per_post = [s for s in sql if s.startswith("SELECT") and "FOR UPDATE" not in s and (
        'FROM "exact_exactconnection"' in s or 'FROM "bookings_bookingsettings"' in s)]
    assert len(per_post) <= 1  # the turn's client, once
    claim_updates = [s for s in sql if s.startswith('UPDATE "bookings_booking"')
                     and "'sent'" in s]
    assert len(claim_updates) == 3
    assert all('"key" =' not in s and '"reference" =' not in s for s in claim_updates)
