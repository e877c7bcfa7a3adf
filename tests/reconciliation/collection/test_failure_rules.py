"""Failures handled by cause (docs/failures.md): one test per default action, through the
real event path (the simulator fails the payment, its webhook is posted to our view,
processed, and the signal reaches the reactions), plus the company's own rules."""

# The fixtures imported from other test modules are redefined as test arguments:
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from core.calendars import tenant_today
from core.models import AuditEntry
from reconciliation.collection.failure_rules import (
    CAUSE_CHOICES,
    DEFAULT_RULES,
    failure_decide,
    failure_table,
)
from reconciliation.collection.models import (
    AttemptState,
    FailureAction,
    FailureRule,
    FailureSettings,
    PayLink,
    PayLinkState,
)
from tests.reconciliation.collection.test_reactions import (  # noqa: F401 (fixtures)
    collect,
    customer,
    gc,
    invoice,
    only_attempt,
    policy,
)

pytestmark = pytest.mark.django_db


def fail(gc_sim, gc_deliver, attempt, cause=None):
    if cause is None:
        gc_sim.run_scenario("payment_failed", attempt.payment_gocardless_id)
    else:
        gc_sim.fail_payment(attempt.payment_gocardless_id, cause)
    assert set(gc_deliver()) <= {200, 204}
    attempt.refresh_from_db()
    return attempt


def test_default_retry_after_the_tenants_spacing(policy, customer, gc, gc_sim, gc_deliver):
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt())  # insufficient funds (SEPA)
    assert attempt.state == AttemptState.RETRY_SCHEDULED
    assert attempt.next_retry_on == tenant_today(policy) + dt.timedelta(days=5)
    assert attempt.decided_by.startswith("Default rule: Not enough money")
    assert "collect again after 5 days, at most once" in attempt.decided_by


def test_company_rule_retries_after_its_own_days(policy, customer, gc, gc_sim, gc_deliver):
    FailureRule.objects.create(
        tenant=policy,
        cause="insufficient_funds",
        action=FailureAction.RETRY,
        retry_after_days=3,
        retry_times=2,
    )
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt())
    assert attempt.state == AttemptState.RETRY_SCHEDULED
    assert attempt.next_retry_on == tenant_today(policy) + dt.timedelta(days=3)
    assert attempt.decided_by.startswith("Company rule:")


def test_default_success_plus_leaves_the_retry_to_gocardless(
    policy, customer, gc, gc_sim, gc_deliver
):
    policy.use_success_plus = True
    policy.save()
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt())
    assert attempt.state == AttemptState.SUBMITTED
    assert "Success+" in attempt.flag
    assert "let GoCardless Success+ retry" in attempt.decided_by
    assert gc_sim.resource("payments", attempt.payment_gocardless_id)["retry_if_possible"]


def test_default_no_retry_needs_attention(policy, customer, gc, gc_sim, gc_deliver):
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt(), "bank_account_closed")
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert attempt.failure_cause == "bank_account_closed"
    assert "not retried for this cause" in attempt.flag
    assert attempt.decided_by.startswith("Default rule: The customer's bank account is closed")
    # Payment links are off until the company switches them on: nothing was e-mailed.
    assert not PayLink.objects.exists() and not mail.outbox


def test_an_unknown_cause_is_not_retried(policy, customer, gc, gc_sim, gc_deliver):
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt(), "a_cause_nobody_documented")
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert attempt.decided_by.startswith("Default rule: Any cause not listed here: no retry")


def test_pay_link_when_the_mandate_is_gone(policy, customer, gc, gc_sim, gc_deliver):
    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    item = invoice(customer, "121.00")
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt(), "mandate_cancelled")
    assert attempt.state == AttemptState.PAY_LINK_SENT
    assert "then a payment link" in attempt.decided_by
    link = PayLink.objects.get()
    assert link.state == PayLinkState.SENT  # the task ran after the event's commit
    assert link.key == f"{item.exact_id}/1.0"
    assert link.email == customer.email
    request = gc_sim.resource("billing_requests", link.billing_request_gocardless_id)
    assert request["payment_request"]["amount"] == 12100
    assert request["payment_request"]["metadata"] == {
        "mlc_attempt": link.key,
        "exact_invoice": str(item.invoice_number),
        "exact_account": str(customer.exact_id),
    }
    # A Dutch customer: no instant bank pay in the Netherlands, so a mandate and a payment.
    assert request["mandate_request"]["currency"] == "EUR" and not link.instant
    (message,) = mail.outbox
    assert message.to == [customer.email]
    assert link.authorisation_url in message.body and "EUR 121.00" in message.body
    assert AuditEntry.objects.filter(action="paylink.created", object_id=str(link.pk)).exists()
    sent = AuditEntry.objects.get(action="paylink.status_changed", object_id=str(link.pk))
    assert sent.after["state"] == "sent" and link.authorisation_url in sent.message


def test_retries_used_up_then_pay_link(policy, customer, gc, gc_sim, gc_deliver):
    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    policy.retry_count = 0
    policy.save()
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt())
    assert attempt.state == AttemptState.PAY_LINK_SENT
    assert PayLink.objects.get().state == PayLinkState.SENT


def test_no_pay_link_without_an_email_address(policy, customer, gc, gc_sim, gc_deliver):
    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    customer.email = ""
    customer.save()
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt(), "mandate_cancelled")
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert not PayLink.objects.exists()


def test_chargebacks_and_disputes_are_never_retried_whatever_the_rule_says(policy):
    for cause in ("charged_back", "authorisation_disputed"):
        FailureRule.objects.create(
            tenant=policy, cause=cause, action=FailureAction.RETRY, pay_link=True
        )
    decision = failure_decide(tenant=policy, cause="refund_requested", status="charged_back")
    assert decision.action == FailureAction.NO_RETRY and not decision.pay_link
    decision = failure_decide(tenant=policy, cause="authorisation_disputed")
    assert decision.action == FailureAction.NO_RETRY and not decision.pay_link


def test_a_company_catch_all_covers_causes_without_a_default(policy):
    FailureRule.objects.create(
        tenant=policy, cause="unknown", action=FailureAction.RETRY, retry_after_days=2
    )
    assert failure_decide(tenant=policy, cause="payment_stopped").action == FailureAction.RETRY
    # A documented cause keeps its default.
    decision = failure_decide(tenant=policy, cause="bank_account_closed")
    assert decision.action == FailureAction.NO_RETRY


def test_the_table_offers_every_documented_cause_in_words(policy):
    causes = [cause for cause, _ in CAUSE_CHOICES]
    assert set(DEFAULT_RULES) <= set(causes) and "unknown" in causes
    table = failure_table(tenant=policy)
    assert len(table) == len(CAUSE_CHOICES)
    words = dict((cause, decision.rule) for cause, _, decision in table)
    assert words["insufficient_funds"].startswith("Default rule: Not enough money")
    assert "_" not in words["bank_account_closed"].split(":", 2)[1]


def test_pay_link_when_the_mandate_is_cancelled_under_a_pending_payment(
    policy, customer, gc, gc_sim, gc_deliver
):
    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    mandate = customer_mandate(customer)
    # The bank closes the account: GoCardless cancels the mandate, then its pending payment
    # (the mandate's event is processed first).
    gc_sim.run_scenario("mandate_cancelled", mandate)
    assert set(gc_deliver()) <= {200, 204}
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.PAY_LINK_SENT, attempt.flag
    assert attempt.payment_status == "cancelled"
    assert "The customer's bank account is closed" in attempt.decided_by
    assert PayLink.objects.get().state == PayLinkState.SENT


def test_a_retry_on_a_mandate_that_then_stops_becomes_a_pay_link(
    policy, customer, gc, gc_sim, gc_deliver
):
    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    invoice(customer)
    collect(policy, gc)
    attempt = fail(gc_sim, gc_deliver, only_attempt())
    assert attempt.state == AttemptState.RETRY_SCHEDULED
    gc_sim.run_scenario("mandate_cancelled", customer_mandate(customer))
    assert set(gc_deliver()) <= {200, 204}
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.PAY_LINK_SENT and attempt.next_retry_on is None
    assert len(mail.outbox) == 1


def customer_mandate(account) -> str:
    from reconciliation.customers.models import CustomerLink

    return CustomerLink.objects.get(exact_account=account).mandate.gocardless_id


def test_the_link_asks_only_for_what_is_still_open_in_exact(
    policy, customer, gc, gc_sim, gc_deliver
):
    from decimal import Decimal

    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    item = invoice(customer, "100.00")
    collect(policy, gc)
    item.outstanding = Decimal("60.00")  # 40.00 paid by bank transfer meanwhile
    item.save()
    attempt = fail(gc_sim, gc_deliver, only_attempt(), "mandate_cancelled")
    assert attempt.state == AttemptState.PAY_LINK_SENT
    link = PayLink.objects.get()
    assert link.amount == Decimal("60.00")
    request = gc_sim.resource("billing_requests", link.billing_request_gocardless_id)
    assert request["payment_request"]["amount"] == 6000


def test_no_link_for_an_invoice_no_longer_open_in_exact(policy, customer, gc, gc_sim, gc_deliver):
    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    item = invoice(customer)
    collect(policy, gc)
    item.delete()  # paid by other means: the sync removed it
    attempt = fail(gc_sim, gc_deliver, only_attempt(), "mandate_cancelled")
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert "no longer open" in attempt.flag
    assert not PayLink.objects.exists()


def test_a_run_skips_an_invoice_whose_customer_holds_an_open_link(
    policy, customer, gc, gc_sim, gc_deliver
):
    from reconciliation.collection.models import SkipReason
    from reconciliation.collection.runs import run_preview

    FailureSettings.objects.create(tenant=policy, pay_links_enabled=True)
    policy.retry_count = 0
    policy.save()
    item = invoice(customer)
    collect(policy, gc)
    assert fail(gc_sim, gc_deliver, only_attempt()).state == AttemptState.PAY_LINK_SENT
    # The mandate is still active: only the link keeps the run from charging again.
    preview = run_preview(tenant=policy, trigger="user")
    line = preview.items.get(receivable_exact_id=item.exact_id)
    assert line.reason == SkipReason.PAY_LINK_SENT, (line.reason, line.detail)
    assert line.detail.startswith("payment link e-mailed on")
