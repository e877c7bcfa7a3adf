"""One definition of *needs attention* (``collection.selectors.attempts_needing_attention``):
the admin's state filter, the count on the runs list, the daily e-mail and the demo's summary
list the same attempts. A failed payment whose retry is scheduled is *retry scheduled*, not
*needs attention* (issue 15: the demo listed it while the admin's filter showed 0)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from demo.run import DemoResult
from demo.summary import summary_build, summary_text
from reconciliation.collection import attention
from reconciliation.collection.models import AttemptState
from reconciliation.collection.selectors import (
    attempts_needing_attention,
    attempts_retry_scheduled,
)
from tests.reconciliation.collection.factories import CollectionAttemptFactory

pytestmark = pytest.mark.django_db

ATTEMPTS = "admin:collection_collectionattempt_changelist"
RUNS = "admin:collection_collectionrun_changelist"


@pytest.fixture
def attempts(tenant_a, tenant_b):
    """One attempt in every state a person might ask about, plus another tenant's."""
    needs = [
        CollectionAttemptFactory(tenant=tenant_a, flag="Charged back by the customer"),
        CollectionAttemptFactory(tenant=tenant_a, flag="Payment failed: retries used up"),
    ]
    retry = CollectionAttemptFactory(
        tenant=tenant_a,
        state=AttemptState.RETRY_SCHEDULED,
        flag="",
        failure_cause="insufficient_funds",
        failure_description="The customer's account had insufficient funds. More words.",
        next_retry_on=dt.date(2026, 3, 20),
    )
    others = [
        CollectionAttemptFactory(
            tenant=tenant_a, state=AttemptState.PENDING, flag="", last_error="timeout"
        ),
        CollectionAttemptFactory(
            tenant=tenant_a,
            state=AttemptState.SUBMITTED,
            flag="Failed once; GoCardless Success+ retries it",
        ),
        CollectionAttemptFactory(tenant=tenant_a, state=AttemptState.RESOLVED, flag="old news"),
    ]
    CollectionAttemptFactory(tenant=tenant_b)  # needs attention, but another company's
    return {"needs": needs, "retry": retry, "others": others}


def test_the_definition(tenant_a, attempts):
    needing = attempts_needing_attention(tenant=tenant_a)
    assert sorted(a.pk for a in needing) == sorted(a.pk for a in attempts["needs"])
    assert list(attempts_retry_scheduled(tenant=tenant_a)) == [attempts["retry"]]
    assert attempts_needing_attention().count() == 3  # every tenant


def test_admin_filter_and_runs_count_use_it(client, tenant_a, viewer_of_a, attempts):
    client.force_login(viewer_of_a)
    response = client.get(reverse(ATTEMPTS), {"state": "needs_attention"})
    listed = sorted(a.pk for a in response.context["cl"].result_list)
    assert listed == sorted(a.pk for a in attempts_needing_attention(tenant=tenant_a))
    assert "Attempts needing attention: 2<" in client.get(reverse(RUNS)).content.decode()


def test_daily_email_lists_the_same_attempts(monkeypatch, tenant_a, attempts):
    listed = {}

    def capture(*, tenant, candidates, **_kwargs):
        listed[tenant.pk] = sorted(a.pk for a in candidates)
        return len(listed[tenant.pk])

    monkeypatch.setattr(attention, "alert_new_objects", capture)
    attention.attention_digests_send(now=dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC))
    assert listed[tenant_a.pk] == sorted(a.pk for a in attempts_needing_attention(tenant=tenant_a))


def test_demo_summary_says_the_same_as_the_admin(tenant_a, attempts):
    summary = summary_build(
        tenant=tenant_a,
        result=DemoResult(tenant_id=tenant_a.pk),
        admin_url="http://127.0.0.1:8000/admin/",
        login=("demo", "demo-password"),
    )
    needs = attempts_needing_attention(tenant=tenant_a)
    assert len(summary.attention) == needs.count() == 2
    assert all(str(a.invoice_number) in " ".join(summary.attention) for a in needs)
    retry = attempts["retry"]
    assert not any(str(retry.invoice_number) in line for line in summary.attention)
    (line,) = summary.retries
    assert str(retry.invoice_number) in line and "2026-03-20" in line
    assert "The customer's account had insufficient funds" in line
    text = summary_text(summary)
    assert "Needs attention: 2 (admin: Collection attempts, state filter Needs attention)" in text
    needs_section = text.split("Needs attention: 2")[1].split("Retry scheduled")[0]
    assert str(retry.invoice_number) not in needs_section
