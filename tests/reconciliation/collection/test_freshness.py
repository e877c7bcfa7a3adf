"""A live run refuses to collect from a stale or orphaned copy of Exact's open invoices
(reconciliation/collection/freshness.py): an invoice paid or credited in Exact after the last
sync must never be charged because our copy still shows it open."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from core.audit import Actor
from core.calendars import tenant_today
from core.models import AuditEntry
from exact.models import ConnectionStatus, ExactConnection, SyncEntity, SyncMode, SyncRun
from reconciliation.collection.freshness import exact_copy_problem
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
    RunTrigger,
)
from reconciliation.collection.runs import run_approve, run_live, run_preview
from tenants.models import CollectionMode
from tests.reconciliation.collection.conftest import exact_copy_mark_fresh, tenants_due_for_run

pytestmark = [pytest.mark.django_db, pytest.mark.exact_freshness_gate]

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def sync(
    tenant,
    *,
    minutes_ago: float,
    mode=SyncMode.INCREMENTAL,
    error="",
    finished=True,
    entity=SyncEntity.RECEIVABLES,
):
    started = NOW - dt.timedelta(minutes=minutes_ago)
    return SyncRun.objects.create(
        tenant=tenant,
        entity=entity,
        mode=mode,
        trigger="test",
        started_at=started,
        finished_at=started + dt.timedelta(seconds=5) if finished else None,
        error=error,
    )


@pytest.fixture
def connected(tenant_a):
    ExactConnection.objects.create(
        tenant=tenant_a, status=ConnectionStatus.CONNECTED, division=100_001
    )
    return tenant_a


def test_no_exact_connection_is_a_refusal(tenant_a):
    assert "not connected" in exact_copy_problem(tenant=tenant_a, now=NOW)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (ConnectionStatus.NEEDS_REAUTH, "needs to be reconnected"),
        (ConnectionStatus.DISCONNECTED, "not connected"),
    ],
)
def test_a_connection_that_cannot_sync_is_a_refusal_however_recent_the_copy(
    connected, status, words
):
    sync(connected, minutes_ago=1)
    ExactConnection.objects.filter(tenant=connected).update(status=status)
    assert words in exact_copy_problem(tenant=connected, now=NOW)


def test_never_synced_is_a_refusal(connected):
    assert "not been synced" in exact_copy_problem(tenant=connected, now=NOW)


@pytest.mark.parametrize("minutes_ago", [0, 60, 119.9])
def test_a_recent_whole_copy_sync_may_be_collected_from(connected, minutes_ago):
    sync(connected, minutes_ago=minutes_ago)
    assert exact_copy_problem(tenant=connected, now=NOW) is None


def test_a_full_sync_counts_like_an_incremental_one(connected):
    sync(connected, minutes_ago=5, mode=SyncMode.FULL)
    assert exact_copy_problem(tenant=connected, now=NOW) is None


def test_an_old_copy_is_refused_with_its_age_and_the_limit(connected):
    sync(connected, minutes_ago=190)
    problem = exact_copy_problem(tenant=connected, now=NOW)
    assert "3 h 10 min old" in problem
    assert "2026-11-26 08:50 UTC" in problem and "the limit is 120 min" in problem


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": SyncMode.TARGETED},  # one invoice after a webhook: says nothing of the rest
        {"error": "ExactServerError: 503"},  # failed
        {"finished": False},  # still running (or died)
        {"entity": SyncEntity.ACCOUNTS},  # not the open items
    ],
    ids=["targeted", "failed", "unfinished", "accounts"],
)
def test_only_a_successful_whole_copy_receivables_sync_vouches_for_the_copy(connected, kwargs):
    sync(connected, minutes_ago=500)  # the last one that counts
    sync(connected, minutes_ago=1, **kwargs)
    assert "8 h 20 min old" in exact_copy_problem(tenant=connected, now=NOW)


def test_a_paused_connection_is_judged_by_the_age_of_its_copy(connected):
    ExactConnection.objects.filter(tenant=connected).update(
        paused_until=NOW + dt.timedelta(hours=6)
    )
    sync(connected, minutes_ago=30)
    assert exact_copy_problem(tenant=connected, now=NOW) is None


@override_settings(COLLECTION_EXACT_MAX_AGE_MINUTES=30)
def test_the_limit_is_a_setting(connected):
    sync(connected, minutes_ago=31)
    assert "the limit is 30 min" in exact_copy_problem(tenant=connected, now=NOW)


# --- the gate in the engine ----------------------------------------------------------------


def stale(world, *, minutes=600):
    SyncRun.objects.filter(tenant=world.tenant).update(
        started_at=timezone.now() - dt.timedelta(minutes=minutes)
    )


def test_a_live_run_on_a_stale_copy_sends_nothing_and_says_why(collection_world):
    stale(collection_world)
    run = run_live(tenant=collection_world.tenant, trigger=RunTrigger.SCHEDULE)
    assert run.state == RunState.FAILED
    assert run.error.startswith("Not collecting: the copy of the open invoices is 10 h 0 min")
    assert collection_world.sim_payments() == []
    assert not CollectionAttempt.objects.exists()
    entry = AuditEntry.objects.get(action="collection.run_finished")
    assert "Not collecting" in entry.message
    # The 15-minute schedule tries again (a failed run is not "today's run")...
    tenant = collection_world.tenant
    tenant.collection_hour = 0
    tenant.save()
    assert tenant in tenants_due_for_run()
    # ...and once the sync has caught up, everything is collected.
    exact_copy_mark_fresh(tenant)
    again = run_live(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    assert again.state == RunState.COMPLETED and again.submitted == 10
    collection_world.assert_one_payment_per_invoice()


def test_a_pending_attempt_is_not_resent_from_a_stale_copy(collection_world):
    from reconciliation.collection.selection import selection_evaluate
    from reconciliation.collection.submission import attempts_write

    tenant = collection_world.tenant
    plan = selection_evaluate(tenant=tenant, today=tenant_today(tenant))[0]
    (attempt,) = attempts_write(tenant=tenant, run=None, plan=plan, actor=Actor.system("t"))
    stale(collection_world)
    run_live(tenant=tenant, trigger=RunTrigger.USER)
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.PENDING and attempt.send_count == 0
    assert collection_world.sim_payments() == []


def test_approval_on_a_stale_copy_is_not_carried_out_and_can_be_approved_later(
    collection_world, operator_of_a
):
    tenant = collection_world.tenant
    tenant.collection_mode = CollectionMode.REVIEW
    tenant.save()
    preview = run_preview(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    stale(collection_world)
    live = run_approve(preview=preview, user=operator_of_a)
    assert live.state == RunState.FAILED and collection_world.sim_payments() == []
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL
    not_run = AuditEntry.objects.get(action="collection.approval_not_run")
    assert "the copy of the open invoices is" in not_run.message
    exact_copy_mark_fresh(tenant)
    assert run_approve(preview=preview, user=operator_of_a).submitted == 10


def test_the_command_refuses_with_one_line(collection_world):
    stale(collection_world)
    with pytest.raises(CommandError, match="Not collecting: the copy of the open invoices"):
        call_command("collection", "run", "--tenant", collection_world.tenant.slug)
    assert collection_world.sim_payments() == []


def test_an_exact_connection_needing_reauth_stops_collection(collection_world):
    ExactConnection.objects.filter(tenant=collection_world.tenant).update(
        status=ConnectionStatus.NEEDS_REAUTH
    )
    run = run_live(tenant=collection_world.tenant, trigger=RunTrigger.SCHEDULE)
    assert run.state == RunState.FAILED and "needs to be reconnected" in run.error
    assert collection_world.sim_payments() == []


def test_collect_now_on_a_stale_copy_is_an_error_message_not_a_500(
    client, collection_world, operator_of_a
):
    from django.contrib.messages import get_messages
    from django.urls import reverse

    stale(collection_world)
    client.force_login(operator_of_a)
    response = client.post(
        reverse("admin:collection_collectionrun_collect_now"),
        {"tenant": collection_world.tenant.pk},
    )
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Not collecting: the copy of the open invoices is 10 h 0 min old" in message
    assert collection_world.sim_payments() == []
    # Refused in the request: no run was queued to fail later.
    assert not CollectionRun.objects.filter(kind=RunKind.LIVE).exists()
