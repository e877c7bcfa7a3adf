"""Runs queued from the admin (issue 15): *Approve* and *Collect now* store the run
``queued`` in the request and a django-q2 task carries it out.

What must hold: the queued run holds the tenant's one place for a live run (a second click,
the schedule, another approval are refused while it waits); a task delivered twice carries it
out once; a task that is lost is handed out again by the 15-minute sweep; the run stores its
progress as it goes, and the progress the run page polls is what the run did.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from reconciliation.collection import live as live_module
from reconciliation.collection import tasks
from reconciliation.collection.admin.progress import run_progress
from reconciliation.collection.models import (
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
    RunTrigger,
)
from reconciliation.collection.runs import (
    QUEUED_GRACE,
    RunRefused,
    approval_queue,
    queued_run_execute,
    queued_runs_resume,
    run_live,
    run_preview,
    run_start_queued,
)
from tenants.models import CollectionMode
from tests.reconciliation.collection.factories import CollectionRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def review_world(collection_world_factory):
    return collection_world_factory(customers=5, collection_mode=CollectionMode.REVIEW)


@pytest.fixture
def auto_world(collection_world_factory):
    return collection_world_factory(customers=5, collection_mode=CollectionMode.AUTO)


def _queued(django_capture_on_commit_callbacks, call):
    """What ``call`` queued (not run yet): the tasks the workers would receive."""
    with django_capture_on_commit_callbacks() as queued:
        result = call()
    return result, queued


def test_approval_queues_a_live_run_and_its_task_sends_each_payment_once(
    review_world, operator_of_a, django_capture_on_commit_callbacks, q_sync
):
    preview = run_preview(tenant=review_world.tenant, trigger=RunTrigger.USER)
    live, queued = _queued(
        django_capture_on_commit_callbacks,
        lambda: approval_queue(preview=preview, user=operator_of_a),
    )
    assert live.state == RunState.QUEUED and live.kind == RunKind.LIVE
    assert live.preview == preview and live.trigger == RunTrigger.APPROVAL
    assert review_world.sim_payments() == [] and not CollectionAttempt.objects.exists()
    preview.refresh_from_db()
    assert preview.state == RunState.APPROVED and preview.approved_by == operator_of_a

    assert len(queued) == 1
    queued[0]()
    queued[0]()  # the broker delivers it again: nothing more happens
    live.refresh_from_db()
    assert live.state == RunState.COMPLETED and live.submitted == 5 and live.planned == 5
    assert live.submitted_totals == preview.totals
    review_world.assert_one_payment_per_invoice()
    assert (
        queued_run_execute(live.pk) == f"run {live.pk}: not queued (it is completed); nothing done"
    )


def test_a_queued_live_run_holds_the_tenants_place(
    auto_world, operator_of_a, django_capture_on_commit_callbacks
):
    tenant = auto_world.tenant
    queued_run, _ = _queued(
        django_capture_on_commit_callbacks,
        lambda: run_start_queued(tenant=tenant, trigger=RunTrigger.USER, user=operator_of_a),
    )
    assert queued_run.state == RunState.QUEUED
    # A second Collect now is refused, and so is the schedule's run while it waits.
    with pytest.raises(RunRefused, match=f"live run #{queued_run.pk} is queued"):
        run_start_queued(tenant=tenant, trigger=RunTrigger.USER, user=operator_of_a)
    scheduled = run_live(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    assert scheduled.state == RunState.REFUSED
    # An approval meanwhile is refused, and the preview stays approvable.
    tenant.collection_mode = CollectionMode.REVIEW
    tenant.save()
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER)
    with pytest.raises(RunRefused, match="nothing new was started"):
        approval_queue(preview=preview, user=operator_of_a)
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL and preview.approved_by is None
    assert CollectionRun.objects.filter(kind=RunKind.LIVE, state=RunState.QUEUED).count() == 1
    assert auto_world.sim_payments() == []


def test_an_approval_switched_off_before_its_task_ran_sends_nothing(
    review_world, operator_of_a, django_capture_on_commit_callbacks, q_sync
):
    tenant = review_world.tenant
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER)
    live, queued = _queued(
        django_capture_on_commit_callbacks,
        lambda: approval_queue(preview=preview, user=operator_of_a),
    )
    tenant.collection_mode = CollectionMode.OFF
    tenant.save()
    queued[0]()
    live.refresh_from_db()
    assert live.state == RunState.FAILED and "switched off" in live.error
    assert review_world.sim_payments() == [] and not CollectionAttempt.objects.exists()
    preview.refresh_from_db()  # nothing was sent: it may be approved again once back on
    assert preview.state == RunState.AWAITING_APPROVAL
    # The tenant's place for a live run is free again.
    assert not CollectionRun.objects.filter(state__in=(RunState.QUEUED, RunState.RUNNING)).exists()


def test_a_lost_task_is_handed_out_again_by_the_sweep(
    review_world, operator_of_a, django_capture_on_commit_callbacks, q_sync, run_on_commit
):
    preview = run_preview(tenant=review_world.tenant, trigger=RunTrigger.USER)
    live, lost = _queued(
        django_capture_on_commit_callbacks,
        lambda: approval_queue(preview=preview, user=operator_of_a),
    )
    assert len(lost) == 1  # and never run: the broker lost it
    # Within the grace period the sweep leaves it alone (its task may just be waiting).
    assert queued_runs_resume(now=timezone.now() + QUEUED_GRACE / 2) == []
    # Later, the 15-minute sweep hands it to the workers again, and they carry it out.
    CollectionRun.objects.filter(pk=live.pk).update(
        heartbeat_at=timezone.now() - QUEUED_GRACE - dt.timedelta(minutes=1)
    )
    with run_on_commit():
        said = tasks.runs_due_task()
    assert f"queued run {live.pk} handed to the workers again" in said
    live.refresh_from_db()
    assert live.state == RunState.COMPLETED and live.submitted == 5
    review_world.assert_one_payment_per_invoice()
    # The lost task turning up after all changes nothing.
    lost[0]()
    review_world.assert_one_payment_per_invoice()
    assert CollectionAttempt.objects.count() == 5


def test_a_queued_preview_is_built_by_its_task_and_a_second_click_is_refused(
    review_world, operator_of_a, django_capture_on_commit_callbacks, q_sync
):
    tenant = review_world.tenant
    preview, queued = _queued(
        django_capture_on_commit_callbacks,
        lambda: run_start_queued(tenant=tenant, trigger=RunTrigger.USER, user=operator_of_a),
    )
    assert preview.kind == RunKind.PREVIEW and preview.state == RunState.QUEUED
    assert preview.items.count() == 0
    with pytest.raises(RunRefused, match=f"preview #{preview.pk} is already being prepared"):
        run_start_queued(tenant=tenant, trigger=RunTrigger.USER, user=operator_of_a)
    queued[0]()
    queued[0]()  # delivered twice: stored once
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL and preview.to_collect == 5
    assert preview.items.count() == 5 and preview.triggered_by == operator_of_a
    assert review_world.sim_payments() == []


def test_a_queued_preview_of_a_tenant_switched_off_meanwhile_fails_plainly(
    review_world, operator_of_a, django_capture_on_commit_callbacks, q_sync
):
    tenant = review_world.tenant
    preview, queued = _queued(
        django_capture_on_commit_callbacks,
        lambda: run_start_queued(tenant=tenant, trigger=RunTrigger.USER, user=operator_of_a),
    )
    tenant.collection_mode = CollectionMode.OFF
    tenant.save()
    queued[0]()
    preview.refresh_from_db()
    assert preview.state == RunState.FAILED and "switched off" in preview.error
    assert preview.items.count() == 0


def test_a_running_run_stores_its_progress_as_it_goes(auto_world, monkeypatch):
    """What the run page polls during the run is what the run has sent so far."""
    seen = []
    submit = live_module.attempt_submit

    def watching(*, attempt, client, actor):
        run = CollectionRun.objects.get(pk=attempt.run_id)
        seen.append((run.state, run.planned, run.submitted, run_progress(run)))
        return submit(attempt=attempt, client=client, actor=actor)

    monkeypatch.setattr(live_module, "attempt_submit", watching)
    monkeypatch.setattr(live_module, "PROGRESS_EVERY_NS", 0)  # store after every payment
    run = run_live(tenant=auto_world.tenant, trigger=RunTrigger.SCHEDULE)
    assert run.state == RunState.COMPLETED and run.submitted == 5
    assert [(state, planned, sent) for state, planned, sent, _ in seen] == [
        (RunState.RUNNING, 5, n) for n in range(5)
    ]
    progress = seen[3][3]
    assert progress["done"] is False and progress["value"] == 3 and progress["max"] == 5
    assert progress["fields"]["sent"] == "3 of 5"
    assert progress["fields"]["state"] == "Sending payments to GoCardless"
    assert progress["fields"]["money"].startswith("EUR ")


# --- the progress JSON the run page polls ----------------------------------------------------


def _progress_url(run):
    return reverse("admin:collection_collectionrun_progress", args=[run.pk])


def test_progress_json_is_the_runs_numbers(client, tenant_a, viewer_of_a):
    run = CollectionRunFactory(
        tenant=tenant_a,
        kind=RunKind.LIVE,
        state=RunState.RUNNING,
        planned=240,
        submitted=12,
        errors=2,
        submitted_totals={"EUR": "12883.10", "GBP": "10"},
    )
    client.force_login(viewer_of_a)
    response = client.get(_progress_url(run))
    assert response.status_code == 200
    assert response.json() == {
        "done": False,
        "fields": {
            "state": "Sending payments to GoCardless",
            "sent": "12 of 240",
            "errors": "2",
            "money": "EUR 12,883.10, GBP 10.00",
        },
        "value": 14,
        "max": 240,
    }
    page = client.get(reverse("admin:collection_collectionrun_change", args=[run.pk]))
    body = page.content.decode()
    assert f'data-progress-url="{_progress_url(run)}"' in body
    assert 'data-progress-field="sent">12 of 240<' in body
    assert "<script>" not in body and 'style="' not in body  # the strict CSP

    CollectionRun.objects.filter(pk=run.pk).update(state=RunState.COMPLETED, submitted=238)
    done = client.get(_progress_url(run)).json()
    assert done["done"] is True and done["fields"]["state"] == "Completed"
    assert done["fields"]["sent"] == "238 of 240"


def test_progress_of_a_queued_run_says_it_waits(client, tenant_a, viewer_of_a):
    run = CollectionRunFactory(tenant=tenant_a, kind=RunKind.LIVE, state=RunState.QUEUED)
    client.force_login(viewer_of_a)
    data = client.get(_progress_url(run)).json()
    assert data["done"] is False and data["value"] == 0 and data["max"] == 1
    assert data["fields"]["state"] == "Waiting for the task workers to start sending"
    assert data["fields"]["sent"] == "Not started yet"


def test_progress_of_another_companys_run_is_404(client, tenant_b, viewer_of_a):
    run = CollectionRunFactory(tenant=tenant_b, kind=RunKind.LIVE, state=RunState.RUNNING)
    client.force_login(viewer_of_a)
    assert client.get(_progress_url(run)).status_code == 404
    assert client.get(_progress_url(CollectionRun(pk=99999))).status_code == 404


def test_progress_needs_a_login(client, tenant_a):
    run = CollectionRunFactory(tenant=tenant_a, kind=RunKind.LIVE, state=RunState.RUNNING)
    response = client.get(_progress_url(run))
    assert response.status_code == 302 and "/login/" in response["Location"]
