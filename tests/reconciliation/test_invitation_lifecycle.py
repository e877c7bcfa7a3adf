"""Invitations: e-mail per language and tenant template, reminders, expiry and re-issue,
cancellation, the admin copy button."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from core.audit import Actor
from core.models import AuditEntry
from reconciliation.customers.invitations import invitation_cancel, invitations_tick
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import link_ensure
from reconciliation.customers.models import CustomerSettings, InvitationState
from tests.exact.factories import ExactAccountFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


@pytest.fixture
def sim_now(gc_sim):
    """Our clock and the simulator's agree (flows expire 7 days after *their* creation)."""
    gc_sim.clock.set(timezone.now())
    return gc_sim


def _invite(tenant, **account):
    fields = {
        "name": "Gamma SARL",
        "email": "compta@gamma.example",
        "country": "FR",
        "language": "FR",
        **account,
    }
    link = link_ensure(tenant=tenant, account=ExactAccountFactory(tenant=tenant, **fields))
    invitation, _ = invitation_create(link=link, actor=ACTOR)
    return invitation


def test_email_in_the_customers_language_with_fallback_and_tenant_texts(
    tenant_a, sim_now, gc_connection
):
    french = _invite(tenant_a)
    assert french.language == "fr" and "prélèvement" in mail.outbox[0].subject
    italian = _invite(tenant_a, language="IT", email="ap@italia.example")
    assert italian.language == "it"  # GoCardless shows its page in Italian...
    assert mail.outbox[1].subject.startswith("Set up your Direct Debit")  # ...we write English
    CustomerSettings.objects.create(
        tenant=tenant_a,
        invitation_subjects={"nl": "Uw incasso bij {{ company }}"},
        invitation_bodies={"nl": "Hallo {{ customer_name }}, klik {{ url }}"},
    )
    dutch = _invite(tenant_a, language="nl-NL", email="ap@nl.example", name="Kees BV", country="NL")
    message = mail.outbox[2]
    assert message.subject == "Uw incasso bij Alpha BV"
    assert message.body == f"Hallo Kees BV, klik {dutch.authorisation_url}"
    assert message.from_email == "ml-connector <noreply@localhost>"


def test_reminders_follow_the_policy(tenant_a, sim_now, gc_connection):
    CustomerSettings.objects.create(tenant=tenant_a, reminder_count=2, reminder_spacing_days=2)
    invitation = _invite(tenant_a)
    start = invitation.last_sent_at
    assert invitations_tick(actor=ACTOR, now=start + timedelta(days=1))["reminded"] == 0
    assert invitations_tick(actor=ACTOR, now=start + timedelta(days=2, minutes=1))["reminded"] == 1
    invitation.refresh_from_db()
    assert invitation.reminders_sent == 1 and mail.outbox[-1].subject.startswith("Rappel")
    later = invitation.last_sent_at
    assert invitations_tick(actor=ACTOR, now=later + timedelta(days=1))["reminded"] == 0
    assert invitations_tick(actor=ACTOR, now=later + timedelta(days=2, minutes=1))["reminded"] == 1
    invitation.refresh_from_db()
    last = invitation.last_sent_at
    assert invitations_tick(actor=ACTOR, now=last + timedelta(days=3))["reminded"] == 0
    assert invitation.reminders_sent == 2 and len(mail.outbox) == 3
    assert AuditEntry.objects.filter(action="mandateinvitation.reminded").count() == 2


def test_expired_links_are_reissued_on_the_same_billing_request(tenant_a, sim_now, gc_connection):
    CustomerSettings.objects.create(tenant=tenant_a, reissue_limit=1)
    first = _invite(tenant_a)
    sim_now.advance(days=8)
    counts = invitations_tick(actor=ACTOR, now=timezone.now() + timedelta(days=8))
    assert counts["expired"] == 1 and counts["reissued"] == 1
    first.refresh_from_db()
    second = first.link.invitations.get(state=InvitationState.SENT)
    assert first.state == InvitationState.EXPIRED
    assert second.reissued_from == first
    assert second.billing_request_id == first.billing_request_id
    assert second.flow_id != first.flow_id and second.expires_at > first.expires_at
    assert mail.outbox[-1].body.count(second.authorisation_url) == 1
    actions = list(
        AuditEntry.objects.filter(action__startswith="mandateinvitation.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "mandateinvitation.created",
        "mandateinvitation.sent",
        "mandateinvitation.expired",
        "mandateinvitation.created",
        "mandateinvitation.sent",
    ]
    # The re-issue limit is reached: the next expiry only expires.
    sim_now.advance(days=8)
    counts = invitations_tick(actor=ACTOR, now=timezone.now() + timedelta(days=16))
    assert counts == {"expired": 1, "reissued": 0, "reminded": 0}


def test_only_one_open_invitation_per_customer(tenant_a, sim_now, gc_connection):
    invitation = _invite(tenant_a)
    again, message = invitation_create(link=invitation.link, actor=ACTOR)
    assert again == invitation and "already open" in message
    assert len(mail.outbox) == 1


def test_cancel_cancels_the_billing_request(tenant_a, sim_now, gc_connection):
    invitation = _invite(tenant_a)
    invitation_cancel(invitation=invitation, actor=ACTOR)
    assert invitation.state == InvitationState.CANCELLED
    assert sim_now.resource("billing_requests", invitation.billing_request_id)["status"] == (
        "cancelled"
    )


def test_a_mail_failure_keeps_the_link_for_copying(tenant_a, sim_now, gc_connection, monkeypatch):
    def boom(self, fail_silently=False):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", boom)
    invitation = _invite(tenant_a)
    assert invitation.state == InvitationState.PENDING and invitation.authorisation_url
    assert "smtp down" in invitation.error
    assert AuditEntry.objects.filter(action="mandateinvitation.send_failed").exists()


def test_admin_shows_the_link_with_a_copy_button(
    client, tenant_a, sim_now, gc_connection, viewer_of_a
):
    invitation = _invite(tenant_a)
    client.force_login(viewer_of_a)
    page = client.get(
        reverse("admin:customers_customerlink_change", args=[invitation.link.pk])
    )
    assert page.status_code == 200
    assert invitation.authorisation_url.encode() in page.content
    assert b"Copy link" in page.content
    listing = client.get(reverse("admin:customers_mandateinvitation_changelist"))
    assert b"Copy link" in listing.content


def test_operator_resends_from_the_admin(client, tenant_a, sim_now, gc_connection, operator_of_a):
    invitation = _invite(tenant_a)
    client.force_login(operator_of_a)
    client.post(
        reverse("admin:customers_mandateinvitation_changelist"),
        {"action": "resend", "_selected_action": [invitation.pk]},
    )
    assert len(mail.outbox) == 2
    entry = AuditEntry.objects.filter(action="mandateinvitation.sent").order_by("-id")[0]
    assert entry.actor_user == operator_of_a


def test_a_crash_between_the_calls_is_resumed_with_the_same_keys(
    tenant_a, sim_now, gc_connection, monkeypatch
):
    from reconciliation.customers import issuing

    real = issuing._flow_create

    def crash(invitation, *, client):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(issuing, "_flow_create", crash)
    link = link_ensure(
        tenant=tenant_a,
        account=ExactAccountFactory(tenant=tenant_a, name="Iota BV", email="ap@iota.example"),
    )
    with pytest.raises(RuntimeError):
        invitation_create(link=link, actor=ACTOR)
    pending = link.invitations.get()
    assert pending.state == InvitationState.PENDING and pending.billing_request_id

    monkeypatch.setattr(issuing, "_flow_create", real)
    invitation, _ = invitation_create(link=link, actor=ACTOR)
    assert invitation.pk == pending.pk and invitation.state == InvitationState.SENT
    assert invitation.billing_request_id == pending.billing_request_id
    counts = sim_now.call_counts()["POST /billing_requests"]
    assert counts == {"201": 1, "409": 1}  # the same key: GoCardless returned the first one
    assert len(sim_now.resource("billing_requests")) == 1


def test_operator_sends_an_invitation_from_the_link_list(
    client, tenant_a, sim_now, gc_connection, operator_of_a
):
    link = link_ensure(
        tenant=tenant_a,
        account=ExactAccountFactory(
            tenant=tenant_a,
            name="Lambda BV",
            email="ap@lambda.example",
            language="DE",
            country="DE",
        ),
    )
    client.force_login(operator_of_a)
    response = client.post(
        reverse("admin:customers_customerlink_changelist"),
        {"action": "send_invitation", "_selected_action": [link.pk]},
        follow=True,
    )
    assert any("e-mailed to ap@lambda.example" in str(m) for m in response.context["messages"])
    assert "Lastschrift" in mail.outbox[0].subject
    assert AuditEntry.objects.get(action="mandateinvitation.sent").actor_user == operator_of_a
