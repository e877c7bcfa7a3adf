"""Bad data gets a clear message and nothing half-done."""

import pytest
from django.core import mail
from django.urls import reverse

from core.audit import Actor
from core.models import AuditEntry
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import link_ensure
from reconciliation.customers.models import InvitationState, MandateInvitation
from tests.exact.factories import ExactAccountFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def _calls(sim, what):
    return sum(sim.call_counts().get(what, {}).values())


def _invite(tenant, **account):
    link = link_ensure(tenant=tenant, account=ExactAccountFactory(tenant=tenant, **account))
    return link, *invitation_create(link=link, actor=ACTOR)


def _nothing_sent(sim):
    assert _calls(sim, "POST /billing_requests") == 0
    assert _calls(sim, "POST /billing_request_flows") == 0
    assert mail.outbox == []
    assert not MandateInvitation.objects.exists()


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        ({"email": ""}, "no e-mail address in Exact: add one to the account"),
        (
            {"email": "not-an-address"},
            "the e-mail address in Exact ('not-an-address') is not valid",
        ),
        ({"currency": "USD"}, "USD is not a currency this company collects (EUR)"),
        (
            {"country": "US", "currency": "EUR"},
            "GoCardless cannot collect EUR (sepa_core) from a payer in US",
        ),
        ({"blocked": True}, "the account is blocked in Exact"),
    ],
)
def test_skipped_with_a_reason_before_anything_is_sent(
    tenant_a, gc_sim, gc_connection, account, reason
):
    link, invitation, message = _invite(tenant_a, **account)
    assert invitation is None and message == reason
    link.refresh_from_db()
    assert link.registration_note == reason  # shown in the admin
    entry = AuditEntry.objects.get(action="customerlink.invitation_skipped")
    assert entry.message == reason
    _nothing_sent(gc_sim)


def test_a_currency_the_gocardless_account_cannot_collect(tenant_a, gc_sim, gc_connection):
    tenant_a.currencies = ["EUR", "USD"]
    tenant_a.save()
    _link, invitation, message = _invite(tenant_a, currency="USD", country="US")
    assert invitation is None
    assert message == "the GoCardless account cannot collect USD (it collects EUR, GBP)"
    _nothing_sent(gc_sim)


def test_a_gocardless_validation_error_is_stored_with_field_errors(
    tenant_a, gc_sim, gc_connection, monkeypatch
):
    # Our own currency check is bypassed so that GoCardless itself refuses the request.
    monkeypatch.setattr(
        "reconciliation.customers.issuing.collectable_currencies_for",
        lambda *, client: {"EUR", "USD"},
    )
    tenant_a.currencies = []
    tenant_a.save()
    link, invitation, message = _invite(tenant_a, currency="USD", country="")

    assert invitation.state == InvitationState.FAILED
    assert invitation.field_errors == [
        {
            "field": "scheme",
            "message": "is not enabled for this creditor",
            "request_pointer": "/billing_requests/mandate_request/scheme",
        }
    ]
    assert "GoCardless refused the billing request" in invitation.error
    assert "scheme: is not enabled for this creditor" in message
    assert invitation.flow_id == "" and invitation.authorisation_url == ""
    assert _calls(gc_sim, "POST /billing_requests") == 1
    assert _calls(gc_sim, "POST /billing_request_flows") == 0
    assert mail.outbox == []
    entry = AuditEntry.objects.get(action="mandateinvitation.failed")
    assert entry.after["field_errors"] == invitation.field_errors

    # A failed invitation is not "open": a corrected account can be invited again.
    assert not link.invitations.filter(state__in=["pending", "sent"]).exists()


def test_admin_action_reports_bad_data_as_a_message(
    client, tenant_a, gc_sim, gc_connection, operator_of_a
):
    link = link_ensure(tenant=tenant_a, account=ExactAccountFactory(tenant=tenant_a, email=""))
    client.force_login(operator_of_a)
    response = client.post(
        reverse("admin:customers_customerlink_changelist"),
        {"action": "send_invitation", "_selected_action": [link.pk]},
        follow=True,
    )
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any("no e-mail address in Exact" in t for t in texts)
    _nothing_sent(gc_sim)
