"""The failure table's admin: a company's administrator edits their own company's rows, in
words, every change audited; refused choices are messages on the form, never a 500; other
companies' rows are out of reach. Payment links on their screens, cancelled by operators."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from core.models import AuditEntry
from reconciliation.collection.attention import attention_digests_send
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    FailureAction,
    FailureRule,
    PayLinkState,
)
from tests.reconciliation.collection.test_pay_link_rules import make_link

pytestmark = pytest.mark.django_db

ADD = reverse("admin:collection_failurerule_add")
LIST = reverse("admin:collection_failurerule_changelist")


def post_rule(client, tenant, **fields):
    data = {
        "tenant": tenant.pk,
        "cause": "insufficient_funds",
        "action": FailureAction.RETRY,
        "retry_after_days": 3,
        "retry_times": 2,
        **fields,
    }
    return client.post(ADD, data)


def test_an_administrator_adds_a_rule_for_their_company(client, admin_of_a, tenant_a):
    client.force_login(admin_of_a)
    page = client.get(ADD)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Not enough money in the customer&#x27;s account" in text
    assert "Let GoCardless Success+ retry" in text
    response = post_rule(client, tenant_a)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = FailureRule.objects.get()
    assert (rule.tenant, rule.cause, rule.retry_after_days) == (tenant_a, "insufficient_funds", 3)
    assert AuditEntry.objects.filter(object_id=str(rule.pk), tenant=tenant_a).exists()
    listing = client.get(LIST).content.decode()
    assert "Not enough money in the customer&#x27;s account" in listing
    assert "2 times, 3 days apart" in listing
    # The overview: what applies now to every cause, the company's row and the defaults.
    assert "Company rule: Not enough money" in listing
    assert "Default rule: The customer&#x27;s bank account is closed: no retry" in listing
    assert "Payment links are switched off" in listing


def test_a_chargeback_cannot_be_set_to_retry(client, admin_of_a, tenant_a):
    client.force_login(admin_of_a)
    response = post_rule(client, tenant_a, cause="charged_back", pay_link="on")
    assert response.status_code == 200
    text = response.content.decode()
    assert "never collected again automatically" in text
    assert "is not sent a payment link" in text
    assert not FailureRule.objects.exists()


def test_one_row_per_cause(client, admin_of_a, tenant_a):
    client.force_login(admin_of_a)
    assert post_rule(client, tenant_a).status_code == 302
    response = post_rule(client, tenant_a)
    assert response.status_code == 200
    assert FailureRule.objects.count() == 1


def test_operators_read_but_do_not_change_the_table(client, operator_of_a, tenant_a):
    client.force_login(operator_of_a)
    assert client.get(LIST).status_code == 200
    assert post_rule(client, tenant_a).status_code == 403
    assert not FailureRule.objects.exists()


def test_another_companys_rules_are_out_of_reach(client, admin_of_a, tenant_a, tenant_b):
    theirs = FailureRule.objects.create(
        tenant=tenant_b, cause="insufficient_funds", action=FailureAction.NO_RETRY
    )
    client.force_login(admin_of_a)
    change = reverse("admin:collection_failurerule_change", args=[theirs.pk])
    assert client.get(change).status_code in (302, 404)
    assert "Bravo" not in client.get(LIST).content.decode()
    response = post_rule(client, tenant_b)
    assert response.status_code == 200  # tenant B is not a choice
    assert FailureRule.objects.count() == 1


def test_a_link_on_its_attempt_line_and_list_pages_and_its_cancel(client, operator_of_a, tenant_a):
    link = make_link(tenant_a, number=4711)
    client.force_login(operator_of_a)
    attempt_page = client.get(
        reverse("admin:collection_collectionattempt_change", args=[link.attempt_id])
    ).content.decode()
    assert "Payment link: Sent to the customer" in attempt_page
    assert "EUR 10.00" in attempt_page
    listing = client.get(reverse("admin:collection_paylink_changelist")).content.decode()
    assert "4711" in listing and "Sent to the customer" in listing
    response = client.post(
        reverse("admin:collection_paylink_changelist"),
        {"action": "cancel_links", "_selected_action": [link.pk]},
        follow=True,
    )
    assert "Cancelled: 1 payment link." in response.content.decode()
    link.refresh_from_db()
    assert link.state == PayLinkState.CANCELLED
    (entry,) = AuditEntry.objects.filter(action="paylink.status_changed")
    assert entry.after == {"state": "cancelled"} and entry.actor_user == operator_of_a


def test_the_hourly_digest_expires_links_first(tenant_a):
    now = dt.datetime(2027, 3, 28, 10, 0, tzinfo=dt.UTC)
    link = make_link(tenant_a, expires_at=now - dt.timedelta(hours=1))
    attention_digests_send(now=now)
    link.refresh_from_db()
    assert link.state == PayLinkState.EXPIRED
    attempt = CollectionAttempt.objects.get(pk=link.attempt_id)
    assert attempt.state == AttemptState.NEEDS_ATTENTION


def test_the_failure_and_payment_link_pages_are_in_words(client, admin_of_a, tenant_a):
    from tests.reconciliation.collection.factories import (
        FailureRuleFactory,
        FailureSettingsFactory,
        PayLinkFactory,
    )
    from tests.workspace.page_words import findings

    rule = FailureRuleFactory(tenant=tenant_a, cause="refer_to_payer")
    settings = FailureSettingsFactory(tenant=tenant_a)
    link = PayLinkFactory(tenant=tenant_a, payment_gocardless_id="PM0000000001")
    link.attempt.decided_by = rule_words = "Company rule: Refused by the customer's bank: no retry"
    link.attempt.save()
    client.force_login(admin_of_a)
    codes = {
        "refer_to_payer",
        "insufficient_funds",
        "mandate_cancelled",
        "charged_back",
        "pay_link_sent",
        "paid_by_link",
        "success_plus",
        "no_retry",
        "retry",
        "sent",
        "creating",
    }
    pages = [
        reverse("admin:collection_failurerule_changelist"),
        reverse("admin:collection_failurerule_change", args=[rule.pk]),
        reverse("admin:collection_failurerule_add"),
        reverse("admin:collection_failuresettings_change", args=[settings.pk]),
        reverse("admin:collection_paylink_changelist"),
        reverse("admin:collection_paylink_change", args=[link.pk]),
        reverse("admin:collection_collectionattempt_change", args=[link.attempt_id]),
        reverse("admin:collection_collectionattempt_changelist") + "?state=pay_link_sent",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert findings(html, codes=codes, minor={12100}) == [], url
    attempt_page = client.get(pages[6]).content.decode()
    assert rule_words.replace("'", "&#x27;") in attempt_page
    assert "Failed; payment link sent to the customer" in attempt_page
