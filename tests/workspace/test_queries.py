"""The workspace answers in a fixed number of queries, however much data a company has."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.workspace.conftest import seed_attention, seed_chart, seed_month

pytestmark = pytest.mark.django_db

# The dashboard's own reads (16: connections, runs, attention, bookings, links, the month in
# three aggregates, the next run, the budget, two charts, the company list) plus what every
# admin page costs (session, user, memberships, permissions).
MAX_QUERIES = 20


def _count(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/admin/")
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("rows", [5, 50])
def test_the_dashboard_reads_a_fixed_number_of_queries(
    client, alpha, bravo, admin_of_a, django_assert_max_num_queries, rows
):
    client.force_login(admin_of_a)
    _count(client)  # the first visit also writes the chosen company into the session
    before = _count(client)
    seed_attention(alpha, n=rows, label="More ")
    seed_month(alpha, n=rows)
    seed_chart(alpha, n=rows)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get("/admin/")
    assert response.status_code == 200
    assert _count(client) == before


def test_a_superuser_over_many_companies_reads_the_same(client, alpha, bravo, superuser):
    from tests.factories import TenantFactory

    client.force_login(superuser)
    _count(client)
    before = _count(client)
    for n in range(30):
        TenantFactory(name=f"Extra {n:02d}", slug=f"extra-{n:02d}")
    assert _count(client) == before
