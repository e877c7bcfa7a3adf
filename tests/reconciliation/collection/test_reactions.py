"""Attempts follow their payments, mandates and invoices (issue 6, Build 6 and 7).

Events travel the real path: the GoCardless simulator runs a scenario, its webhook is posted
to our view, processed, and the domain signals reach the collection engine's receivers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from core.audit import Actor
from core.calendars import tenant_today
from core.models import AuditEntry
from gocardless.client import GoCardlessClient
from gocardless.models import Mandate
from reconciliation.collection import actions
from reconciliation.collection.invoice_changes import attempts_check_against_exact
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
    RunTrigger,
    SkipReason,
)
from reconciliation.collection.reactions import attempt_payment_changed
from reconciliation.collection.runs import run_live, run_preview
from reconciliation.customers.models import CustomerLink, LinkState
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory, SyncRunFactory
from tests.reconciliation.collection.conftest import tenants_due_for_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(tenant_a):
    tenant_a.collection_mode = "auto"
    tenant_a.currencies = ["EUR"]
    tenant_a.lead_days = 30
    tenant_a.retry_count = 1
    tenant_a.retry_spacing_days = 5
    tenant_a.save()
    return tenant_a


@pytest.fixture
def gc(gc_connection):
    return GoCardlessClient.for_connection(gc_connection)


@pytest.fixture
def customer(policy, gc_sim, gc_connection):
    """An Exact customer with an active SEPA mandate at the simulator, linked."""
    mandate_id = gc_sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]
    mandate = Mandate.objects.create(
        tenant=policy, gocardless_id=mandate_id, status="active", scheme="sepa_core"
    )
    account = ExactAccountFactory(tenant=policy)
    CustomerLink.objects.create(
        tenant=policy,
        exact_account=account,
        exact_account_guid=account.exact_id,
        state=LinkState.MATCHED,
        mandate=mandate,
    )
    return account


def invoice(account, amount="100.00", **fields):
    fields.setdefault("due_date", tenant_today(account.tenant))
    return ExactReceivableFactory(
        tenant=account.tenant,
        account=account,
        amount=Decimal(amount),
        outstanding=Decimal(amount),
        **fields,
    )


def collect(tenant, gc):
    return run_live(tenant=tenant, trigger=RunTrigger.USER, client=gc)


def only_attempt(**filters) -> CollectionAttempt:
    return CollectionAttempt.objects.get(**filters)


def test_failure_is_retried_once_then_needs_attention(policy, customer, gc, gc_sim, gc_deliver):
    item = invoice(customer)
    run = collect(policy, gc)
    assert run.state == RunState.COMPLETED and run.submitted == 1
    first = only_attempt(attempt_number=1)
    assert first.state == AttemptState.SUBMITTED

    gc_sim.run_scenario("payment_failed", first.payment_gocardless_id)
    assert set(gc_deliver()) <= {200, 204}
    first.refresh_from_db()
    today = tenant_today(policy)
    assert first.state == AttemptState.RETRY_SCHEDULED
    assert first.next_retry_on == today + dt.timedelta(days=5)
    assert first.failure_cause  # the cause GoCardless gave

    # Before the retry date nothing is sent, and the preview says why.
    preview = run_preview(tenant=policy, trigger=RunTrigger.USER)
    reasons = {i.receivable_exact_id: i.reason for i in preview.items.all()}
    assert reasons[item.exact_id] == SkipReason.RETRY_NOT_DUE
    collect(policy, gc)
    assert CollectionAttempt.objects.count() == 1

    # On the retry date: attempt 2, a new key and a new payment; attempt 1 is "retried".
    CollectionAttempt.objects.filter(pk=first.pk).update(next_retry_on=today)
    collect(policy, gc)
    second = only_attempt(attempt_number=2)
    first.refresh_from_db()
    assert first.state == AttemptState.RETRIED
    assert second.idempotency_key != first.idempotency_key
    assert second.payment_gocardless_id and second.payment_gocardless_id != (
        first.payment_gocardless_id
    )
    assert second.amount == Decimal("100.00")

    gc_sim.run_scenario("payment_failed", second.payment_gocardless_id)
    gc_deliver()
    second.refresh_from_db()
    assert second.state == AttemptState.NEEDS_ATTENTION
    assert "retries used up" in second.flag
    collect(policy, gc)
    assert CollectionAttempt.objects.count() == 2  # a person decides now
    assert AuditEntry.objects.filter(action="collection.attempt_retry_scheduled").count() == 1
    retried = AuditEntry.objects.get(action="collection.attempt_retried")
    assert retried.object_id == str(first.pk) and retried.after == {"state": "retried"}


def test_confirmed_paid_out_and_chargeback_is_disputed(policy, customer, gc, gc_sim, gc_deliver):
    item = invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    gc_sim.run_scenario("payment_paid_out", attempt.payment_gocardless_id)
    gc_deliver()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.PAID_OUT
    # Collected but not yet booked (the invoice is still open in our mirror): no second charge.
    collect(policy, gc)
    assert CollectionAttempt.objects.count() == 1

    gc_sim.run_scenario("payment_charged_back", attempt.payment_gocardless_id)
    gc_deliver()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert attempt.payment_status == "charged_back"
    preview = run_preview(tenant=policy, trigger=RunTrigger.USER)
    assert preview.items.get(receivable_exact_id=item.exact_id).reason == SkipReason.DISPUTED


def test_confirmed(policy, customer, gc, gc_sim, gc_deliver):
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    gc_sim.run_scenario("payment_confirmed", attempt.payment_gocardless_id)
    gc_deliver()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CONFIRMED
    assert AuditEntry.objects.filter(action="collection.attempt_confirmed").count() == 1


def test_cancelled_mandate_flags_in_flight_attempts(policy, customer, gc, gc_sim, gc_deliver):
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    mandate = Mandate.objects.get()
    gc_sim.run_scenario("mandate_cancelled", mandate.gocardless_id)
    gc_deliver()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert "Mandate cancelled" in attempt.flag, attempt.flag


def test_reduced_invoice_cancels_and_recollects_the_new_amount(policy, customer, gc, gc_sim):
    item = invoice(customer, "100.00")
    collect(policy, gc)
    first = only_attempt()
    assert gc_sim.resource("payments", first.payment_gocardless_id)["status"] == (
        "pending_submission"
    )
    # A credit note of 30 arrives in Exact (the invoice stays open for 100).
    ExactReceivableFactory(
        tenant=policy,
        account=customer,
        kind="credit_note",
        amount=Decimal("-30.00"),
        outstanding=Decimal("-30.00"),
    )
    counts = attempts_check_against_exact(tenant=policy, client=gc)
    assert counts["cancelled"] == 1 and counts["recollect"] == 1
    first.refresh_from_db()
    assert first.state == AttemptState.SUPERSEDED
    assert gc_sim.resource("payments", first.payment_gocardless_id)["status"] == "cancelled"
    second = only_attempt(attempt_number=2)
    assert second.amount == Decimal("70.00")
    assert second.receivable_exact_id == item.exact_id
    payment = gc_sim.resource("payments", second.payment_gocardless_id)
    assert payment["amount"] == 7000
    assert payment["metadata"] == second.payment_metadata
    assert CollectionRun.objects.filter(trigger=RunTrigger.CHANGE).count() == 1
    # Nothing changes when the check runs again.
    assert attempts_check_against_exact(tenant=policy, client=gc)["cancelled"] == 0


def test_invoice_paid_elsewhere_cancels_without_recollecting(policy, customer, gc, gc_sim):
    item = invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    item.delete()  # Exact no longer lists it as open: paid by bank transfer
    counts = attempts_check_against_exact(tenant=policy, client=gc)
    assert counts == {"checked": 1, "cancelled": 1, "flagged": 0, "recollect": 0}
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SUPERSEDED
    assert CollectionAttempt.objects.count() == 1


def test_invoice_changed_after_the_payment_left_asks_a_person(
    policy, customer, gc, gc_sim, gc_deliver
):
    item = invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    gc_sim.run_scenario("payment_submitted", attempt.payment_gocardless_id)
    gc_deliver()
    item.delete()
    counts = attempts_check_against_exact(tenant=policy, client=gc)
    assert counts["flagged"] == 1 and counts["cancelled"] == 0
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.NEEDS_ATTENTION
    assert "refund" in attempt.flag
    assert gc_sim.resource("payments", attempt.payment_gocardless_id)["status"] == "submitted"


def test_success_plus_failure_waits_for_gocardless(policy, customer, gc):
    policy.use_success_plus = True
    policy.save()
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    attempt_payment_changed(
        attempt=attempt,
        status="failed",
        details={"cause": "insufficient_funds", "will_attempt_retry": True},
        actor=Actor.system("test"),
    )
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SUBMITTED and "Success+" in attempt.flag
    attempt_payment_changed(
        attempt=attempt,
        status="failed",
        details={"cause": "insufficient_funds", "will_attempt_retry": False},
        actor=Actor.system("test"),
    )
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.NEEDS_ATTENTION


def test_staff_actions(policy, customer, gc, gc_sim):
    user = get_user_model().objects.create_user("fin", password="x")
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    with pytest.raises(actions.ActionRefused, match="reason"):
        actions.attempt_cancel(attempt=attempt, user=user, reason=" ", client=gc)
    with pytest.raises(actions.ActionRefused):
        actions.attempt_resolve(attempt=attempt, user=user, reason="paid")  # still in flight
    actions.attempt_cancel(attempt=attempt, user=user, reason="customer asked", client=gc)
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.CANCELLED and attempt.resolved_by == user
    assert gc_sim.resource("payments", attempt.payment_gocardless_id)["status"] == "cancelled"
    entry = AuditEntry.objects.get(action="collection.attempt_cancelled")
    assert entry.actor_user == user and entry.message == "customer asked"
    # Cancelled by a person: no run collects it again on its own...
    collect(policy, gc)
    assert CollectionAttempt.objects.count() == 1
    # ...and Retry now is only for failed attempts.
    with pytest.raises(actions.ActionRefused):
        actions.attempt_retry_now(attempt=attempt, user=user, client=gc)
    actions.attempt_resolve(attempt=attempt, user=user, reason="settled by bank transfer")
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.RESOLVED


def test_retry_now_collects_at_once(policy, customer, gc, gc_sim, gc_deliver):
    user = get_user_model().objects.create_user("fin", password="x")
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    gc_sim.run_scenario("payment_failed", attempt.payment_gocardless_id)
    gc_deliver()
    run = actions.attempt_retry_now(attempt=attempt, user=user, client=gc)
    assert run.trigger == RunTrigger.RETRY and run.submitted == 1
    assert only_attempt(attempt_number=2).state == AttemptState.SUBMITTED


def finished(sync_run):
    """A sync run is created when it starts and saved again when it ends (as exact.sync)."""
    sync_run.created = 1
    sync_run.save()
    return sync_run


def test_new_invoice_webhook_triggers_a_run(policy, customer, gc_connection, q_sync, run_on_commit):
    policy.collect_new_invoices = True
    policy.save()
    invoice(customer)
    with run_on_commit():
        finished(SyncRunFactory(tenant=policy, entity="receivables", trigger="webhook:7"))
    run = CollectionRun.objects.get(trigger=RunTrigger.WEBHOOK)
    assert run.kind == RunKind.LIVE and run.submitted == 1
    # A scheduled sync that finds new invoices waits for the daily run.
    with run_on_commit():
        finished(SyncRunFactory(tenant=policy, entity="receivables", trigger="schedule"))
    assert CollectionRun.objects.filter(trigger=RunTrigger.WEBHOOK).count() == 1


def test_daily_schedule_runs_each_tenant_once_at_its_local_hour(policy):
    policy.time_zone = "Europe/Amsterdam"
    policy.collection_hour = 6
    policy.save()
    before = dt.datetime(2026, 11, 26, 4, 59, tzinfo=dt.UTC)  # 05:59 in Amsterdam
    after = dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC)  # 06:00
    assert tenants_due_for_run(now=before) == []
    assert tenants_due_for_run(now=after) == [policy]
    CollectionRun.objects.create(
        tenant=policy,
        kind=RunKind.PREVIEW,
        trigger=RunTrigger.SCHEDULE,
        state=RunState.COMPLETED,
        as_of=dt.date(2026, 11, 26),
    )
    assert tenants_due_for_run(now=after) == []
    policy.collection_mode = "off"
    policy.save()
    assert tenants_due_for_run(now=after + dt.timedelta(days=1)) == []


def test_a_payment_whose_id_was_lost_is_found_by_its_metadata(
    policy, customer, gc, gc_sim, gc_deliver
):
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    payment_id = attempt.payment_gocardless_id
    # As if the process died after GoCardless created the payment, before we saved its id.
    CollectionAttempt.objects.filter(pk=attempt.pk).update(
        payment_gocardless_id="", state=AttemptState.PENDING
    )
    gc_sim.run_scenario("payment_confirmed", payment_id)
    gc_deliver()
    attempt.refresh_from_db()
    assert attempt.payment_gocardless_id == payment_id
    assert attempt.state == AttemptState.CONFIRMED


def test_a_preview_of_a_few_invoices_leaves_the_full_preview_awaiting(policy, customer):
    policy.collection_mode = "review"
    policy.save()
    first = invoice(customer, "10.00")
    second = invoice(customer, "20.00")
    full = run_preview(tenant=policy, trigger=RunTrigger.SCHEDULE)
    few = run_preview(tenant=policy, trigger=RunTrigger.WEBHOOK, only_receivables=[second.exact_id])
    full.refresh_from_db()
    assert full.state == few.state == RunState.AWAITING_APPROVAL
    again = run_preview(
        tenant=policy,
        trigger=RunTrigger.WEBHOOK,
        only_receivables=[first.exact_id, second.exact_id],
    )
    few.refresh_from_db()
    full.refresh_from_db()
    assert few.state == RunState.SUPERSEDED and full.state == RunState.AWAITING_APPROVAL
    run_preview(tenant=policy, trigger=RunTrigger.USER)
    full.refresh_from_db()
    again.refresh_from_db()
    assert full.state == again.state == RunState.SUPERSEDED


def test_retry_now_refused_for_an_inactive_tenant(policy, customer, gc, gc_sim, gc_deliver):
    user = get_user_model().objects.create_user("fin", password="x")
    invoice(customer)
    collect(policy, gc)
    attempt = only_attempt()
    gc_sim.run_scenario("payment_failed", attempt.payment_gocardless_id)
    gc_deliver()
    policy.is_active = False
    policy.save()
    with pytest.raises(actions.ActionRefused, match="inactive"):
        actions.attempt_retry_now(attempt=attempt, user=user, client=gc)
    assert CollectionAttempt.objects.count() == 1


def test_a_rerun_counts_the_attempts_it_resumed(policy, customer, gc, gc_sim):
    from reconciliation.collection.selection import selection_evaluate
    from reconciliation.collection.submission import attempts_write

    invoice(customer, "42.00")
    # A crashed run wrote the attempt and died before (or while) sending it.
    (plan,) = selection_evaluate(tenant=policy, today=tenant_today(policy))
    (attempt,) = attempts_write(tenant=policy, run=None, plan=plan, actor=Actor.system("t"))
    rerun = collect(policy, gc)
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SUBMITTED and attempt.send_count == 1
    assert rerun.submitted == 1 and rerun.errors == 0
    assert rerun.submitted_totals == {"EUR": "42.00"}
    assert len(gc_sim.resource("payments")) == 1


def _crashed_attempt(policy):
    """An attempt a crashed run wrote and never sent."""
    from reconciliation.collection.selection import selection_evaluate
    from reconciliation.collection.submission import attempts_write

    (plan,) = selection_evaluate(tenant=policy, today=tenant_today(policy))
    (attempt,) = attempts_write(tenant=policy, run=None, plan=plan, actor=Actor.system("t"))
    return attempt, plan


def test_a_pending_attempt_resumed_after_its_charge_date_passed_is_redated(
    policy, customer, gc, gc_sim
):
    invoice(customer, "42.00")
    attempt, plan = _crashed_attempt(policy)
    # Resumed days later: the date it was written for is now in the past.
    stale = tenant_today(policy) - dt.timedelta(days=2)
    CollectionAttempt.objects.filter(pk=attempt.pk).update(charge_date=stale)
    collect(policy, gc)
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SUBMITTED, attempt.flag
    assert attempt.charge_date == plan.charge_date  # the earliest GoCardless accepts today
    (payment,) = gc_sim.resource("payments")
    assert payment["charge_date"] == plan.charge_date.isoformat()
    entry = AuditEntry.objects.get(action="collection.attempt_redated")
    assert entry.before == {"charge_date": stale.isoformat()}
    assert entry.after == {"charge_date": plan.charge_date.isoformat()}


def test_a_pending_attempt_still_on_time_keeps_its_date(policy, customer, gc, gc_sim):
    invoice(customer, "42.00", due_date=tenant_today(policy) + dt.timedelta(days=20))
    attempt, plan = _crashed_attempt(policy)
    collect(policy, gc)
    attempt.refresh_from_db()
    assert attempt.charge_date == plan.charge_date
    assert gc_sim.resource("payments")[0]["charge_date"] == plan.charge_date.isoformat()
    assert not AuditEntry.objects.filter(action="collection.attempt_redated").exists()


def test_a_redated_resend_of_a_payment_already_made_adopts_it_on_its_own_date(
    policy, customer, gc, gc_sim
):
    invoice(customer, "42.00", due_date=tenant_today(policy) + dt.timedelta(days=20))
    collect(policy, gc)
    attempt = only_attempt()
    payment_id, first_date = attempt.payment_gocardless_id, attempt.charge_date
    assert first_date >= tenant_today(policy) + dt.timedelta(days=20)  # on the due date
    # The process died after GoCardless created the payment; the rerun comes days later.
    CollectionAttempt.objects.filter(pk=attempt.pk).update(
        payment_gocardless_id="", payment_status="", state=AttemptState.PENDING,
        charge_date=tenant_today(policy) - dt.timedelta(days=2),
    )
    collect(policy, gc)
    attempt.refresh_from_db()
    assert AuditEntry.objects.filter(action="collection.attempt_redated").count() == 1
    # Same key: GoCardless answers with the payment it made (409), never a second one.
    assert [p["id"] for p in gc_sim.resource("payments")] == [payment_id]
    assert attempt.payment_gocardless_id == payment_id
    assert attempt.state == AttemptState.SUBMITTED
    # What GoCardless will actually charge, not the earlier date the resend asked for.
    assert attempt.charge_date == first_date


def test_events_learned_by_polling_are_audited_as_the_polling_job(
    policy, customer, gc, gc_sim, gc_connection, settings
):
    """The audit trail says how we learned of a change: an event fetched by the polling job
    is the schedule's doing, not a webhook's (both were recorded as "webhook" before)."""
    from gocardless.actors import POLL_ACTOR_LABEL
    from gocardless.polling import events_poll

    def actor_of(action):
        (actor,) = set(AuditEntry.objects.filter(action=action).values_list(
            "actor_type", "actor_label"))
        return actor

    settings.GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS = 0
    gc_sim.set_webhooks_enabled(False)
    invoice(customer)
    invoice(customer, amount="50.00")
    collect(policy, gc)
    first, second = CollectionAttempt.objects.order_by("pk")
    gc_sim.run_scenario("payment_confirmed", first.payment_gocardless_id)
    events_poll(connection=gc_connection)
    assert actor_of("collection.attempt_confirmed") == ("schedule", POLL_ACTOR_LABEL)

    gc_sim.run_scenario("mandate_cancelled", Mandate.objects.get().gocardless_id)
    events_poll(connection=gc_connection)
    second.refresh_from_db()
    assert second.state == AttemptState.NEEDS_ATTENTION
    assert actor_of("collection.attempt_needs_attention") == ("schedule", POLL_ACTOR_LABEL)


def test_actor_for_event_names_how_the_event_arrived():
    from gocardless.actors import actor_for_event
    from gocardless.models import EventSource, GoCardlessEvent

    assert actor_for_event(GoCardlessEvent(source=EventSource.WEBHOOK)) == Actor.webhook(
        "gocardless")
    assert actor_for_event(GoCardlessEvent(source=EventSource.POLL)).type == "schedule"
    assert actor_for_event(None, without_event="bookings") == Actor.system("bookings")
