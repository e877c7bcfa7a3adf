"""An inactive tenant's customers get no invitation e-mails, no re-issued links, and Exact gets
no mandate states written; after `tenants activate` what fell due is done once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core.audit import Actor
from exact.sync import exact_sync
from reconciliation.customers.exact_reflection import link_reflect_into_exact, reflections_retry_due
from reconciliation.customers.invitation_email import invitation_send
from reconciliation.customers.invitations import invitations_tick
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import link_ensure
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import (
    CustomerLink,
    CustomerSettings,
    InvitationState,
    MandateInvitation,
    ReflectionState,
)
from tenants.services import tenant_set_active
from tests.exact.factories import ExactAccountFactory
from tests.plugins.exact_sim import DIVISION
from tests.reconciliation.conftest import exact_account_state, exact_mandates

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
INVITATION_FIELDS = ("state", "reminders_sent", "last_sent_at", "expires_at", "error")
LINK_FIELDS = ("reflection_state", "reflection_attempts", "reflection_due_at", "reflected")


def set_active(tenant, active: bool) -> None:
    tenant_set_active(tenant=tenant, active=active, actor=ACTOR)


def invitation_state(invitation) -> dict:
    row = MandateInvitation.objects.get(pk=invitation.pk)
    return {name: getattr(row, name) for name in INVITATION_FIELDS}


# --- invitations ---------------------------------------------------------------------------
@pytest.fixture
def sim_now(gc_sim):
    gc_sim.clock.set(timezone.now())
    return gc_sim


def _invite(tenant):
    account = ExactAccountFactory(
        tenant=tenant, name="Gamma SARL", email="compta@gamma.example", country="FR", language="FR"
    )
    invitation, _ = invitation_create(link=link_ensure(tenant=tenant, account=account), actor=ACTOR)
    assert invitation.state == InvitationState.SENT
    return invitation


def test_a_reminder_due_while_inactive_is_sent_once_after_activation(
    tenant_a, sim_now, gc_connection, caplog, monkeypatch
):
    from reconciliation.customers import invitations

    tried = []  # the tick does not even try to send for an inactive tenant
    real_send = invitations.invitation_send
    monkeypatch.setattr(
        invitations,
        "invitation_send",
        lambda **kwargs: tried.append(kwargs["invitation"].pk) or real_send(**kwargs),
    )
    CustomerSettings.objects.create(tenant=tenant_a, reminder_count=3, reminder_spacing_days=1)
    invitation = _invite(tenant_a)
    # Sent five days ago: while the tenant was inactive, three reminders fell due.
    MandateInvitation.objects.filter(pk=invitation.pk).update(
        last_sent_at=timezone.now() - timedelta(days=5)
    )
    sent = len(mail.outbox)
    set_active(tenant_a, False)
    before, gc_calls = invitation_state(invitation), sim_now.call_counts()
    tried.clear()

    with caplog.at_level(logging.INFO):
        for _ in range(3):  # hourly ticks while inactive
            counts = invitations_tick(actor=ACTOR)
            assert counts == {"expired": 0, "reissued": 0, "reminded": 0}
    assert len(mail.outbox) == sent and tried == []
    assert invitation_state(invitation) == before
    assert sim_now.call_counts() == gc_calls
    skipped = [r for r in caplog.records if "inactive" in r.getMessage()]
    assert skipped and all(r.levelno == logging.INFO for r in skipped)

    set_active(tenant_a, True)
    assert invitations_tick(actor=ACTOR)["reminded"] == 1
    assert invitations_tick(actor=ACTOR)["reminded"] == 0  # the next one a day from now
    assert len(mail.outbox) == sent + 1
    invitation.refresh_from_db()
    assert invitation.reminders_sent == 1


def test_an_expired_link_is_not_reissued_while_inactive(tenant_a, sim_now, gc_connection):
    CustomerSettings.objects.create(tenant=tenant_a, reissue_limit=1, reminder_count=0)
    first = _invite(tenant_a)
    sent = len(mail.outbox)
    set_active(tenant_a, False)
    before, gc_calls = invitation_state(first), sim_now.call_counts()
    sim_now.advance(days=8)
    now = timezone.now() + timedelta(days=8)

    for hours in (0, 1, 2):
        counts = invitations_tick(actor=ACTOR, now=now + timedelta(hours=hours))
        assert counts == {"expired": 0, "reissued": 0, "reminded": 0}
    assert invitation_state(first) == before and first.link.invitations.count() == 1
    assert len(mail.outbox) == sent
    assert sim_now.call_counts() == gc_calls  # no new hosted page, no new billing request flow

    set_active(tenant_a, True)
    counts = invitations_tick(actor=ACTOR, now=now + timedelta(hours=3))
    assert counts["expired"] == 1 and counts["reissued"] == 1
    counts = invitations_tick(actor=ACTOR, now=now + timedelta(hours=4))
    assert counts == {"expired": 0, "reissued": 0, "reminded": 0}
    assert len(mail.outbox) == sent + 1
    assert first.link.invitations.filter(state=InvitationState.SENT).count() == 1


def test_no_invitation_email_for_an_inactive_tenant(tenant_a, sim_now, gc_connection):
    invitation = _invite(tenant_a)
    MandateInvitation.objects.filter(pk=invitation.pk).update(state=InvitationState.PENDING)
    invitation.refresh_from_db()
    sent = len(mail.outbox)
    set_active(tenant_a, False)
    invitation.tenant.refresh_from_db()
    before = invitation_state(invitation)

    assert invitation_send(invitation=invitation, actor=ACTOR) is False
    assert len(mail.outbox) == sent and invitation_state(invitation) == before

    set_active(tenant_a, True)
    counts = invitations_tick(actor=ACTOR)  # the unsent link goes out with the next tick
    assert counts["sent"] == 1 and len(mail.outbox) == sent + 1
    assert invitations_tick(actor=ACTOR).get("sent", 0) == 0


# --- mandate state into Exact --------------------------------------------------------------
@pytest.fixture
def matched(
    tenant_a,
    customer_settings,
    ex_sim,
    ex_connection,
    gc_sim,
    gc_connection,
    exact_bank_account,
    run_on_commit,
    q_sync,
):
    """An Exact account matched to a customer with an active mandate, reflected into Exact
    (direct debit), whose mandate then stopped: the reflection of 'stopped' is due."""
    account = ex_sim.seed_account(
        DIVISION, name="Beta GmbH", email="fin@beta.example", country="DE",
        payment_condition_sales="30",
    )
    exact_bank_account(account["ID"])
    exact_sync(connection=ex_connection, trigger="test")
    customer = gc_sim.seed(
        customers=[{"company_name": "Beta GmbH", "metadata": {"exact_account": account["ID"]}}]
    )["customers"][0]
    gc_sim.seed(mandates=[{"customer": customer, "scheme": "sepa_core", "status": "active"}])
    with run_on_commit():
        customers_match(tenant=tenant_a, actor=ACTOR)
    link = CustomerLink.objects.get(tenant=tenant_a, exact_account_guid=account["ID"])
    assert link.reflection_state == ReflectionState.DONE
    assert exact_account_state(ex_sim, account["ID"]).payment_condition_sales == "DD"
    CustomerLink.objects.filter(pk=link.pk).update(
        stop_reason="mandate_cancelled",
        reflection_state=ReflectionState.FAILED,
        reflection_attempts=2,
        reflection_due_at=timezone.now(),
    )
    link.refresh_from_db()
    return {"link": link, "account": account["ID"]}


def link_state(link) -> dict:
    row = CustomerLink.objects.get(pk=link.pk)
    return {name: getattr(row, name) for name in LINK_FIELDS}


def exact_calls(sim) -> int:
    return sum(row.get("total", 0) for row in sim.call_counts().values())


def test_reflections_wait_for_an_inactive_tenant_and_are_written_once_after(
    matched, tenant_a, ex_sim, caplog
):
    link = matched["link"]
    set_active(tenant_a, False)
    link.tenant.refresh_from_db()
    before = link_state(link)
    ex_sim.call_counts(reset=True)
    later = timezone.now() + timedelta(hours=1)

    with caplog.at_level(logging.INFO):
        assert reflections_retry_due(now=later) == 0
        assert reflections_retry_due(now=later) == 0
        assert link_reflect_into_exact(link=link) == "tenant inactive"  # the queued task
    assert link_state(link) == before
    assert exact_calls(ex_sim) == 0
    assert exact_account_state(ex_sim, matched["account"]).payment_condition_sales == "DD"
    skipped = [r for r in caplog.records if "inactive" in r.getMessage()]
    assert skipped and all(r.levelno == logging.INFO for r in skipped)

    set_active(tenant_a, True)
    assert reflections_retry_due(now=later) == 1
    assert reflections_retry_due(now=later) == 0
    after = link_state(link)
    assert after["reflection_state"] == ReflectionState.DONE
    assert after["reflection_attempts"] == 0
    assert exact_account_state(ex_sim, matched["account"]).payment_condition_sales == "30"
    (record,) = exact_mandates(ex_sim, matched["account"])
    assert record.cancellation_date is not None


def test_customer_refresh_calls_gocardless_only_for_an_active_tenant(matched, tenant_a, gc_sim):
    from reconciliation.customers.customer_refresh import link_customer_refresh

    link = matched["link"]
    set_active(tenant_a, False)
    link.tenant.refresh_from_db()
    gc_calls = gc_sim.call_counts()
    assert link_customer_refresh(link=link) == "tenant inactive"
    assert gc_sim.call_counts() == gc_calls

    set_active(tenant_a, True)
    link.tenant.refresh_from_db()
    assert link_customer_refresh(link=link) == "refreshed"
    assert gc_sim.call_counts() != gc_calls
