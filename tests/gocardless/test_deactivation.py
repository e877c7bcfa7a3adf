"""The GoCardless polling job leaves an inactive tenant alone (no API call, cursor unchanged)
and catches up once after `tenants activate`."""

import logging

import pytest

from core.audit import Actor
from gocardless.client import GoCardlessClient
from gocardless.models import GoCardlessConnection, GoCardlessEvent
from gocardless.polling import events_poll_all
from tenants.services import tenant_set_active
from tests.gocardless.conftest import sim_connection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


@pytest.fixture
def sim(gocardless_simulator, settings):
    settings.GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS = 0
    gocardless_simulator.set_webhook_url("http://127.0.0.1:9/unused")
    gocardless_simulator.set_webhooks_enabled(False)
    return gocardless_simulator


def test_poll_skips_an_inactive_tenant_and_catches_up_after_activation(sim, tenant_a, caplog):
    connection = sim_connection(sim, tenant=tenant_a)
    api = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)
    mandate = sim.seed(mandates=[{"scheme": "sepa_core"}])["mandates"][0]
    api.payment_create(
        params={"amount": 1000, "currency": "EUR", "links": {"mandate": mandate}},
        idempotency_key="deactivated-poll",
    )
    tenant_set_active(tenant=tenant_a, active=False, actor=ACTOR)
    calls = sim.call_counts()
    cursor = GoCardlessConnection.objects.values_list(
        "events_cursor_created_at", "events_cursor_id"
    ).get(pk=connection.pk)

    with caplog.at_level(logging.INFO):
        assert events_poll_all() == {}
    assert sim.call_counts() == calls
    assert GoCardlessEvent.objects.count() == 0
    assert (
        GoCardlessConnection.objects.values_list(
            "events_cursor_created_at", "events_cursor_id"
        ).get(pk=connection.pk)
        == cursor
    )
    assert any(
        r.levelno == logging.INFO and "inactive tenant(s) alpha" in r.getMessage()
        for r in caplog.records
    )

    tenant_set_active(tenant=tenant_a, active=True, actor=ACTOR)
    results = events_poll_all()
    assert results[tenant_a.pk]["seen"] == len(sim.events()) > 0
    assert GoCardlessEvent.objects.count() == len(sim.events())
    assert events_poll_all()[tenant_a.pk]["queued"] == 0


def test_events_of_an_inactive_tenant_wait_unprocessed_and_are_applied_once_after_activation(
    sim, tenant_a
):
    from datetime import timedelta

    from django.utils import timezone

    from gocardless.event_processing import events_process
    from gocardless.events_store import events_store
    from gocardless.events_sweep import events_retry_due
    from gocardless.models import EventSource, Payment

    connection = sim_connection(sim, tenant=tenant_a)
    api = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)
    mandate = sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]
    payment = api.payment_create(
        params={"amount": 1000, "currency": "EUR", "links": {"mandate": mandate}},
        idempotency_key="deactivated-events",
    )["id"]
    # Stored (webhook) before the tenant was deactivated; the queue lost the task.
    pks = events_store(tenant=connection.tenant, events=sim.events(), source=EventSource.WEBHOOK)
    GoCardlessEvent.objects.filter(pk__in=pks).update(
        received_at=timezone.now() - timedelta(minutes=10)
    )
    tenant_set_active(tenant=tenant_a, active=False, actor=ACTOR)
    calls = sim.call_counts()

    assert events_retry_due() == {}  # the sweeper does not even pick them
    assert events_process(event_pks=pks) == {"skipped": len(pks)}  # nor does a queued task
    assert sim.call_counts() == calls
    assert not GoCardlessEvent.objects.filter(pk__in=pks, processed_at__isnull=False).exists()
    assert set(GoCardlessEvent.objects.filter(pk__in=pks).values_list("attempts", flat=True)) \
        == {0}
    assert not Payment.objects.filter(gocardless_id=payment).exists()

    tenant_set_active(tenant=tenant_a, active=True, actor=ACTOR)
    counts = events_retry_due()
    assert sum(counts.values()) == len(pks) and "failed" not in counts
    assert Payment.objects.get(gocardless_id=payment).status == "pending_submission"
    assert events_retry_due() == {}
