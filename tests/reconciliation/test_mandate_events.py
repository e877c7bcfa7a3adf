"""Mandate cancelled / expired / replaced: checked here (link, collectability, the signal
for the collection engine) AND in Exact (payment condition, DirectDebitMandates)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.audit import Actor
from core.models import AuditEntry
from exact.sync import exact_sync
from gocardless.models import Mandate
from reconciliation.customers.exact_reflection import reflections_retry_due
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.customers.selectors import customer_collectable, links_collectable
from reconciliation.customers.signals import collection_stopped
from tests.plugins.exact_sim import DIVISION
from tests.reconciliation.conftest import exact_account_state, exact_mandates

pytestmark = pytest.mark.django_db


@pytest.fixture
def stopped_log():
    calls = []

    def receiver(sender, **kwargs):
        calls.append((kwargs["link"].pk, kwargs["reason"]))

    collection_stopped.connect(receiver, weak=False)
    yield calls
    collection_stopped.disconnect(receiver)


def seed_matched_account(*, tenant, ex_sim, ex_connection, gc_sim, run_on_commit, bank_account):
    """An Exact account matched (by our metadata) to a GoCardless customer with an active
    SEPA mandate; ``bank_account(account_id)`` runs before the match (reflection) does."""
    account = ex_sim.seed_account(
        DIVISION,
        name="Beta GmbH",
        email="fin@beta.example",
        country="DE",
        payment_condition_sales="30",
    )
    bank = bank_account(account["ID"])
    exact_sync(connection=ex_connection, trigger="test")
    seeded = gc_sim.seed(
        customers=[
            {
                "company_name": "Beta GmbH",
                "email": "pay@beta.example",
                "metadata": {"exact_account": account["ID"]},
            }
        ]
    )
    customer_id = seeded["customers"][0]
    mandate_id = gc_sim.seed(
        mandates=[{"customer": customer_id, "scheme": "sepa_core", "status": "active"}]
    )["mandates"][0]
    with run_on_commit():
        report = customers_match(tenant=tenant, actor=Actor.system("test"))
    assert report.matched["metadata"] == 1
    link = CustomerLink.objects.get(tenant=tenant, exact_account_guid=account["ID"])
    assert link.mandate.gocardless_id == mandate_id and customer_collectable(link=link)
    return {
        "account": account["ID"],
        "link": link,
        "mandate": mandate_id,
        "customer": customer_id,
        "bank_account": bank,
    }


@pytest.fixture
def active(
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
    """An Exact account (with a bank account) matched to a customer with an active SEPA
    mandate, already reflected into Exact."""
    seeded = seed_matched_account(
        tenant=tenant_a,
        ex_sim=ex_sim,
        ex_connection=ex_connection,
        gc_sim=gc_sim,
        run_on_commit=run_on_commit,
        bank_account=exact_bank_account,
    )
    assert exact_account_state(ex_sim, seeded["account"]).payment_condition_sales == "DD"
    (record,) = exact_mandates(ex_sim, seeded["account"])
    assert record.cancellation_date is None
    assert record.bank_account == seeded["bank_account"]
    return seeded


@pytest.mark.parametrize(
    ("scenario", "status", "reason"),
    [
        ("mandate_cancelled", "cancelled", "mandate_cancelled"),
        ("mandate_expired", "expired", "mandate_expired"),
    ],
)
def test_a_stopped_mandate_stops_collection_here_and_in_exact(
    active, scenario, status, reason, gc_sim, gc_deliver, ex_sim, stopped_log, tenant_a
):
    gc_sim.run_scenario(scenario, active["mandate"])
    assert set(gc_deliver()) == {204}

    link = CustomerLink.objects.get(pk=active["link"].pk)
    assert Mandate.objects.get(gocardless_id=active["mandate"]).status == status
    assert link.stop_reason == reason and link.state == LinkState.MATCHED
    assert not customer_collectable(link=link)
    assert not links_collectable(tenant=tenant_a).exists()
    assert stopped_log == [(link.pk, reason)]

    # Exact: back to the tenant's default condition; the mandate record has a cancel date.
    assert exact_account_state(ex_sim, active["account"]).payment_condition_sales == "30"
    (record,) = exact_mandates(ex_sim, active["account"])
    assert record.cancellation_date is not None
    assert link.reflection_state == "done"
    entry = AuditEntry.objects.filter(action="customerlink.exact_reflected").order_by("-id")[0]
    assert "state 'stopped'" in entry.message and "payment condition 30" in entry.message
    assert AuditEntry.objects.filter(
        action="customerlink.collection_stopped", object_id=str(link.pk)
    ).exists()


def test_a_replaced_mandate_moves_the_link_and_exact_to_the_new_one(
    active, gc_sim, gc_deliver, ex_sim, stopped_log
):
    gc_sim.run_scenario("mandate_replaced", active["mandate"])
    assert set(gc_deliver()) == {204}

    new_id = gc_sim.resource("mandates", active["mandate"])["links"]["new_mandate"]
    link = CustomerLink.objects.get(pk=active["link"].pk)
    assert link.mandate.gocardless_id == new_id and link.mandate.status == "active"
    assert link.stop_reason == "" and customer_collectable(link=link)
    assert stopped_log == []  # a replacement is not a stop

    # Exact: still direct debit; old record cancelled, a new one for the new reference.
    assert exact_account_state(ex_sim, active["account"]).payment_condition_sales == "DD"
    old, new = exact_mandates(ex_sim, active["account"])
    assert old.reference == gc_sim.resource("mandates", active["mandate"])["reference"]
    assert old.cancellation_date is not None
    assert new.reference == gc_sim.resource("mandates", new_id)["reference"]
    assert new.cancellation_date is None
    assert old.bank_account == new.bank_account == active["bank_account"]
    assert AuditEntry.objects.filter(action="customerlink.mandate_replaced").exists()


def test_an_exact_write_failure_is_stored_and_retried(active, gc_sim, gc_deliver, ex_sim):
    ex_sim.inject("status", status=500, count=1, path="crm/Accounts")
    gc_sim.run_scenario("mandate_cancelled", active["mandate"])
    assert set(gc_deliver()) == {204}  # the event is processed; the failure is ours to keep

    link = CustomerLink.objects.get(pk=active["link"].pk)
    assert link.stop_reason == "mandate_cancelled"
    assert link.reflection_state == "failed" and "500" in link.reflection_error
    assert link.reflection_attempts == 1 and link.reflection_due_at > timezone.now()
    assert exact_account_state(ex_sim, active["account"]).payment_condition_sales == "DD"
    assert AuditEntry.objects.filter(action="customerlink.exact_reflection_failed").exists()

    assert reflections_retry_due(now=timezone.now() + timedelta(hours=1)) == 1
    link.refresh_from_db()
    assert link.reflection_state == "done" and link.reflection_error == ""
    assert exact_account_state(ex_sim, active["account"]).payment_condition_sales == "30"
    (record,) = exact_mandates(ex_sim, active["account"])
    assert record.cancellation_date is not None


def test_an_account_without_a_bank_account_gets_no_mandate_record_until_it_has_one(
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
    """Exact needs a crm/BankAccounts id on a mandate record: the simulator's real endpoint
    says the account has none (its only one is blocked), so the reflection fails with a clear
    reason and is retried; once the account has a usable bank account, the retry writes it."""
    seeded = seed_matched_account(
        tenant=tenant_a,
        ex_sim=ex_sim,
        ex_connection=ex_connection,
        gc_sim=gc_sim,
        run_on_commit=run_on_commit,
        bank_account=lambda account_id: exact_bank_account(account_id, blocked=True),
    )
    account = seeded["account"]
    link = CustomerLink.objects.get(pk=seeded["link"].pk)
    assert link.reflection_state == "failed"
    assert link.reflection_error == (
        "RuntimeError: the Exact account has no bank account (crm/BankAccounts) to attach the "
        "direct debit mandate to"
    )
    assert link.reflection_attempts == 1 and link.reflection_due_at > timezone.now()
    assert exact_mandates(ex_sim, account) == []  # nothing attached to the blocked one
    # What could be written was: the payment condition.
    assert exact_account_state(ex_sim, account).payment_condition_sales == "DD"
    failed = AuditEntry.objects.get(action="customerlink.exact_reflection_failed")
    assert "has no bank account" in failed.message

    # Not due yet: nothing happens. Someone adds the bank account in Exact; the retry uses it.
    assert reflections_retry_due(now=timezone.now()) == 0
    usable = exact_bank_account(account, iban="NL02RABO0123456789")
    assert reflections_retry_due(now=timezone.now() + timedelta(hours=1)) == 1
    link.refresh_from_db()
    assert link.reflection_state == "done" and link.reflection_error == ""
    (record,) = exact_mandates(ex_sim, account)
    assert record.bank_account == usable and record.cancellation_date is None
    assert record.reference == gc_sim.resource("mandates", seeded["mandate"])["reference"]


def test_a_bank_account_lookup_error_is_not_taken_for_no_bank_account(
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
    """crm/BankAccounts exists: a 404 from it is a failure with Exact's answer (retried), not
    "the account has no bank account"."""
    ex_sim.inject("status", status=404, count=1, path="crm/BankAccounts")
    seeded = seed_matched_account(
        tenant=tenant_a,
        ex_sim=ex_sim,
        ex_connection=ex_connection,
        gc_sim=gc_sim,
        run_on_commit=run_on_commit,
        bank_account=exact_bank_account,
    )
    link = CustomerLink.objects.get(pk=seeded["link"].pk)
    assert link.reflection_state == "failed"
    assert "crm/BankAccounts" in link.reflection_error and "HTTP 404" in link.reflection_error
    assert "no bank account" not in link.reflection_error
    assert exact_mandates(ex_sim, seeded["account"]) == []

    assert reflections_retry_due(now=timezone.now() + timedelta(hours=1)) == 1
    link.refresh_from_db()
    assert link.reflection_state == "done"
    (record,) = exact_mandates(ex_sim, seeded["account"])
    assert record.bank_account == seeded["bank_account"]


def test_reinstated_mandate_resumes_collection(active, gc_sim, gc_deliver, ex_sim, api_sdk):
    gc_sim.run_scenario("mandate_cancelled", active["mandate"])
    gc_deliver()
    api_sdk.mandates.reinstate(active["mandate"])
    gc_sim.advance(days=5)
    gc_deliver()

    link = CustomerLink.objects.get(pk=active["link"].pk)
    assert link.stop_reason == "" and customer_collectable(link=link)
    assert exact_account_state(ex_sim, active["account"]).payment_condition_sales == "DD"
    (record,) = exact_mandates(ex_sim, active["account"])
    assert record.cancellation_date is None  # reopened
    assert AuditEntry.objects.filter(action="customerlink.collection_resumed").exists()


@pytest.fixture
def api_sdk(gc_sim):
    import gocardless_pro

    from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

    return gocardless_pro.Client(access_token=SIM_ACCESS_TOKEN, base_url=gc_sim.url, timeout=5)


def test_a_transferred_mandate_keeps_collecting_and_is_noted(active, gc_sim, gc_deliver, ex_sim):
    gc_sim.run_scenario("mandate_transferred", active["mandate"])
    assert set(gc_deliver()) == {204}
    link = CustomerLink.objects.get(pk=active["link"].pk)
    assert customer_collectable(link=link)
    entry = AuditEntry.objects.get(action="customerlink.mandate_transferred")
    assert entry.after["customer_bank_account"].startswith("BA")
    assert exact_account_state(ex_sim, active["account"]).payment_condition_sales == "DD"


@pytest.fixture
def onboarding(
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
    """A customer who just completed the hosted page: mandate pending_submission."""
    from reconciliation.customers.registration import registration_run

    account = ex_sim.seed_account(
        DIVISION,
        name="Kappa BV",
        email="ap@kappa.example",
        country="NL",
        payment_condition_sales="30",
    )
    ex_sim.seed_invoice(DIVISION, account=account["ID"], amount="50.00", currency="EUR")
    exact_sync(connection=ex_connection, trigger="test")
    with run_on_commit():
        registration_run(tenant=tenant_a, actor=Actor.system("test"))
    link = CustomerLink.objects.get(tenant=tenant_a)
    gc_sim.complete_billing_request_flow(link.invitations.get().flow_id)
    gc_deliver()
    link.refresh_from_db()
    assert link.mandate.status == "pending_submission"
    return {"account": account["ID"], "link": link}


def test_a_failed_mandate_stops_and_leaves_exact_untouched(
    onboarding, gc_sim, gc_deliver, ex_sim, stopped_log, tenant_a
):
    from reconciliation.customers.registration import accounts_qualifying

    gc_sim.run_scenario("mandate_failed", onboarding["link"].mandate.gocardless_id)
    assert set(gc_deliver()) == {204}
    link = CustomerLink.objects.get(pk=onboarding["link"].pk)
    assert link.stop_reason == "mandate_failed" and not customer_collectable(link=link)
    assert stopped_log == [(link.pk, "mandate_failed")]
    # Never active: Exact keeps its own condition and gets no mandate record.
    assert exact_account_state(ex_sim, onboarding["account"]).payment_condition_sales == "30"
    assert exact_mandates(ex_sim, onboarding["account"]) == []
    # The customer qualifies for a new invitation.
    assert [str(a.exact_id) for a in accounts_qualifying(tenant=tenant_a)] == [
        onboarding["account"]
    ]


def test_a_blocked_mandate_stops_collection(tenant_a, stopped_log):
    from reconciliation.customers.mandate_sync import mandate_stopped
    from tests.gocardless.factories import CustomerFactory, MandateFactory
    from tests.reconciliation.factories import CustomerLinkFactory

    customer = CustomerFactory(tenant=tenant_a)
    mandate = MandateFactory(tenant=tenant_a, customer_id=customer.gocardless_id, status="blocked")
    link = CustomerLinkFactory(
        tenant=tenant_a, state=LinkState.MATCHED, gocardless_customer=customer, mandate=mandate
    )
    assert mandate_stopped(tenant=tenant_a, mandate=mandate) == link
    link.refresh_from_db()
    assert link.stop_reason == "mandate_blocked"
    assert stopped_log == [(link.pk, "mandate_blocked")]
    # No reflection configured for this tenant: nothing to write, nothing pending.
    from reconciliation.customers.exact_reflection import link_reflect_into_exact

    assert link_reflect_into_exact(link=link) == "nothing configured"
