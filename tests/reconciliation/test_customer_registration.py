"""Who qualifies for an invitation under each policy, the schedule, and the CLI."""

import json
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from core.audit import Actor
from core.models import AuditEntry
from exact.models import ReceivableKind
from reconciliation.customers.links import link_ensure
from reconciliation.customers.models import CustomerSettings, LinkState, RegistrationPolicy
from reconciliation.customers.registration import accounts_qualifying, registration_run_all
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.gocardless.factories import MandateFactory

pytestmark = pytest.mark.django_db


def _names(tenant, settings):
    return {a.name for a in accounts_qualifying(tenant=tenant, settings=settings)}


def test_open_receivables_policy(tenant_a):
    settings = CustomerSettings(
        tenant=tenant_a, registration_policy=RegistrationPolicy.OPEN_RECEIVABLES
    )
    owes = ExactAccountFactory(tenant=tenant_a, name="owes")
    ExactReceivableFactory(tenant=tenant_a, account=owes, currency="EUR")
    usd = ExactAccountFactory(tenant=tenant_a, name="owes usd")
    ExactReceivableFactory(tenant=tenant_a, account=usd, currency="USD")
    paid = ExactAccountFactory(tenant=tenant_a, name="paid")
    ExactReceivableFactory(tenant=tenant_a, account=paid, is_fully_paid=True)
    credit = ExactAccountFactory(tenant=tenant_a, name="credit only")
    ExactReceivableFactory(tenant=tenant_a, account=credit, kind=ReceivableKind.CREDIT_NOTE)
    blocked = ExactAccountFactory(tenant=tenant_a, name="blocked", blocked=True)
    ExactReceivableFactory(tenant=tenant_a, account=blocked)
    covered = ExactAccountFactory(tenant=tenant_a, name="has mandate")
    ExactReceivableFactory(tenant=tenant_a, account=covered)
    link = link_ensure(tenant=tenant_a, account=covered)
    link.state = LinkState.MATCHED
    link.mandate = MandateFactory(tenant=tenant_a, status="active")
    link.save()
    assert _names(tenant_a, settings) == {"owes"}


def test_payment_condition_and_manual_policies(tenant_a):
    dd = ExactAccountFactory(tenant=tenant_a, name="dd", payment_condition="IN")
    ExactAccountFactory(tenant=tenant_a, name="other", payment_condition="30")
    settings = CustomerSettings(
        tenant=tenant_a,
        direct_debit_condition="IN",
        registration_policy=RegistrationPolicy.PAYMENT_CONDITION,
    )
    assert _names(tenant_a, settings) == {"dd"}
    settings.registration_policy = RegistrationPolicy.MANUAL
    assert _names(tenant_a, settings) == set()
    link = link_ensure(tenant=tenant_a, account=dd)
    link.selected_for_invitation = True
    link.save()
    assert _names(tenant_a, settings) == {"dd"}
    link.state = LinkState.AMBIGUOUS  # a person must confirm first
    link.save()
    assert _names(tenant_a, settings) == set()


def test_schedule_invites_only_tenants_that_switched_it_on(tenant_a, gc_sim, gc_connection):
    account = ExactAccountFactory(tenant=tenant_a, name="Zeta BV", email="ap@zeta.example")
    ExactReceivableFactory(tenant=tenant_a, account=account)
    settings = CustomerSettings.objects.create(
        tenant=tenant_a, registration_policy=RegistrationPolicy.OPEN_RECEIVABLES
    )
    assert registration_run_all(actor=Actor.schedule("t")) == {}
    settings.auto_invite = True
    settings.save()
    assert registration_run_all(actor=Actor.schedule("t")) == {"alpha": {"sent": 1}}
    assert registration_run_all(actor=Actor.schedule("t")) == {"alpha": {}}  # not twice
    assert len(mail.outbox) == 1


def test_cli_match_and_schedules(tenant_a, gc_sim, gc_connection):
    out = StringIO()
    call_command("customers", "match", "--tenant", "alpha", stdout=out)
    assert json.loads(out.getvalue())["unmatched"] == 0
    out = StringIO()
    call_command("customers", "schedules", stdout=out)
    assert "customers-invitations" in json.loads(out.getvalue())["schedules"]


def test_settings_are_admin_editable_and_audited(client, tenant_a, admin_of_a, operator_of_a):
    settings = CustomerSettings.objects.create(tenant=tenant_a)
    url = reverse("admin:customers_customersettings_change", args=[settings.pk])
    client.force_login(operator_of_a)
    assert client.get(url).context["has_change_permission"] is False
    client.force_login(admin_of_a)
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        tenant=tenant_a.pk,
        reflect_payment_condition="on",
        direct_debit_condition="IN",
        invitation_subjects="{}",
        invitation_bodies="{}",
        reminder_count=3,
    )
    data.pop("reflect_mandate_record", None)
    data.pop("auto_invite", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    settings.refresh_from_db()
    assert settings.reflect_payment_condition and settings.reminder_count == 3
    entry = AuditEntry.objects.get(action="customersettings.changed")
    assert entry.after["direct_debit_condition"] == "IN" and entry.actor_user == admin_of_a
