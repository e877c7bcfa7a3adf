"""A payment whose creation had an unknown outcome (GoCardless answered 5xx on every try)
stays pending; the 15-minute sweep resends it ten minutes later in a live run limited to its
invoice, instead of leaving it for the company's next scheduled run, two weeks away on a
days-1-and-15 schedule (found by the chaos month, docs/chaos.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunState,
    RunTrigger,
)
from reconciliation.collection.runs import (
    PENDING_RESEND_AFTER,
    pending_attempts_resend,
    queued_run_execute,
    run_live,
)
from tenants.models import CollectionMode

pytestmark = pytest.mark.django_db


def _a_run_where_one_payment_had_no_answer(world):
    # A 500 on the first payment: GoCardless may or may not have made it.
    world.sim.inject("error_500", 1, method="POST", path="/payments")
    run = run_live(tenant=world.tenant, trigger=RunTrigger.SCHEDULE)
    assert run.state == RunState.COMPLETED
    pending = CollectionAttempt.objects.get(state=AttemptState.PENDING)
    assert CollectionAttempt.objects.exclude(state=AttemptState.PENDING).count() >= 1
    return pending


def test_a_pending_payment_is_resent_by_the_sweep(collection_world_factory):
    world = collection_world_factory(customers=3, collection_mode=CollectionMode.AUTO)
    pending = _a_run_where_one_payment_had_no_answer(world)
    soon = timezone.now() + PENDING_RESEND_AFTER - dt.timedelta(minutes=1)
    assert pending_attempts_resend(now=soon) == []  # not yet

    later = timezone.now() + PENDING_RESEND_AFTER + dt.timedelta(minutes=1)
    said = pending_attempts_resend(now=later)

    resend = CollectionRun.objects.get(trigger=RunTrigger.RESEND)
    assert said == [f"{world.tenant}: run {resend.pk} resends 1 pending payment(s)"]
    assert resend.state == RunState.QUEUED
    assert resend.only_receivables == [str(pending.receivable_exact_id)]
    queued_run_execute(resend.pk)
    pending.refresh_from_db()
    assert pending.state == AttemptState.SUBMITTED and pending.payment_gocardless_id
    world.assert_one_payment_per_invoice()
    assert CollectionAttempt.objects.count() == 3  # one per invoice: nothing else collected
    assert pending_attempts_resend(now=later) == []


def test_no_resend_while_a_live_run_is_under_way(collection_world_factory):
    world = collection_world_factory(customers=2, collection_mode=CollectionMode.AUTO)
    _a_run_where_one_payment_had_no_answer(world)
    CollectionRun.objects.create(tenant=world.tenant, kind="live", trigger=RunTrigger.USER,
                                 state=RunState.QUEUED, as_of=timezone.localdate())
    later = timezone.now() + PENDING_RESEND_AFTER + dt.timedelta(minutes=1)
    assert pending_attempts_resend(now=later) == []  # that run resumes it itself
