"""The selection's payment-link check (pay_link_rules.py) and the link's life after it was
sent: expiry, a person's cancel, a payment through the link that fails."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from core.audit import Actor
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    PayLink,
    PayLinkState,
    SkipReason,
)
from reconciliation.collection.pay_link_rules import (
    pay_link_money_on_its_way,
    pay_link_skip,
    pay_links_open,
)
from reconciliation.collection.pay_links import (
    PayLinkRefused,
    pay_link_cancel,
    pay_link_payment_changed,
    pay_links_expire,
)
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 28, 10, 0, tzinfo=dt.UTC)


def make_link(tenant, *, state=PayLinkState.SENT, number=1, **fields) -> PayLink:
    receivable = uuid.uuid4()
    attempt = CollectionAttempt.objects.create(
        tenant=tenant,
        receivable_exact_id=receivable,
        invoice_number=number,
        attempt_number=1,
        key=f"{receivable}/1",
        idempotency_key=f"mlc-pay-{receivable.hex}",
        amount=Decimal("10.00"),
        currency="EUR",
        mandate_gocardless_id="MD1",
        payment_gocardless_id=f"PM{number}",
        state=AttemptState.PAY_LINK_SENT,
    )
    fields.setdefault("sent_at", NOW - dt.timedelta(days=1))
    return PayLink.objects.create(
        tenant=tenant,
        attempt=attempt,
        receivable_exact_id=receivable,
        invoice_number=number,
        amount=Decimal("10.00"),
        currency="EUR",
        key=f"{receivable}/1.0",
        idempotency_key=f"mlc-link-{receivable.hex}",
        email="ap@example.test",
        state=state,
        **fields,
    )


def test_open_links_skip_their_invoice_and_nothing_else(tenant_a):
    sent = make_link(tenant_a, number=1)
    paid = make_link(tenant_a, state=PayLinkState.PAID, number=2)
    creating = make_link(tenant_a, state=PayLinkState.CREATING, number=3, sent_at=None)
    expired = make_link(tenant_a, state=PayLinkState.EXPIRED, number=4)
    cancelled = make_link(tenant_a, state=PayLinkState.CANCELLED, number=5)
    other_company = make_link(TenantFactory(), number=6)
    open_links = pay_links_open(tenant=tenant_a)
    assert set(open_links) == {
        sent.receivable_exact_id,
        paid.receivable_exact_id,
        creating.receivable_exact_id,
    }
    reason, detail = pay_link_skip(sent.receivable_exact_id, open_links)
    assert reason == SkipReason.PAY_LINK_SENT and detail.startswith("payment link e-mailed on")
    assert "paid through the payment link" in pay_link_skip(paid.receivable_exact_id, open_links)[1]
    assert "being made" in pay_link_skip(creating.receivable_exact_id, open_links)[1]
    for link in (expired, cancelled, other_company):
        assert pay_link_skip(link.receivable_exact_id, open_links) is None
    assert pay_link_skip(uuid.uuid4(), open_links) is None
    # Only the paid link's money is on its way (it lowers what the customer still owes).
    by_customer, by_receivable = pay_link_money_on_its_way(open_links)
    assert by_receivable == {paid.receivable_exact_id: Decimal("10.00")}
    assert by_customer == {(paid.account_exact_id, "EUR"): Decimal("10.00")}


def test_open_links_are_loaded_in_one_query(tenant_a, django_assert_num_queries):
    for number in range(5):
        make_link(tenant_a, number=number + 1)
    with django_assert_num_queries(1):
        assert len(pay_links_open(tenant=tenant_a)) == 5


def test_an_expired_link_goes_back_to_a_person(tenant_a):
    link = make_link(tenant_a, expires_at=NOW - dt.timedelta(minutes=1))
    still_open = make_link(tenant_a, number=2, expires_at=NOW + dt.timedelta(days=1))
    assert pay_links_expire(now=NOW) == 1
    link.refresh_from_db()
    assert link.state == PayLinkState.EXPIRED
    attempt = CollectionAttempt.objects.get(pk=link.attempt_id)
    assert attempt.state == AttemptState.NEEDS_ATTENTION and "expired" in attempt.flag
    still_open.refresh_from_db()
    assert still_open.state == PayLinkState.SENT
    assert pay_links_expire(now=NOW) == 0


def test_a_person_cancels_a_link(tenant_a):
    user = get_user_model().objects.create_user("fin", password="x")
    link = make_link(tenant_a)  # no billing request yet: nothing to cancel at GoCardless
    pay_link_cancel(link=link, user=user)
    link.refresh_from_db()
    assert link.state == PayLinkState.CANCELLED
    assert CollectionAttempt.objects.get(pk=link.attempt_id).state == AttemptState.NEEDS_ATTENTION
    with pytest.raises(PayLinkRefused):
        pay_link_cancel(link=link, user=user)


def test_a_payment_through_the_link_that_fails_goes_back_to_a_person(tenant_a):
    link = make_link(tenant_a)
    payment = {"id": "PMLINK", "status": "failed", "metadata": link.payment_metadata}
    pay_link_payment_changed(
        tenant=tenant_a,
        payment=payment,
        details={"cause": "insufficient_funds"},
        actor=Actor.system("test"),
    )
    link.refresh_from_db()
    assert link.state == PayLinkState.PAYMENT_FAILED and link.payment_gocardless_id == "PMLINK"
    attempt = CollectionAttempt.objects.get(pk=link.attempt_id)
    assert attempt.state == AttemptState.NEEDS_ATTENTION and "insufficient_funds" in attempt.flag


def test_a_payment_that_is_not_a_links_is_left_alone(tenant_a):
    make_link(tenant_a)
    payment = {"id": "PMOTHER", "status": "confirmed", "metadata": {"mlc_attempt": "x/1"}}
    assert (
        pay_link_payment_changed(
            tenant=tenant_a, payment=payment, details={}, actor=Actor.system("test")
        )
        is None
    )
    assert PayLink.objects.get().state == PayLinkState.SENT


@pytest.mark.parametrize("action", ["retry", "cancel", "resolve"])
def test_staff_actions_wait_for_the_open_link(tenant_a, action):
    from reconciliation.collection import actions

    user = get_user_model().objects.create_user("fin", password="x")
    attempt = make_link(tenant_a).attempt
    call = {
        "retry": lambda: actions.attempt_retry_now(attempt=attempt, user=user),
        "cancel": lambda: actions.attempt_cancel(attempt=attempt, user=user, reason="paid"),
        "resolve": lambda: actions.attempt_resolve(attempt=attempt, user=user, reason="paid"),
    }[action]
    with pytest.raises(actions.ActionRefused, match="payment link is open"):
        call()
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.PAY_LINK_SENT


def test_a_link_left_half_made_is_issued_again_under_the_same_keys(
    tenant_a, gc_sim, gc_connection, q_sync, run_on_commit
):
    from django.core import mail

    from reconciliation.collection.pay_links import pay_links_resume

    link = make_link(tenant_a, state=PayLinkState.CREATING, sent_at=None)
    PayLink.objects.filter(pk=link.pk).update(updated_at=NOW - dt.timedelta(hours=1))
    with run_on_commit():
        assert pay_links_resume(now=NOW) == 1
    link.refresh_from_db()
    assert link.state == PayLinkState.SENT and link.billing_request_gocardless_id
    assert mail.outbox[0].to == ["ap@example.test"]
    assert pay_links_resume(now=NOW) == 0


def test_a_page_completed_before_it_expired_keeps_its_link_open(tenant_a):
    from gocardless.models import BillingRequest

    link = make_link(
        tenant_a, expires_at=NOW - dt.timedelta(hours=1), billing_request_gocardless_id="BRQ1"
    )
    BillingRequest.objects.create(
        tenant=tenant_a,
        gocardless_id="BRQ1",
        status="fulfilled",
        raw={"id": "BRQ1", "links": {"payment_request_payment": "PM777"}},
    )
    assert pay_links_expire(now=NOW) == 0
    link.refresh_from_db()
    assert link.state == PayLinkState.SENT and link.payment_gocardless_id == "PM777"
    # Its payment's events find it by id from now on.
    confirmed = {"id": "PM777", "status": "confirmed", "metadata": {}}
    pay_link_payment_changed(
        tenant=tenant_a, payment=confirmed, details={}, actor=Actor.system("test")
    )
    link.refresh_from_db()
    assert link.state == PayLinkState.PAID
    assert CollectionAttempt.objects.get(pk=link.attempt_id).state == AttemptState.PAID_BY_LINK


def test_an_unfulfilled_page_is_expired_after_asking_gocardless(tenant_a, gc_sim, gc_connection):
    from gocardless.client import GoCardlessClient

    client = GoCardlessClient.for_connection(gc_connection)
    request = client.billing_request_create(
        params={"payment_request": {"amount": 1000, "currency": "EUR"}}, idempotency_key="k1"
    )
    link = make_link(
        tenant_a,
        expires_at=NOW - dt.timedelta(hours=1),
        billing_request_gocardless_id=request["id"],
    )
    assert pay_links_expire(now=NOW) == 1
    link.refresh_from_db()
    assert link.state == PayLinkState.EXPIRED
