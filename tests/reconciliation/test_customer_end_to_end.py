"""End to end against both simulators: a new Exact customer is invited, the payer completes
the hosted page, the mandate turns active, and Exact shows the direct-debit state."""

import pytest
from django.core import mail

from core.audit import Actor
from core.models import AuditEntry
from exact.sync import exact_sync
from gocardless.models import Mandate
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import CustomerLink, InvitationState, LinkState
from reconciliation.customers.registration import registration_run
from reconciliation.customers.selectors import customer_collectable
from tests.plugins.exact_sim import DIVISION
from tests.reconciliation.conftest import exact_account_state, exact_mandates

pytestmark = pytest.mark.django_db


def test_new_exact_customer_to_active_mandate_reflected_in_exact(
    tenant_a,
    customer_settings,
    ex_sim,
    ex_connection,
    gc_sim,
    gc_connection,
    gc_deliver,
    exact_bank_account,
    run_on_commit,
    q_sync,
):
    actor = Actor.system("test")
    account = ex_sim.seed_account(
        DIVISION,
        name="Acme Trading B.V.",
        email="AP@Acme.example",
        city="Utrecht",
        country="NL",
        language="NL",
        payment_condition_sales="30",
    )
    bank_account = exact_bank_account(account["ID"])
    ex_sim.seed_invoice(DIVISION, account=account["ID"], amount="121.00", currency="EUR")
    exact_sync(connection=ex_connection, trigger="test")

    # Matching first: nothing at GoCardless yet, so the account is unmatched.
    report = customers_match(tenant=tenant_a, actor=actor)
    assert report.unmatched == 1 and sum(report.matched.values()) == 0

    # Registration: the tenant's policy (open receivables in EUR) qualifies it.
    with run_on_commit():
        assert registration_run(tenant=tenant_a, actor=actor) == {"sent": 1}
    link = CustomerLink.objects.get(tenant=tenant_a)
    invitation = link.invitations.get()
    assert invitation.state == InvitationState.SENT and invitation.language == "nl"

    # The hosted page at GoCardless carries the Exact details.
    flow = gc_sim.resource("billing_request_flows", invitation.flow_id)
    assert flow["prefilled_customer"] == {
        "company_name": "Acme Trading B.V.",
        "email": "AP@Acme.example",
        "city": "Utrecht",
        "country_code": "NL",
        "language": "nl",
    }
    assert flow["language"] == "nl" and flow["authorisation_url"] == invitation.authorisation_url
    billing_request = gc_sim.resource("billing_requests", invitation.billing_request_id)
    assert billing_request["mandate_request"]["currency"] == "EUR"
    assert billing_request["mandate_request"]["verify"] == "recommended"
    assert billing_request["metadata"]["exact_account"] == account["ID"]

    # The e-mail: Dutch, from the tenant's sender, with the link.
    (message,) = mail.outbox
    assert message.to == ["AP@Acme.example"]
    assert message.from_email == "Alpha BV <ar@alpha.example>"
    assert "automatische incasso" in message.subject
    assert invitation.authorisation_url in message.body

    # The payer completes the hosted page; GoCardless' webhooks reach us.
    gc_sim.complete_billing_request_flow(invitation.flow_id)
    assert set(gc_deliver()) == {204}
    invitation.refresh_from_db()
    link.refresh_from_db()
    assert invitation.state == InvitationState.COMPLETED
    assert link.state == LinkState.MATCHED and link.matched_by == "invitation"
    customer_id = billing_request["links"]["customer"]
    assert link.gocardless_customer.gocardless_id == customer_id
    assert link.mandate.status == "pending_submission"
    # Our Exact id is now on the GoCardless customer (next matching finds it by metadata).
    assert gc_sim.resource("customers", customer_id)["metadata"] == {"exact_account": account["ID"]}
    # Not active yet: Exact keeps its payment condition.
    assert exact_account_state(ex_sim, account["ID"]).payment_condition_sales == "30"

    # Days pass: the mandate is submitted and becomes active.
    gc_sim.advance(days=5)
    assert set(gc_deliver()) == {204}
    link.refresh_from_db()
    mandate = Mandate.objects.get(pk=link.mandate_id)
    assert mandate.status == "active" and customer_collectable(link=link)

    # Exact shows the direct-debit state: payment condition and a mandate record.
    assert exact_account_state(ex_sim, account["ID"]).payment_condition_sales == "DD"
    (record,) = exact_mandates(ex_sim, account["ID"])
    assert record.reference == mandate.reference and record.cancellation_date is None
    assert record.bank_account == bank_account  # the account's own, from crm/BankAccounts
    assert link.reflection_state == "done" and link.reflection_error == ""

    # The audit trail tells the whole story, in order.
    actions = [
        e.action
        for e in AuditEntry.objects.filter(tenant=tenant_a).order_by("id")
        if not e.action.startswith(("exactconnection", "gocardlessconnection"))
    ]
    assert actions == [
        "customers.matched",
        "mandateinvitation.created",  # billing request + hosted page
        "mandateinvitation.sent",  # e-mail
        "mandateinvitation.completed",  # billing request fulfilled
        "customerlink.matched",  # by invitation, with the new customer and mandate
        "mandate.status_changed",  # → pending_submission (GoCardless app)
        "mandate.status_changed",  # → active (re-fetch skips 'submitted')
        "customerlink.exact_reflected",  # payment condition + mandate record
    ]
    reflected = AuditEntry.objects.get(tenant=tenant_a, action="customerlink.exact_reflected")
    assert "payment condition DD" in reflected.message
    assert f"mandate record {mandate.reference} created" in reflected.message
