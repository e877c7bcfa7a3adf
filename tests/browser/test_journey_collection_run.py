"""Preview, approve and watch a collection run (issue 15), in Chromium, against the GoCardless
simulator: a company in review mode; the operator presses Collect now, watches the preview
being prepared, opens it, approves it on the confirmation page, and watches the live run on
its page until it has finished; the payments are then at GoCardless (the simulator), one per
invoice, for the invoice's amount.

The run's work is queued (django-q2 in production); here the journey carries out the queued
task itself, as a worker would, while the page polls its progress (``task_queue``).
Screenshots: artifacts/screenshots/test_an_operator_previews_approves_and_watches_a_run/.
"""

from __future__ import annotations

import re

import pytest

from gocardless.models import ConnectionStatus, Environment
from reconciliation.collection.models import CollectionRun, RunKind, RunState
from tenants.models import CollectionMode, Role
from tests.conftest import _member
from tests.factories import GoCardlessConnectionFactory
from tests.reconciliation.collection.conftest import collection_world_build

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
TASK = "reconciliation.collection.tasks"


@pytest.fixture
def world(tenant_a, live_simulators):
    sim = live_simulators.gocardless
    connection = GoCardlessConnectionFactory(
        tenant=tenant_a, environment=Environment.CUSTOM, custom_base_url=sim.url,
        access_token="sim-access-token", webhook_secret="sim-webhook-secret",
        organisation_id=sim.state.organisation_id, status=ConnectionStatus.CONNECTED)
    world = collection_world_build(tenant=tenant_a, sim=sim, connection=connection,
                                   customers=3, collection_mode=CollectionMode.REVIEW)
    user = _member(tenant_a, Role.OPERATOR, "olga-operator")
    user.set_password(PASSWORD)
    user.save()
    return world


def _total(world) -> str:
    total = sum(r.outstanding for r in world.receivables)
    return f"{total:,.2f}"


def _watch_until_finished(journey, task_queue, name: str) -> None:
    """The run page says the run waits; a worker carries it out; the page (polling) reloads
    by itself with the outcome."""
    page = journey.page
    progress = page.get_by_role("heading", name="Progress")
    assert progress.count() == 1
    journey.shot(f"{name}-queued")
    assert any(t.startswith(TASK) for t in task_queue.names()), task_queue.names()
    results = task_queue.run(TASK)  # the browser's requests wait meanwhile (page.route)
    assert results
    progress.wait_for(state="detached", timeout=15_000)  # reloaded: finished
    page.wait_for_load_state("load")
    journey.shot(f"{name}-finished")


def test_an_operator_previews_approves_and_watches_a_run(journey, world, task_queue):
    page = journey.page
    page.route("**/*", lambda route: route.continue_())
    journey.log_in("olga-operator", PASSWORD)

    # Collect now, from the runs list
    journey.open("/admin/collection/collectionrun/")
    with page.expect_navigation():
        page.get_by_role("link", name="Collect now", exact=True).click()
    assert "Alpha BV: Review (preview, then approve)" in page.inner_text("#content")
    journey.shot("collect-now")
    with page.expect_navigation():
        page.get_by_role("button", name="Collect now").click()
    preview = CollectionRun.objects.get(tenant=world.tenant)
    assert (preview.kind, preview.state) == (RunKind.PREVIEW, RunState.QUEUED)
    assert "is being prepared" in page.locator(".messagelist").inner_text()
    assert "Waiting for the task workers" in page.inner_text("#content")
    _watch_until_finished(journey, task_queue, "preview")
    preview.refresh_from_db()
    assert (preview.state, preview.to_collect) == (RunState.AWAITING_APPROVAL, 3)
    content = page.inner_text("#content")
    assert "Awaiting approval" in content

    # the preview: approve it, on the confirmation page
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("^Approve")).click()
    assert page.get_by_role("heading", name=f"Approve preview #{preview.pk} of Alpha BV").count()
    lines = page.locator("#content table", has=page.get_by_role("columnheader", name="Invoice"))
    rows = lines.locator("tbody tr")
    assert rows.count() == 3
    for receivable in world.receivables:
        assert str(receivable.invoice_number) in page.inner_text("#content")
    approve = page.get_by_role("button", name=re.compile("^Approve and collect"))
    assert _total(world) in approve.get_attribute("value")
    journey.shot("approve-page")
    with page.expect_navigation():
        approve.click()
    live = CollectionRun.objects.get(tenant=world.tenant, kind=RunKind.LIVE)
    assert live.state == RunState.QUEUED and live.preview_id == preview.pk
    assert page.url.endswith(f"/admin/collection/collectionrun/{live.pk}/change/")
    assert "3 payments are being sent" in page.locator(".messagelist").inner_text()
    assert "Waiting for the task workers to start sending" in page.inner_text("#content")

    # watch it: the page follows the run and shows the outcome
    _watch_until_finished(journey, task_queue, "live-run")
    live.refresh_from_db()
    assert (live.state, live.submitted, live.errors) == (RunState.COMPLETED, 3, 0)
    assert "Completed" in page.inner_text("#content")
    preview.refresh_from_db()
    assert preview.state == RunState.APPROVED

    # the payments are at GoCardless: one per invoice, for its amount, on its mandate
    world.assert_one_payment_per_invoice()
    journey.open("/admin/gocardless/payment/")
    journey.shot("payments")
