"""*Re-post* off the request (issue 15): the admin action queues one task per company's
selection and takes the person to the batch's page; the task posts each booking once;
mlc/progress.js reads the batch's JSON; a lost task shows as such and can be run again;
another company's batch is a 404."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from reconciliation.bookings import reposts, tasks
from reconciliation.bookings.models import BookingState, RepostBatch, RepostState
from reconciliation.bookings.posting import booking_post
from tests.reconciliation.bookings.factories import BookingFactory, RepostBatchFactory
from tests.workspace.page_words import findings

pytestmark = pytest.mark.django_db

CODES = {s.value for s in RepostState} | {s.value for s in BookingState} | {"confirmed already"}


@pytest.fixture
def queued(monkeypatch):
    """Tasks queued through django-q2, recorded instead of run."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **kw: calls.append((func, *args))
    )
    return calls


@pytest.fixture
def receipts(tenant_a, booking_settings, world):
    customer = world.customer("Alpha BV")
    made = []
    for n in (1, 2):
        invoice = world.invoice(customer, "121.00")
        made.append(
            BookingFactory(
                tenant=tenant_a,
                state=BookingState.GAVE_UP,
                attempts=8,
                gocardless_id=f"PM000{n}",
                key=f"receipt:PM000{n}:1",
                facts={
                    "payment": f"PM000{n}",
                    "invoice": invoice["InvoiceNumber"],
                    "amount": 12100,
                    "account": customer["account"],
                    "attempt": f"{invoice['TermID']}/1",
                },
            )
        )
    return made


def _repost(client, bookings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("admin:bookings_booking_changelist"),
            {"action": "repost", "_selected_action": [b.pk for b in bookings]},
        )
    return response, callbacks


def test_repost_queues_one_task_and_redirects_without_posting(
    client, operator_of_a, receipts, world, queued, django_capture_on_commit_callbacks
):
    client.force_login(operator_of_a)
    response, _ = _repost(client, receipts, django_capture_on_commit_callbacks)
    batch = RepostBatch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:bookings_repostbatch_change", args=[batch.pk])
    assert queued == [(reposts.TASK, batch.pk)]  # one task for the selection
    assert world.ledger() == []  # nothing posted inside the request
    assert {b.state for b in type(receipts[0]).objects.all()} == {BookingState.GAVE_UP}
    assert not AuditEntry.objects.filter(action__startswith="booking.repost").exists()
    assert (batch.total, batch.done, batch.state) == (2, 0, RepostState.WAITING)
    assert batch.booking_ids == [b.pk for b in receipts]
    assert batch.requested_by == operator_of_a

    page = client.get(response.url).content.decode()
    assert "Waiting for a worker since" in page
    progress = reverse("admin:bookings_repostbatch_progress", args=[batch.pk])
    assert f'data-progress-url="{progress}"' in page
    assert "Re-posting 2 booking(s) to Exact in the background" in page  # the one message

    # the worker runs the task: each booking posted once, audited with the person
    assert tasks.repost_batch_task(batch.pk) == "finished"
    assert len(world.ledger()) == 2
    batch.refresh_from_db()
    assert (batch.done, batch.failed, batch.state) == (2, 0, RepostState.FINISHED)
    requested = AuditEntry.objects.filter(action="booking.repost_requested")
    assert requested.count() == 2 and {e.actor_user for e in requested} == {operator_of_a}
    # run again (a duplicate delivery): nothing posted twice
    assert tasks.repost_batch_task(batch.pk) == "finished already"
    assert len(world.ledger()) == 2

    page = client.get(response.url).content.decode()
    assert "Finished" in page and "2 of 2 re-posted" in page and "data-progress-url" not in page
    assert "Re-posted" in page and "Posted to Exact" in page
    assert findings(page, codes=CODES, minor={12100}) == []


def test_the_task_posts_each_booking_once_and_says_why_not(
    client, operator_of_a, receipts, world, q_sync, django_capture_on_commit_callbacks
):
    first, second = receipts
    assert booking_post(booking_pk=first.pk, force=True) == "posted"
    client.force_login(operator_of_a)
    response, _ = _repost(client, receipts, django_capture_on_commit_callbacks)
    batch = RepostBatch.objects.get()
    assert batch.state == RepostState.FINISHED and (batch.done, batch.failed) == (2, 1)
    assert [r["outcome"] for r in batch.results] == ["confirmed already", "posted"]
    assert len(world.ledger()) == 2  # the confirmed one was not posted again
    # only what happened is audited: the refused one has no request entry
    requested = AuditEntry.objects.filter(action="booking.repost_requested")
    assert [e.object_id for e in requested] == [str(second.pk)]
    page = client.get(response.url).content.decode()
    assert "Already confirmed in Exact, so it is never posted again" in page
    assert findings(page, codes=CODES, minor={12100}) == []


def test_progress_json(client, viewer_of_a, tenant_a):
    now = timezone.now()
    batch = RepostBatchFactory(
        tenant=tenant_a,
        booking_ids=[1, 2, 3],
        total=3,
        done=1,
        failed=1,
        state=RepostState.RUNNING,
        started_at=now,
        heartbeat_at=now,
    )
    client.force_login(viewer_of_a)
    url = reverse("admin:bookings_repostbatch_progress", args=[batch.pk])
    data = client.get(url).json()
    assert data["done"] is False and (data["value"], data["max"]) == (1, 3)
    assert data["fields"]["progress"] == "1 of 3" and data["fields"]["failed"] == "1"
    assert data["fields"]["status"].startswith("Re-posting: 1 of 3 handled")

    batch.state, batch.done, batch.finished_at = RepostState.FINISHED, 3, now
    batch.save()
    data = client.get(url).json()
    assert data["done"] is True and data["value"] == 3
    assert data["fields"]["status"].startswith("Finished")


def test_another_companys_batch_is_a_404(client, viewer_of_a, operator_of_a, tenant_b):
    theirs = RepostBatchFactory(tenant=tenant_b, total=1, booking_ids=[1])
    for user in (viewer_of_a, operator_of_a):
        client.force_login(user)
        assert (
            client.get(reverse("admin:bookings_repostbatch_progress", args=[theirs.pk]))
        ).status_code == 404
        assert (
            client.get(reverse("admin:bookings_repostbatch_change", args=[theirs.pk]))
        ).status_code == 404
        assert (
            client.post(reverse("admin:bookings_repostbatch_rerun", args=[theirs.pk]))
        ).status_code == 404
        listing = client.get(reverse("admin:bookings_repostbatch_changelist")).content.decode()
        assert f"/{theirs.pk}/change/" not in listing
    theirs.refresh_from_db()
    assert theirs.runs == 1


def test_a_lost_task_shows_and_can_be_run_again(
    client,
    viewer_of_a,
    operator_of_a,
    receipts,
    world,
    queued,
    django_capture_on_commit_callbacks,
):
    client.force_login(operator_of_a)
    _repost(client, receipts, django_capture_on_commit_callbacks)
    batch = RepostBatch.objects.get()
    # no worker took it for ten minutes
    RepostBatch.objects.filter(pk=batch.pk).update(
        queued_at=timezone.now() - dt.timedelta(minutes=10)
    )
    page_url = reverse("admin:bookings_repostbatch_change", args=[batch.pk])
    progress = reverse("admin:bookings_repostbatch_progress", args=[batch.pk])
    rerun = reverse("admin:bookings_repostbatch_rerun", args=[batch.pk])
    page = client.get(page_url).content.decode()
    assert "Waiting for a worker since" in page and "no worker has picked it up" in page
    assert "data-progress-url" not in page  # nothing to follow: the page says what to do
    assert rerun in page and "Run it again" in page
    assert client.get(progress).json()["done"] is True
    listing = client.get(reverse("admin:bookings_repostbatch_changelist")).content.decode()
    assert "no worker has picked it up" in listing
    assert findings(page, codes=CODES, minor={12100}) == []

    # a viewer sees it but may not run it
    client.force_login(viewer_of_a)
    assert rerun not in client.get(page_url).content.decode()
    assert client.post(rerun).status_code == 403

    # the worker died after the first booking: stopped, shown, run again for the rest only
    client.force_login(operator_of_a)
    reposts._record(batch.pk, receipts[0].pk, "first", "posted")
    RepostBatch.objects.filter(pk=batch.pk).update(
        state=RepostState.RUNNING, heartbeat_at=timezone.now() - dt.timedelta(minutes=10)
    )
    page = client.get(page_url).content.decode()
    assert "Stopped at 1 of 2 since" in page and "its worker was lost" in page
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(rerun)
    assert response.status_code == 302 and response.url == page_url
    assert queued == [(reposts.TASK, batch.pk)]
    batch.refresh_from_db()
    assert batch.state == RepostState.WAITING and batch.runs == 2
    assert "Waiting for a worker since" in client.get(page_url).content.decode()
    # a second click while it waits: not queued twice
    with django_capture_on_commit_callbacks(execute=True):
        client.post(rerun)
    assert len(queued) == 1

    assert tasks.repost_batch_task(batch.pk) == "finished"
    assert len(world.ledger()) == 1  # only the one it had not handled
    batch.refresh_from_db()
    assert batch.done == 2 and batch.state == RepostState.FINISHED


def test_a_running_batch_is_not_run_twice(tenant_a):
    now = timezone.now()
    batch = RepostBatchFactory(
        tenant=tenant_a, total=1, booking_ids=[1], state=RepostState.RUNNING, heartbeat_at=now
    )
    assert reposts.repost_batch_run(batch_pk=batch.pk) == "running elsewhere"
    batch.refresh_from_db()
    assert batch.done == 0
