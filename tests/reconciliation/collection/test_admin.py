"""The collection admin: runs (Collect now, Approve), lines, attempts (Retry, Cancel, Resolve).

The approve, collect-now and retry flows run against the GoCardless simulator through the real
services; the admin only calls them. Approve and Collect now only queue the run in the
request: ``_post`` captures what the request queued, and ``_work`` then runs it as the task
workers would (django-q2 inline). Roles come from tests/conftest.py (viewer / operator /
admin of tenant A); tenant B's rows must stay invisible and untouched.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from core.calendars import tenant_today
from core.models import AuditEntry
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
    RunTrigger,
    SkipReason,
)
from reconciliation.customers.models import LinkState
from tenants.models import CollectionMode, Role
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.gocardless.factories import MandateFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionItemFactory,
    CollectionRunFactory,
)
from tests.reconciliation.factories import CustomerLinkFactory

pytestmark = pytest.mark.django_db

RUNS = "admin:collection_collectionrun_changelist"
ITEMS = "admin:collection_collectionitem_changelist"
ATTEMPTS = "admin:collection_collectionattempt_changelist"


def _approve_url(run):
    return reverse("admin:collection_collectionrun_approve", args=[run.pk])


def _collect_now_url():
    return reverse("admin:collection_collectionrun_collect_now")


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def post(django_capture_on_commit_callbacks, q_sync):
    """``post(client, url, data)``: the request, then the tasks it queued run (inline, after
    its response, as the workers would). Returns the response and what was queued."""

    def run(client, url, data):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = client.post(url, data)
        for callback in queued:
            callback()
        return response, queued

    return run


@pytest.fixture
def operator_of_b(tenant_b):
    user = UserFactory(username="olga-operator-b")
    MembershipFactory(user=user, tenant=tenant_b, role=Role.OPERATOR)
    return user


@pytest.fixture
def invoice(tenant_a, gc_sim, gc_connection):
    """One EUR invoice of a matched customer with an active SEPA mandate at the simulator."""
    tenant_a.collection_mode = CollectionMode.REVIEW
    tenant_a.currencies = ["EUR"]
    tenant_a.lead_days = 10
    tenant_a.minimum_amount = Decimal("1.00")
    tenant_a.save()
    mandate_id = gc_sim.seed(
        mandates=[{"scheme": "sepa_core", "status": "active", "company_name": "Omega BV"}]
    )["mandates"][0]
    mandate = MandateFactory(
        tenant=tenant_a, gocardless_id=mandate_id, scheme="sepa_core", status="active"
    )
    account = ExactAccountFactory(tenant=tenant_a, code="1001", name="Omega BV")
    CustomerLinkFactory(
        tenant=tenant_a, exact_account=account, state=LinkState.MATCHED, mandate=mandate
    )
    return ExactReceivableFactory(
        tenant=tenant_a,
        account=account,
        invoice_number=25000042,
        due_date=tenant_today(tenant_a) + dt.timedelta(days=7),
        amount=Decimal("1234.50"),
        outstanding=Decimal("1234.50"),
    )


def _preview(tenant):
    from reconciliation.collection.runs import run_preview

    return run_preview(tenant=tenant, trigger=RunTrigger.SCHEDULE)


# --- runs: list, detail, lines --------------------------------------------------------------


def test_runs_list_shows_counts_totals_and_people(client, tenant_a, viewer_of_a):
    CollectionRunFactory(
        tenant=tenant_a,
        kind=RunKind.LIVE,
        state=RunState.COMPLETED,
        trigger=RunTrigger.USER,
        triggered_by=viewer_of_a,
        evaluated=3,
        to_collect=2,
        skipped=1,
        submitted=2,
        totals={"EUR": "1234.50", "GBP": "10"},
        submitted_totals={"EUR": "1234.50"},
    )
    client.force_login(viewer_of_a)
    response = client.get(reverse(RUNS))
    assert response.status_code == 200
    body = response.content.decode()
    assert "EUR 1,234.50, GBP 10.00" in body
    assert "3 / 2 / 1 / 2 / 0" in body
    assert "Attempts needing attention" not in body
    CollectionAttemptFactory(tenant=tenant_a)
    CollectionAttemptFactory(tenant=TenantFactory())  # another company's: not counted
    assert "Attempts needing attention: 1<" in client.get(reverse(RUNS)).content.decode()
    assert "victor-viewer" in body
    # viewers read: no Collect now, no approve action, no add
    assert _collect_now_url() not in body
    assert "approve" not in response.context["cl"].model_admin.get_actions(response.wsgi_request)
    assert client.get(reverse("admin:collection_collectionrun_add")).status_code == 403


def test_run_page_lists_lines_with_reason_labels_and_links_to_filtered_items(
    client, tenant_a, viewer_of_a
):
    run = CollectionRunFactory(tenant=tenant_a, evaluated=2, to_collect=1, skipped=1)
    CollectionItemFactory(tenant=tenant_a, run=run, invoice_number=111)
    CollectionItemFactory(
        tenant=tenant_a,
        run=run,
        invoice_number=222,
        decision=Decision.SKIP,
        reason=SkipReason.BELOW_MINIMUM,
        detail="0.50 < 1.00",
        amount=Decimal("0.50"),
    )
    client.force_login(viewer_of_a)
    body = client.get(reverse("admin:collection_collectionrun_change", args=[run.pk])).content
    body = body.decode()
    assert "Below the minimum amount" in body and "0.50 &lt; 1.00" in body
    assert "111" in body and "222" in body
    assert f"?run={run.pk}&amp;decision__exact=skip&amp;reason__exact=below_minimum" in body
    assert "Approve…" not in body  # viewer

    response = client.get(
        reverse(ITEMS), {"run": run.pk, "decision__exact": "skip", "reason__exact": "below_minimum"}
    )
    assert response.status_code == 200
    assert [i.invoice_number for i in response.context["cl"].result_list] == [222]


def test_item_and_run_filters_offer_only_own_companies(client, tenant_a, tenant_b, operator_of_a):
    CollectionItemFactory(tenant=tenant_a)
    run_b = CollectionItemFactory(tenant=tenant_b).run
    client.force_login(operator_of_a)
    for url in (reverse(ITEMS), reverse(RUNS), reverse(ATTEMPTS)):
        body = client.get(url).content.decode()
        assert "Alpha BV" in body
        assert "Bravo Ltd" not in body
    # asking for B's run by id shows nothing of it
    response = client.get(reverse(ITEMS), {"run": run_b.pk})
    assert list(response.context["cl"].result_list) == []
    assert str(run_b).encode() not in response.content


# --- approve --------------------------------------------------------------------------------


def test_approve_shows_what_will_be_collected_then_submits_exactly_once(
    client, tenant_a, operator_of_a, invoice, gc_sim, django_capture_on_commit_callbacks, q_sync
):
    preview = _preview(tenant_a)
    assert preview.state == RunState.AWAITING_APPROVAL and preview.to_collect == 1
    client.force_login(operator_of_a)

    page = client.get(reverse("admin:collection_collectionrun_change", args=[preview.pk]))
    assert "Approve…" in page.content.decode()

    confirm = client.get(_approve_url(preview))
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert body.count("EUR 1,234.50") >= 3  # intro, the line, the button
    assert "25000042" in body and "Omega BV" in body
    as_of = preview.as_of
    assert f"Evaluated on {as_of:%a} {as_of.day} {as_of:%b %Y}." in body  # as every page says
    assert not CollectionAttempt.objects.exists()  # looking submits nothing

    with django_capture_on_commit_callbacks() as queued:
        response = client.post(_approve_url(preview), {"confirm": "yes"})
    # The request only queued the run: nothing reached GoCardless, the run waits.
    live = CollectionRun.objects.get(kind=RunKind.LIVE)
    assert response.status_code == 302 and response["Location"].endswith(
        reverse("admin:collection_collectionrun_change", args=[live.pk])
    )
    assert live.state == RunState.QUEUED and live.preview == preview
    assert not CollectionAttempt.objects.exists() and gc_sim.resource("payments") == []
    [message] = _messages(response)
    assert message == (
        f"Preview #{preview.pk} approved: 1 payment is being sent; "
        "this page shows their progress."
    )
    preview.refresh_from_db()
    assert preview.state == RunState.APPROVED and preview.approved_by == operator_of_a
    page = client.get(response["Location"]).content.decode()
    progress = reverse("admin:collection_collectionrun_progress", args=[live.pk])
    assert f'data-progress-url="{progress}"' in page
    assert "Waiting for the task workers to start sending" in page

    # The workers run the task: exactly one payment.
    assert len(queued) == 1
    queued[0]()
    live.refresh_from_db()
    assert live.state == RunState.COMPLETED and live.submitted == 1 and live.planned == 1
    [attempt] = CollectionAttempt.objects.all()
    assert attempt.amount == Decimal("1234.50") and attempt.payment_gocardless_id
    payment = gc_sim.resource("payments", attempt.payment_gocardless_id)
    assert payment["amount"] == 123450 and payment["currency"] == "EUR"
    done = client.get(progress).json()
    assert done["done"] is True and done["fields"]["sent"] == "1 of 1"
    assert done["fields"]["money"] == "EUR 1,234.50"
    assert "data-progress-url" not in client.get(response["Location"]).content.decode()

    # approving again (a second click, another tab): refused, nothing more is queued or sent
    with django_capture_on_commit_callbacks() as again_queued:
        again = client.post(_approve_url(preview), {"confirm": "yes"})
    assert again.status_code == 302 and again_queued == []
    assert any("not awaiting approval" in m for m in _messages(again))
    assert CollectionRun.objects.filter(kind=RunKind.LIVE).count() == 1
    assert CollectionAttempt.objects.count() == 1
    assert (
        AuditEntry.objects.filter(
            action="collection.preview_approved", actor_user=operator_of_a
        ).count()
        == 1
    )


def test_approve_of_a_larger_preview_collects_each_shown_invoice_once(
    client, tenant_a, operator_of_a, collection_world_factory, post
):
    world = collection_world_factory(customers=12, collection_mode=CollectionMode.REVIEW)
    client.force_login(operator_of_a)
    post(client, _collect_now_url(), {"tenant": tenant_a.pk})
    preview = CollectionRun.objects.get(kind=RunKind.PREVIEW)
    assert preview.to_collect == 12
    # two clicks, as a double-submitting browser would send them
    _first, queued = post(client, _approve_url(preview), {"confirm": "yes"})
    second, queued_again = post(client, _approve_url(preview), {"confirm": "yes"})
    assert len(queued) == 1 and queued_again == []
    assert any("not awaiting approval" in m for m in _messages(second))
    world.assert_one_payment_per_invoice()
    live = CollectionRun.objects.get(kind=RunKind.LIVE)
    assert live.submitted == 12 and live.submitted_totals == preview.totals


@pytest.mark.parametrize("state", [RunState.RUNNING, RunState.QUEUED])
def test_approve_while_another_live_run_is_active_is_a_message_and_sends_nothing(
    client, tenant_a, operator_of_a, invoice, gc_sim, post, state
):
    preview = _preview(tenant_a)
    other = CollectionRunFactory(tenant=tenant_a, kind=RunKind.LIVE, state=state)
    client.force_login(operator_of_a)
    response, queued = post(client, _approve_url(preview), {"confirm": "yes"})
    assert response.status_code == 302 and queued == []
    [message] = _messages(response)
    assert f"live run #{other.pk} is {state.label.split(' (')[0].lower()}" in message
    assert "nothing new was started" in message and "can be approved again" in message
    assert not CollectionAttempt.objects.exists()
    assert CollectionRun.objects.filter(kind=RunKind.LIVE).count() == 1
    preview.refresh_from_db()  # the approval was rolled back with the refused run
    assert preview.state == RunState.AWAITING_APPROVAL and preview.approved_by is None
    assert not AuditEntry.objects.filter(action="collection.preview_approved").exists()


def test_approve_without_a_gocardless_connection_is_refused_at_once(
    client, tenant_a, operator_of_a, invoice, gc_connection, post
):
    preview = _preview(tenant_a)
    gc_connection.delete()
    client.force_login(operator_of_a)
    response, queued = post(client, _approve_url(preview), {"confirm": "yes"})
    assert response.status_code == 302 and queued == []
    [message] = _messages(response)
    assert "GoCardless is not connected" in message
    assert "it can be approved again once that is fixed" in message
    assert not CollectionRun.objects.filter(kind=RunKind.LIVE).exists()
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL


def test_gocardless_disconnected_before_the_task_ran_says_so_on_the_run_page(
    client,
    tenant_a,
    operator_of_a,
    invoice,
    gc_connection,
    q_sync,
    django_capture_on_commit_callbacks,
):
    preview = _preview(tenant_a)
    client.force_login(operator_of_a)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(_approve_url(preview), {"confirm": "yes"})
    gc_connection.delete()  # between the click and the workers
    queued[0]()
    live = CollectionRun.objects.get(kind=RunKind.LIVE)
    assert live.state == RunState.FAILED and live.error == "GoCardless is not connected"
    page = client.get(response["Location"]).content.decode()
    assert "GoCardless is not connected" in page
    assert "Nothing was sent; the preview can be approved again." in page
    assert not CollectionAttempt.objects.exists()
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL


def test_approve_when_gocardless_errors_is_shown_on_the_run_page_not_a_500(
    client,
    tenant_a,
    operator_of_a,
    invoice,
    gc_sim,
    monkeypatch,
    q_sync,
    django_capture_on_commit_callbacks,
):
    preview = _preview(tenant_a)

    def boom(**kwargs):
        raise ConnectionError("simulated network failure")

    monkeypatch.setattr("reconciliation.collection.live.attempt_submit", boom)
    client.force_login(operator_of_a)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(_approve_url(preview), {"confirm": "yes"})
    assert response.status_code == 302
    # The task fails (inline, django-q2 re-raises; the workers record it as a failed task).
    with pytest.raises(ConnectionError):
        queued[0]()
    live = CollectionRun.objects.get(kind=RunKind.LIVE)
    assert live.state == RunState.FAILED and "ConnectionError" in live.error
    page = client.get(response["Location"])
    assert page.status_code == 200 and "simulated network failure" in page.content.decode()


def test_approve_action_leads_to_the_confirmation_page(client, tenant_a, operator_of_a):
    preview = CollectionRunFactory(tenant=tenant_a)
    client.force_login(operator_of_a)
    response = client.post(
        reverse(RUNS), {"action": "approve", "_selected_action": [preview.pk], "index": 0}
    )
    assert response.status_code == 302 and response["Location"] == _approve_url(preview)
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL


def test_approving_a_run_that_is_not_awaiting_approval_is_a_message(
    client, tenant_a, operator_of_a
):
    done = CollectionRunFactory(tenant=tenant_a, state=RunState.SUPERSEDED)
    client.force_login(operator_of_a)
    response = client.get(_approve_url(done))
    assert response.status_code == 302
    assert any("superseded" in m for m in _messages(response))
    response = client.post(_approve_url(done), {"confirm": "yes"})
    assert response.status_code == 302
    assert any("not awaiting approval" in m for m in _messages(response))
    assert not CollectionRun.objects.filter(kind=RunKind.LIVE).exists()


def test_viewer_cannot_approve(client, tenant_a, viewer_of_a):
    preview = CollectionRunFactory(tenant=tenant_a)
    client.force_login(viewer_of_a)
    assert client.get(_approve_url(preview)).status_code == 403
    assert client.post(_approve_url(preview), {"confirm": "yes"}).status_code == 403
    client.post(reverse(RUNS), {"action": "approve", "_selected_action": [preview.pk]})
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL and preview.approved_by is None


def test_operator_elsewhere_but_viewer_here_cannot_approve(
    client, tenant_a, tenant_b, operator_of_b
):
    MembershipFactory(user=operator_of_b, tenant=tenant_a, role=Role.VIEWER)
    preview = CollectionRunFactory(tenant=tenant_a)
    client.force_login(operator_of_b)
    assert client.get(_approve_url(preview)).status_code == 403
    response = client.post(
        reverse(RUNS), {"action": "approve", "_selected_action": [preview.pk], "index": 0}
    )
    assert any("skipped" in m for m in _messages(response))
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL


def test_operator_of_a_cannot_approve_a_run_of_b(client, tenant_b, operator_of_a):
    preview_b = CollectionRunFactory(tenant=tenant_b)
    client.force_login(operator_of_a)
    assert client.get(_approve_url(preview_b)).status_code == 404
    assert client.post(_approve_url(preview_b), {"confirm": "yes"}).status_code == 404
    client.post(reverse(RUNS), {"action": "approve", "_selected_action": [preview_b.pk]})
    preview_b.refresh_from_db()
    assert preview_b.state == RunState.AWAITING_APPROVAL


# --- collect now ----------------------------------------------------------------------------


def test_collect_now_in_review_mode_queues_a_preview_to_approve(
    client, tenant_a, operator_of_a, invoice, post
):
    client.force_login(operator_of_a)
    assert _collect_now_url() in client.get(reverse(RUNS)).content.decode()
    page = client.get(_collect_now_url())
    assert page.status_code == 200 and "Alpha BV" in page.content.decode()

    response, queued = post(client, _collect_now_url(), {"tenant": tenant_a.pk})
    run = CollectionRun.objects.get()
    assert len(queued) == 1
    assert run.kind == RunKind.PREVIEW and run.state == RunState.AWAITING_APPROVAL
    assert run.to_collect == 1 and run.totals == {"EUR": "1234.50"}
    assert run.trigger == RunTrigger.USER and run.triggered_by == operator_of_a
    assert response["Location"].endswith(
        reverse("admin:collection_collectionrun_change", args=[run.pk])
    )
    [message] = _messages(response)
    assert message == (
        f"Alpha BV: preview #{run.pk} is being prepared; this page shows it when it is "
        "ready to approve."
    )
    assert not CollectionAttempt.objects.exists()


def test_collect_now_twice_while_the_preview_is_queued_is_refused(
    client, tenant_a, operator_of_a, invoice, django_capture_on_commit_callbacks
):
    client.force_login(operator_of_a)
    with django_capture_on_commit_callbacks() as queued:
        client.post(_collect_now_url(), {"tenant": tenant_a.pk})
        again = client.post(_collect_now_url(), {"tenant": tenant_a.pk})
    [run] = CollectionRun.objects.all()
    assert run.state == RunState.QUEUED and len(queued) == 1
    assert _messages(again)[-1] == (
        f"Alpha BV: preview #{run.pk} is already being prepared; nothing new was started."
    )


def test_collect_now_in_auto_mode_queues_a_live_run_that_collects(
    client, tenant_a, operator_of_a, invoice, gc_sim, django_capture_on_commit_callbacks, q_sync
):
    tenant_a.collection_mode = CollectionMode.AUTO
    tenant_a.save()
    client.force_login(operator_of_a)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(_collect_now_url(), {"tenant": tenant_a.pk})
        again = client.post(_collect_now_url(), {"tenant": tenant_a.pk})  # a second click
    run = CollectionRun.objects.get()
    assert run.kind == RunKind.LIVE and run.state == RunState.QUEUED
    assert response["Location"].endswith(
        reverse("admin:collection_collectionrun_change", args=[run.pk])
    )
    assert _messages(response) == [
        f"Alpha BV: live run #{run.pk} started: the open invoices are being checked and "
        "collected; this page shows its progress."
    ]
    assert f"live run #{run.pk} is queued; nothing new was started" in _messages(again)[-1]
    assert not CollectionAttempt.objects.exists() and gc_sim.resource("payments") == []

    assert len(queued) == 1
    queued[0]()  # the workers
    queued[0]()  # and a second delivery of the same task: nothing more
    run.refresh_from_db()
    assert run.state == RunState.COMPLETED and run.submitted == 1
    [attempt] = CollectionAttempt.objects.all()
    assert gc_sim.resource("payments", attempt.payment_gocardless_id)["amount"] == 123450
    assert len(gc_sim.resource("payments")) == 1


def test_collect_now_when_collection_is_off_is_a_message(client, tenant_a, operator_of_a):
    client.force_login(operator_of_a)  # tenants start with collection off
    response = client.post(_collect_now_url(), {"tenant": tenant_a.pk})
    assert response.status_code == 302
    assert any("Collection is off" in m for m in _messages(response))
    assert not CollectionRun.objects.exists()


def test_collect_now_is_for_operators_of_that_company_only(
    client, tenant_a, tenant_b, viewer_of_a, operator_of_a
):
    tenant_b.collection_mode = CollectionMode.REVIEW
    tenant_b.save()
    client.force_login(viewer_of_a)
    assert client.get(_collect_now_url()).status_code == 403
    assert client.post(_collect_now_url(), {"tenant": tenant_a.pk}).status_code == 403

    client.force_login(operator_of_a)
    page = client.get(_collect_now_url())
    assert "Bravo Ltd" not in page.content.decode()
    response = client.post(_collect_now_url(), {"tenant": tenant_b.pk})
    assert response.status_code == 200 and response.context["form"].errors
    assert not CollectionRun.objects.exists()


# --- attempts -------------------------------------------------------------------------------


def _act(client, action, attempts, **extra):
    data = {"action": action, "_selected_action": [a.pk for a in attempts], **extra}
    return client.post(reverse(ATTEMPTS), data)


def test_attempts_list_filters_and_search(client, tenant_a, viewer_of_a):
    flagged = CollectionAttemptFactory(
        tenant=tenant_a, invoice_number=4242, amount=Decimal("1234.5"), payment_gocardless_id="PM1"
    )
    CollectionAttemptFactory(tenant=tenant_a, state=AttemptState.CONFIRMED, flag="")
    client.force_login(viewer_of_a)
    response = client.get(reverse(ATTEMPTS), {"state": "needs_attention"})
    assert [a.pk for a in response.context["cl"].result_list] == [flagged.pk]
    body = response.content.decode()
    assert "EUR 1,234.50" in body and "PM1" in body and "insufficient_funds" in body
    response = client.get(reverse(ATTEMPTS), {"q": "4242"})
    assert [a.pk for a in response.context["cl"].result_list] == [flagged.pk]
    response = client.get(reverse(ATTEMPTS), {"q": "PM1"})
    assert [a.pk for a in response.context["cl"].result_list] == [flagged.pk]
    # the state filter offers "needs attention" first
    spec = next(f for f in response.context["cl"].filter_specs if f.title == "state")
    assert [v for v, _ in spec.lookup_choices][:2] == ["flagged", "needs_attention"]


def test_attempts_of_one_run(client, tenant_a, viewer_of_a):
    run = CollectionRunFactory(tenant=tenant_a, kind=RunKind.LIVE, state=RunState.COMPLETED)
    of_run = CollectionAttemptFactory(tenant=tenant_a, run=run)
    CollectionAttemptFactory(tenant=tenant_a)
    client.force_login(viewer_of_a)
    response = client.get(reverse(ATTEMPTS), {"run": run.pk})
    assert [a.pk for a in response.context["cl"].result_list] == [of_run.pk]
    detail = client.get(reverse("admin:collection_collectionattempt_change", args=[of_run.pk]))
    assert detail.status_code == 200 and "insufficient_funds" in detail.content.decode()


def test_viewer_has_no_attempt_actions(client, tenant_a, viewer_of_a):
    attempt = CollectionAttemptFactory(tenant=tenant_a)
    client.force_login(viewer_of_a)
    response = client.get(reverse(ATTEMPTS))
    assert response.context["action_form"] is None or not [
        c for c in response.context["action_form"].fields["action"].choices if c[0]
    ]
    _act(client, "mark_resolved", [attempt], apply="yes", reason="paid by bank transfer")
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.NEEDS_ATTENTION


def test_mark_resolved_requires_a_reason_then_resolves_and_audits(client, tenant_a, operator_of_a):
    first, second = CollectionAttemptFactory.create_batch(2, tenant=tenant_a)
    client.force_login(operator_of_a)

    page = _act(client, "mark_resolved", [first, second])
    assert page.status_code == 200 and "Reason" in page.content.decode()
    assert str(first.invoice_number) in page.content.decode()

    empty = _act(client, "mark_resolved", [first, second], apply="yes", reason="  ")
    assert empty.status_code == 200 and "reason" in empty.context["form"].errors
    first.refresh_from_db()
    assert first.state == AttemptState.NEEDS_ATTENTION

    done = _act(client, "mark_resolved", [first, second], apply="yes", reason="Paid by transfer")
    assert done.status_code == 302
    assert _messages(done) == ["Marked resolved: 2 attempts."]
    for attempt in (first, second):
        attempt.refresh_from_db()
        assert attempt.state == AttemptState.RESOLVED
        assert attempt.resolution == "Paid by transfer" and attempt.resolved_by == operator_of_a
    assert (
        AuditEntry.objects.filter(
            action="collection.attempt_resolved", actor_user=operator_of_a
        ).count()
        == 2
    )


def test_refusals_are_messages_per_attempt_and_successes_are_counted(
    client, tenant_a, operator_of_a
):
    ok = CollectionAttemptFactory(tenant=tenant_a)
    collected = CollectionAttemptFactory(tenant=tenant_a, state=AttemptState.CONFIRMED)
    client.force_login(operator_of_a)
    response = _act(client, "mark_resolved", [ok, collected], apply="yes", reason="done")
    msgs = _messages(response)
    assert "Marked resolved: 1 attempt." in msgs
    assert any(str(collected) in m and "confirmed" in m for m in msgs)
    collected.refresh_from_db()
    assert collected.state == AttemptState.CONFIRMED

    response = _act(client, "retry_now", [collected])
    assert any("only failed attempts" in m for m in _messages(response))


def test_cancel_requires_a_reason_and_cancels(client, tenant_a, operator_of_a):
    attempt = CollectionAttemptFactory(tenant=tenant_a)  # needs attention: nothing at GoCardless
    client.force_login(operator_of_a)
    response = _act(client, "cancel", [attempt], apply="yes", reason="")
    assert response.status_code == 200 and response.context["form"].errors
    response = _act(client, "cancel", [attempt], apply="yes", reason="Customer disputes it")
    assert _messages(response) == ["Cancelled: 1 attempt."]
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CANCELLED
    assert attempt.resolution == "Customer disputes it" and attempt.resolved_by == operator_of_a
    entry = AuditEntry.objects.get(action="collection.attempt_cancelled")
    assert entry.actor_user == operator_of_a and entry.message == "Customer disputes it"


def test_cancel_of_a_submitted_payment_cancels_it_at_gocardless(
    client, tenant_a, operator_of_a, invoice, gc_sim, post
):
    tenant_a.collection_mode = CollectionMode.AUTO
    tenant_a.save()
    client.force_login(operator_of_a)
    post(client, _collect_now_url(), {"tenant": tenant_a.pk})
    [attempt] = CollectionAttempt.objects.all()
    assert attempt.state == AttemptState.SUBMITTED
    response = _act(client, "cancel", [attempt], apply="yes", reason="Invoice disputed")
    assert "Cancelled: 1 attempt." in _messages(response)
    assert gc_sim.resource("payments", attempt.payment_gocardless_id)["status"] == "cancelled"


def test_retry_now_makes_a_new_attempt_at_gocardless(
    client, tenant_a, operator_of_a, invoice, gc_sim
):
    failed = CollectionAttemptFactory(
        tenant=tenant_a,
        receivable_exact_id=invoice.exact_id,
        invoice_number=invoice.invoice_number,
        account_exact_id=invoice.account_exact_id,
        amount=invoice.outstanding,
    )
    client.force_login(operator_of_a)
    response = _act(client, "retry_now", [failed])
    assert _messages(response) == ["Retried: 1 attempt."]
    new = CollectionAttempt.objects.get(attempt_number=2)
    assert new.state == AttemptState.SUBMITTED
    assert gc_sim.resource("payments", new.payment_gocardless_id)["amount"] == 123450
    assert AuditEntry.objects.filter(
        action="collection.attempt_retry_requested", actor_user=operator_of_a
    ).exists()


def _failed_attempt(tenant, invoice):
    return CollectionAttemptFactory(
        tenant=tenant,
        receivable_exact_id=invoice.exact_id,
        invoice_number=invoice.invoice_number,
        account_exact_id=invoice.account_exact_id,
        amount=invoice.outstanding,
    )


def _not_sent(messages: list[str]) -> str:
    (message,) = messages
    assert "no payment was sent, because " in message, message
    assert "Completed" not in message and "did not send a payment" not in message
    return message.split("because ", 1)[1]


def test_retry_now_says_gocardless_refused_and_why(
    client, tenant_a, operator_of_a, invoice, gc_sim
):
    """Issue 15: "run #5 did not send a payment: Completed". GoCardless refused the payment
    (here: the mandate was cancelled at GoCardless, our mirror does not know yet): say so."""
    failed = _failed_attempt(tenant_a, invoice)
    (mandate,) = MandateFactory._meta.model.objects.filter(tenant=tenant_a)
    gc_sim.run_scenario("mandate_cancelled", mandate.gocardless_id)
    client.force_login(operator_of_a)
    why = _not_sent(_messages(_act(client, "retry_now", [failed])))
    assert why.startswith(
        "GoCardless refused the payment: The mandate for this payment is inactive"
    )
    assert "request_id" not in why


def test_retry_now_says_the_invoice_was_skipped_and_why(client, tenant_a, operator_of_a, invoice):
    failed = _failed_attempt(tenant_a, invoice)
    MandateFactory._meta.model.objects.filter(tenant=tenant_a).update(status="cancelled")
    client.force_login(operator_of_a)
    why = _not_sent(_messages(_act(client, "retry_now", [failed])))
    assert why.startswith(f"invoice {invoice.invoice_number} was skipped: mandate cancelled")


def test_retry_now_says_the_invoice_is_paid_in_exact(client, tenant_a, operator_of_a, invoice):
    failed = _failed_attempt(tenant_a, invoice)
    invoice.outstanding, invoice.is_fully_paid = Decimal("0.00"), True
    invoice.save()
    client.force_login(operator_of_a)
    why = _not_sent(_messages(_act(client, "retry_now", [failed])))
    assert why.startswith(
        f"invoice {invoice.invoice_number} is paid in Exact (open amount EUR 0.00"
    )


def test_retry_not_sent_reason_of_a_refused_or_failed_run(tenant_a):
    from reconciliation.collection.actions import retry_not_sent_reason

    attempt = CollectionAttemptFactory(tenant=tenant_a)
    refused = CollectionRunFactory(
        tenant=tenant_a, kind=RunKind.LIVE, state=RunState.REFUSED, error="another live run"
    )
    assert "another collection run of this company was running" in retry_not_sent_reason(
        run=refused, attempt=attempt
    )
    failed = CollectionRunFactory(
        tenant=tenant_a,
        kind=RunKind.LIVE,
        state=RunState.FAILED,
        error="Not collecting: the copy of the open invoices is 3 h 0 min old",
    )
    assert retry_not_sent_reason(run=failed, attempt=attempt) == (
        "the run stopped before sending: Not collecting: the copy of the open invoices is "
        "3 h 0 min old"
    )


def test_operator_of_a_cannot_act_on_attempts_of_b(
    client, tenant_a, tenant_b, operator_of_a, operator_of_b
):
    mine = CollectionAttemptFactory(tenant=tenant_a)
    theirs = CollectionAttemptFactory(tenant=tenant_b)
    client.force_login(operator_of_a)
    listed = client.get(reverse(ATTEMPTS))
    assert {a.pk for a in listed.context["cl"].result_list} == {mine.pk}
    for action in ("mark_resolved", "cancel"):
        _act(client, action, [theirs], apply="yes", reason="not mine")
    _act(client, "retry_now", [theirs])
    # both selected: only A's is resolved
    _act(client, "mark_resolved", [mine, theirs], apply="yes", reason="mine only")
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.state == AttemptState.NEEDS_ATTENTION and not theirs.resolution
    assert mine.state == AttemptState.RESOLVED
    detail = client.get(reverse("admin:collection_collectionattempt_change", args=[theirs.pk]))
    assert detail.status_code in (302, 404)


def test_attempt_key_help_text_reads_on_the_page(client, tenant_a, viewer_of_a):
    """Issue 15: the Key's help text "<receivable>/<attempt>[.<part>]" rendered as "/[.]"
    (the admin shows help texts as HTML, so the brackets were eaten as tags)."""
    attempt = CollectionAttemptFactory(tenant=tenant_a)
    client.force_login(viewer_of_a)
    page = client.get(reverse("admin:collection_collectionattempt_change", args=[attempt.pk]))
    body = page.content.decode()
    assert "Receivable guid / attempt number, then .part for an instalment" in body
    assert "<receivable>" not in body and "/[.]" not in body


def test_no_model_help_text_holds_angle_brackets():
    """Every help text of the product's models is shown as HTML by the admin."""
    from django.apps import apps

    product = ("config", "core", "tenants", "exact", "gocardless", "reconciliation")
    found = [
        f"{model._meta.label}.{f.name}: {f.help_text}"
        for model in apps.get_models()
        if model.__module__.split(".")[0] in product
        for f in model._meta.get_fields()
        if "<" in str(getattr(f, "help_text", "") or "")
    ]
    assert found == []
