"""A company administrator edits the failure table (docs/failures.md), in Chromium: the list
shows what happens now to every failure cause (the defaults, in words); asking to retry a
chargeback is refused on the form with the reason; a rule for "not enough money" (collect
again after 3 days, at most twice, then a payment link) is saved, shown in the overview as
the company's rule, and audited with the administrator's name. Screenshots:
artifacts/screenshots/test_an_administrator_edits_the_failure_table/.
"""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from reconciliation.collection.models import FailureAction, FailureRule
from tenants.models import Role
from tests.conftest import _member

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def administrator(tenant_a):
    user = _member(tenant_a, Role.ADMIN, "ada-admin")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_an_administrator_edits_the_failure_table(journey, administrator, tenant_a):
    page = journey.page
    journey.log_in("ada-admin", PASSWORD)

    journey.open("/admin/collection/failurerule/")
    content = page.inner_text("#content")
    assert f"What happens now when a payment of {tenant_a.name} fails" in content
    assert "Default rule: The customer's bank account is closed: no retry" in content
    assert "Payment links are switched off" in content
    assert "insufficient_funds" not in content  # causes in words, never codes
    journey.shot("failure-table")

    with page.expect_navigation():
        page.get_by_role("link", name="Add failure rule").click()
    page.select_option("#id_cause", label="Charged back by the customer's bank")
    page.select_option("#id_action", label="Collect again after some days")
    journey.shot("chargeback-retry-asked")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert "never collected again automatically" in page.inner_text("#content")
    assert not FailureRule.objects.exists()
    journey.shot("chargeback-refused")

    page.select_option("#id_cause", label="Not enough money in the customer's account")
    page.select_option("#id_action", label="Collect again after some days")
    page.fill("#id_retry_after_days", "3")
    page.fill("#id_retry_times", "2")
    page.check("#id_pay_link")
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    rule = FailureRule.objects.get()
    assert (rule.cause, rule.action, rule.retry_after_days, rule.retry_times, rule.pay_link) == (
        "insufficient_funds",
        FailureAction.RETRY,
        3,
        2,
        True,
    )
    assert "Not enough money in the customer's account: collect again" in page.inner_text(
        ".messagelist"
    )
    content = page.inner_text("#content")
    assert "2 times, 3 days apart" in content
    assert (
        "Company rule: Not enough money in the customer's account: collect again after 3 "
        "days, at most 2 times, then a payment link"
    ) in content
    journey.shot("rule-saved")

    entry = AuditEntry.objects.get(object_id=str(rule.pk), tenant=tenant_a)
    assert entry.actor_user == administrator
