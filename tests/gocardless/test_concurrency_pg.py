"""PostgreSQL: the same event delivered 5 times at once is processed once.

Five threads, each with its own database connection, post the same signed delivery to the
webhook view; django-q2 runs in sync mode, so each request processes its batch right after
its commit, all at the same moment. The row lock (select_for_update(skip_locked=True)) on
the event lets exactly one of them re-fetch, signal and audit.
"""


import pytest
from django.test import Client

from core.models import AuditEntry
from gocardless.client import GoCardlessClient
from gocardless.models import GoCardlessEvent, Payment, WebhookDelivery
from tests.concurrency import at_once
from tests.gocardless.conftest import body_of, post_webhook, sign, sim_connection, webhook_url
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_five_concurrent_deliveries_of_one_event_process_it_once(
    gocardless_simulator, q_sync, signal_log
):
    sim = gocardless_simulator
    connection = sim_connection(sim)
    api = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)
    mandate = sim.seed(mandates=[{"scheme": "sepa_core"}])["mandates"][0]
    payment_id = api.payment_create(
        params={"amount": 1250, "currency": "EUR", "links": {"mandate": mandate}},
        idempotency_key="concurrent-1",
    )["id"]
    sim.advance(days=5)
    confirmed = [e for e in sim.events() if e["action"] == "confirmed"]
    body = body_of(*confirmed)
    fetches_before = sim.call_counts().get("GET /payments/{id}", {}).get("200", 0)

    statuses = at_once(
        *[lambda client: post_webhook(client, webhook_url(connection.tenant), body,
                                      sign(body)).status_code] * 5,
        prepare=Client,
        timeout=30,
    )
    assert statuses == [204] * 5
    assert WebhookDelivery.objects.count() == 5
    event = GoCardlessEvent.objects.get()
    assert event.processed_at is not None and event.attempts == 1
    fetches = sim.call_counts()["GET /payments/{id}"]["200"] - fetches_before
    assert fetches == 1
    assert signal_log.names(payment_id) == ["payment_confirmed"]
    payment = Payment.objects.get(gocardless_id=payment_id)
    assert payment.status == "confirmed"
    assert AuditEntry.objects.filter(action="payment.status_changed",
                                     object_id=str(payment.pk)).count() == 1
