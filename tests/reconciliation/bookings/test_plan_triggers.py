"""When plan payments are matched besides their money signals: after an Exact receivables
sync that brought or changed invoices (queued, never failing the sync), and by the sweep over
active companies (a company whose matching fails does not stop the others)."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciliation.bookings import plan_bookings, receivers
from reconciliation.bookings.models import PlanMatchState, PlanPaymentMatch
from tests.exact.factories import SyncRunFactory
from tests.gocardless.factories import PaymentFactory
from tests.reconciliation.collection.selection_fixtures import (
    customer,
    gocardless_customer,
    invoice,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 10)


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "core.queue.enqueue_on_commit", lambda func, *args, group: calls.append((func, args))
    )
    return calls


@pytest.mark.parametrize(
    ("fields", "queues"),
    [
        ({"entity": "receivables", "created": 1}, True),
        ({"entity": "receivables", "updated": 2}, True),
        ({"entity": "receivables"}, False),  # nothing changed
        ({"entity": "accounts", "created": 1}, False),
        ({"entity": "receivables", "created": 1, "error": "Exact said no"}, False),
        ({"entity": "receivables", "created": 1, "finished_at": None}, False),
    ],
)
def test_a_receivables_sync_that_changed_invoices_queues_matching(tenant_a, queued, fields,
                                                                    queues):
    run = SyncRunFactory(tenant=tenant_a, **fields)
    receivers.on_sync_run_saved(None, instance=run, created=False)
    expected = [("reconciliation.bookings.tasks.plan_payments_match_task", (tenant_a.pk,))]
    assert queued == (expected if queues else [])


def test_the_sweep_matches_every_active_company_and_survives_one_failing(
    tenant_a, tenant_b, monkeypatch
):
    for tenant in (tenant_a, tenant_b):
        account, link, mandate = customer(tenant)
        gocardless_customer(tenant, link, mandate)
        invoice(tenant, account, "25.00", due=DAY)
        PaymentFactory(tenant=tenant, mandate_id=mandate.gocardless_id, amount=2500,
                       charge_date=DAY, subscription_id="SB0000000005")
    real = plan_bookings.plan_payments_match

    def flaky(*, tenant, actor):
        if tenant.pk == tenant_a.pk:
            raise RuntimeError("database hiccup")
        return real(tenant=tenant, actor=actor)

    monkeypatch.setattr(plan_bookings, "plan_payments_match", flaky)
    assert plan_bookings.plan_payments_sweep() == {"matched": 1, "waiting": 0}
    assert PlanPaymentMatch.objects.get().tenant == tenant_b

    monkeypatch.setattr(plan_bookings, "plan_payments_match", real)
    tenant_b.is_active = False
    tenant_b.save()
    assert plan_bookings.plan_payments_sweep() == {"matched": 1, "waiting": 0}
    assert set(PlanPaymentMatch.objects.values_list("state", flat=True)) == {
        PlanMatchState.MATCHED
    }
    assert plan_bookings.plan_payments_sweep() == {"matched": 0, "waiting": 0}  # done
