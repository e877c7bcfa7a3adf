"""A collection that needs a person, resolved with a reason (issue 15), in Chromium: the
operator follows the dashboard's needs-attention number to the filtered attempts list,
selects one attempt, runs "Mark resolved…", types why and confirms; the attempt leaves the
list, and the audit trail shows the reason with the operator's name. Screenshots:
artifacts/screenshots/test_an_operator_resolves_a_collection_that_needs_attention/.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from core.calendars import tenant_today
from core.models import AuditEntry
from reconciliation.collection.models import AttemptState, CollectionAttempt
from tenants.models import Role
from tests.conftest import _member
from tests.reconciliation.collection.factories import CollectionAttemptFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
REASON = "Paid by bank transfer on the customer's request; receipt seen in the bank account."


@pytest.fixture
def operator(tenant_a):
    user = _member(tenant_a, Role.OPERATOR, "otto-operator")
    user.set_password(PASSWORD)
    user.save()
    today = tenant_today(tenant_a, now=timezone.now())
    failed = CollectionAttemptFactory(
        tenant=tenant_a, state=AttemptState.NEEDS_ATTENTION,
        flag="Payment failed: retries used up", failure_cause="insufficient_funds",
        account_label="4711 Keulen Wasserij B.V.", amount=Decimal("121.00"), charge_date=today)
    CollectionAttemptFactory(
        tenant=tenant_a, state=AttemptState.NEEDS_ATTENTION,
        flag="Charged back by the customer", failure_cause="refund_requested",
        account_label="5020 Utrecht Bakkerij B.V.", amount=Decimal("363.00"), charge_date=today)
    CollectionAttemptFactory(tenant=tenant_a, state=AttemptState.CONFIRMED, flag="",
                             account_label="6100 Zwolle Drukkerij B.V.", charge_date=today)
    return user, failed


def test_an_operator_resolves_a_collection_that_needs_attention(journey, operator):
    user, failed = operator
    page = journey.page
    journey.log_in("otto-operator", PASSWORD)

    # the dashboard: two collections need a decision
    group = page.locator("li", has_text="need a decision (retry, cancel or mark resolved)")
    count = group.locator("a.ws-count").first
    assert count.inner_text() == "2"
    journey.shot("dashboard")
    with page.expect_navigation():
        count.click()
    assert "/admin/collection/collectionattempt/" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert "Zwolle" not in page.locator("#result_list").inner_text()
    journey.shot("needs-attention-list")

    # select the failed payment, "Mark resolved…", Go
    row = rows.filter(has_text="4711 Keulen Wasserij B.V.")
    row.get_by_role("checkbox").check()
    page.select_option("select[name=action]", label="Mark resolved…")
    journey.shot("action-chosen")
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()
    assert page.get_by_role("heading", name="Mark collection attempts resolved").count() >= 1
    assert "4711 Keulen Wasserij B.V." in page.inner_text("#content")
    assert "Utrecht" not in page.inner_text("#content")

    # the reason is required: the browser keeps the empty form from being sent
    reason = page.get_by_label("Reason")
    page.get_by_role("button", name="Mark collection attempts resolved").click()
    assert reason.evaluate("e => e.required && !e.validity.valid")
    assert page.get_by_role("heading", name="Mark collection attempts resolved").count() >= 1
    failed.refresh_from_db()
    assert failed.state == AttemptState.NEEDS_ATTENTION
    journey.shot("reason-required")

    reason.fill(REASON)
    journey.shot("reason-typed")
    with page.expect_navigation():
        page.get_by_role("button", name="Mark collection attempts resolved").click()
    assert "Marked resolved: 1" in page.locator(".messagelist").inner_text()
    failed.refresh_from_db()
    assert (failed.state, failed.resolution, failed.resolved_by_id) == (
        AttemptState.RESOLVED, REASON, user.pk)
    assert failed.resolved_at is not None

    # it has left the needs-attention list; the other one is still there
    assert "/admin/collection/collectionattempt/" in page.url
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "5020 Utrecht Bakkerij B.V." in rows.first.inner_text()
    assert "Keulen" not in page.locator("#result_list").inner_text()
    journey.shot("list-after-resolving")
    assert CollectionAttempt.objects.filter(state=AttemptState.NEEDS_ATTENTION).count() == 1

    # the dashboard counts one, and the audit trail shows the reason with the operator's name
    journey.open("/admin/")
    group = page.locator("li", has_text="a decision (retry, cancel or mark resolved)")
    assert group.locator("a.ws-count").first.inner_text() == "1"
    journey.shot("dashboard-after")
    entry = AuditEntry.objects.get(action="collection.attempt_resolved")
    assert (entry.message, entry.tenant_id) == (REASON, failed.tenant_id)
    journey.open("/admin/core/auditentry/")
    trail = page.locator("#result_list").inner_text()
    assert "otto-operator" in trail
    assert REASON[:40] in trail
    journey.shot("audit-trail")
    with page.expect_navigation():
        page.locator("#result_list tbody tr", has_text="otto-operator").first.locator(
            "th a, td a").first.click()
    assert REASON in page.inner_text("#content")
    journey.shot("audit-entry")
