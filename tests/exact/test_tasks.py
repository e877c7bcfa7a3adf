"""The thin django-q2 tasks: they call the services and skip unusable connections."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exact.models import ExactAccount, ExactConnection, SyncRun
from exact.tasks import exact_sync_task, exact_webhook_resync_task
from tests.exact.factories import ExactWebhookDeliveryFactory
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db


def test_sync_task_runs_the_three_entities(sim, connection):
    sim.seed_account(DIVISION, name="Task Customer")
    result = exact_sync_task(connection.tenant_id)
    assert result.startswith("accounts: +1")
    assert SyncRun.objects.count() == 3
    assert ExactAccount.objects.get().name == "Task Customer"


def test_sync_task_skips_a_paused_connection(sim, connection):
    ExactConnection.objects.filter(pk=connection.pk).update(
        paused_until=timezone.now() + timedelta(hours=1)
    )
    assert exact_sync_task(connection.tenant_id).startswith("skipped: ")
    assert SyncRun.objects.count() == 0


def test_sync_task_without_connection(tenant_b):
    assert exact_sync_task(tenant_b.pk) == "no connection"


def test_webhook_task_ignores_invalid_and_unknown(connection):
    invalid = ExactWebhookDeliveryFactory(tenant=connection.tenant, valid=False)
    assert exact_webhook_resync_task(invalid.pk) == "no delivery"
    other = ExactWebhookDeliveryFactory(tenant=connection.tenant, topic="Items")
    assert exact_webhook_resync_task(other.pk) == "ignored topic Items"
