"""A deactivated tenant's Exact jobs (sync, keep-alive, webhook resync) call Exact not once and
change nothing; after `tenants activate` the next run does the work, once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from core.audit import Actor
from exact.models import ConnectionStatus, ExactAccount, ExactConnection, ExactGrant, SyncRun
from exact.tasks import exact_keepalive_task, exact_sync_task, exact_webhook_resync_task
from tenants.services import tenant_set_active
from tests.exact.conftest import token_calls
from tests.exact.factories import ExactWebhookDeliveryFactory
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def calls(sim) -> int:
    return sum(row.get("total", 0) for row in sim.call_counts().values())


def set_active(tenant, active: bool) -> None:
    tenant_set_active(tenant=tenant, active=active, actor=ACTOR)


def snapshot(connection) -> dict:
    row = ExactConnection.objects.get(pk=connection.pk)
    return {
        name: getattr(row, name)
        for name in (
            "status",
            "status_reason",
            "paused_until",
            "access_token",
            "refresh_token",
            "token_issued_at",
            "last_refresh_at",
        )
    }


def test_sync_task_skips_an_inactive_tenant_and_resumes_once(sim, connection, caplog):
    sim.seed_account(DIVISION, name="Quiet Customer")
    set_active(connection.tenant, False)
    before = snapshot(connection)
    sim.call_counts(reset=True)

    with caplog.at_level(logging.INFO):
        result = exact_sync_task(connection.tenant_id)
    assert result.startswith("skipped: ") and "inactive" in result
    assert calls(sim) == 0
    assert SyncRun.objects.count() == 0 and ExactAccount.objects.count() == 0
    assert snapshot(connection) == before
    skipped = [r for r in caplog.records if "inactive" in r.getMessage()]
    assert skipped and all(r.levelno == logging.INFO for r in skipped)

    set_active(connection.tenant, True)
    assert exact_sync_task(connection.tenant_id).startswith("accounts: +1")
    assert SyncRun.objects.count() == 3
    assert ExactAccount.objects.get().name == "Quiet Customer"


def test_keepalive_leaves_an_inactive_tenants_tokens_alone(sim, connection, caplog):
    ExactGrant.objects.filter(pk=connection.grant_id).update(
        token_issued_at=timezone.now() - timedelta(days=2), last_refresh_at=None
    )
    sim.advance(2 * 86400)
    set_active(connection.tenant, False)
    before = snapshot(connection)

    with caplog.at_level(logging.INFO):
        assert exact_keepalive_task() == 0
    assert token_calls(sim) == 0
    assert snapshot(connection) == before
    assert any(
        r.levelno == logging.INFO and "inactive" in r.getMessage() for r in caplog.records
    )

    set_active(connection.tenant, True)
    assert exact_keepalive_task() == 1
    assert exact_keepalive_task() == 0  # refreshed: nothing more to do
    assert token_calls(sim) == 1
    assert ExactConnection.objects.get(pk=connection.pk).status == ConnectionStatus.CONNECTED


def test_webhook_resync_of_an_inactive_tenant_calls_nothing(sim, connection):
    account = sim.seed_account(DIVISION, name="Hooked Customer")
    delivery = ExactWebhookDeliveryFactory(
        tenant=connection.tenant, topic="Accounts", key=account["ID"]
    )
    set_active(connection.tenant, False)
    sim.call_counts(reset=True)

    assert exact_webhook_resync_task(delivery.pk).startswith("skipped: ")
    assert calls(sim) == 0 and SyncRun.objects.count() == 0

    set_active(connection.tenant, True)
    assert exact_webhook_resync_task(delivery.pk).startswith("accounts: +1")
    assert ExactAccount.objects.get().name == "Hooked Customer"
