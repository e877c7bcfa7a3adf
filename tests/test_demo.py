"""`manage.py demo_run` end to end against both simulators (in process, on free loopback
ports, configured as `manage.py simulate --auto-consent` runs them), twice: the second run
resets and tells the same story."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from demo import data
from demo.run import EXACT_MINUTELY_LIMIT
from gocardless.models import Mandate, Payment, Payout
from reconciliation.bookings.models import Booking
from reconciliation.collection.models import AttemptState, CollectionAttempt, CollectionRun
from reconciliation.customers.models import MandateInvitation
from simulators.exact_online import Simulator as ExactSimulator
from simulators.gocardless import Simulator as GoCardlessSimulator
from tenants.models import Tenant

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def simulators():
    exact = ExactSimulator(auto_consent=True).start()
    gocardless = GoCardlessSimulator().start()
    try:
        yield exact, gocardless
    finally:
        exact.stop()
        gocardless.stop()


@pytest.fixture
def demo_settings(settings):
    settings.DEBUG = True  # demo_run refuses to run without it
    return settings


def demo_run(exact, gocardless) -> str:
    out = StringIO()
    call_command(
        "demo_run",
        exact_url=exact.url,
        gocardless_url=gocardless.url,
        exact_minutely_limit=1000,  # two runs within a minute; the real budget is 60
        stdout=out,
    )
    return out.getvalue()


def facts(tenant) -> dict:
    live = CollectionRun.objects.filter(tenant=tenant, kind="live").latest("pk")
    attempts = CollectionAttempt.objects.filter(tenant=tenant, run=live)
    return {
        "preview": live.preview.to_collect,
        "approved_by": live.preview.approved_by.username,
        "created": live.submitted,
        "errors": live.errors,
        "attempts": attempts.count(),
        "invoices": attempts.values("receivable_exact_id").distinct().count(),
        "states": sorted(set(attempts.values_list("state", flat=True))),
        "payments": Payment.objects.filter(tenant=tenant).count(),
    }


def exact_mandate_records(exact, tenant) -> None:
    """Every active GoCardless mandate has one open DirectDebitMandates record in Exact, on
    the main bank account (crm/BankAccounts) of the customer's own account."""
    division = exact.state.division(data.DIVISION)
    records = [m for m in division.mandates.values() if m.cancellation_date is None]
    active = Mandate.objects.filter(tenant=tenant, status="active")
    assert sorted(m.reference for m in records) == sorted(m.reference for m in active)
    assert len(active) >= 8  # the existing customers and those who completed the page
    by_name = {c.name: c for c in data.CUSTOMERS}
    for record in records:
        bank_account = division.bank_accounts.get(record.bank_account)
        account = division.accounts.get(record.account)
        assert bank_account.account == account.id and bank_account.main
        assert bank_account.number == by_name[account.name].iban


def test_demo_run_end_to_end_twice(simulators, demo_settings):
    exact, gocardless = simulators

    first = demo_run(exact, gocardless)
    tenant = Tenant.objects.get(slug="demo")
    one = facts(tenant)

    # Every invoice the approved preview listed became exactly one payment at GoCardless.
    assert one["created"] == one["attempts"] == one["invoices"] == one["preview"] > 10
    assert one["payments"] == one["created"] and one["errors"] == 0
    assert one["approved_by"] == "demo"
    # They were paid out, except the one the payer's bank refused (retried later).
    assert one["states"] == [AttemptState.PAID_OUT, AttemptState.RETRY_SCHEDULED]
    assert (
        CollectionAttempt.objects.filter(tenant=tenant, state=AttemptState.RETRY_SCHEDULED).count()
        == 1
    )
    # Payouts in both currencies, each with GoCardless' fees deducted.
    payouts = Payout.objects.filter(tenant=tenant)
    assert {p.currency for p in payouts} == {"EUR", "GBP"}
    assert all(p.status == "paid" and p.deducted_fees > 0 for p in payouts)
    # Bookings: every receipt and payout posted to Exact, which now shows the receipts.
    bookings = Booking.objects.filter(tenant=tenant)
    assert bookings.filter(rule="receipt").count() == one["created"] - 1
    assert set(bookings.values_list("state", flat=True)) == {"confirmed"}
    posted = exact.ledger(data.DIVISION)
    assert len(posted) == bookings.count()
    # Mandates are reflected into Exact: one DirectDebitMandates record per active mandate.
    exact_mandate_records(exact, tenant)
    # Payers gave GoCardless the bank account Exact knows for them.
    completed = MandateInvitation.objects.filter(tenant=tenant, state="completed")
    assert completed.count() >= 6
    for invitation in completed:
        iban = next(c.iban for c in data.CUSTOMERS if c.name == invitation.link.exact_name)
        mandate = gocardless.resource("mandates", invitation.link.mandate.gocardless_id)
        bank = gocardless.resource(
            "customer_bank_accounts", mandate["links"]["customer_bank_account"]
        )
        assert bank["account_number_ending"] == iban[-2:]

    # The summary says the same, in words.
    created = re.search(r"payments created at GoCardless: (\d+) for (\d+) invoices", first)
    assert created and int(created[1]) == int(created[2]) == one["created"]
    paid_out = re.search(r"paid out: (\d+) payments", first)
    assert paid_out and int(paid_out[1]) == one["created"] - 1
    assert first.count("  payout ") == payouts.count()
    assert f"{bookings.count()} of {bookings.count()} entries posted" in first
    # The refused payment waits for its retry: not "needs attention" (the admin's filter
    # and the summary share one definition, reconciliation.collection.selectors).
    assert "Needs attention: 0 " in first
    assert "Retry scheduled (" in first and "retry scheduled for " in first
    assert "Meijer Bouw B.V. has not completed the mandate invitation yet" in first
    assert "Café De Zwaan: no e-mail address in Exact" in first
    assert "login: demo / demo-password" in first
    active = Mandate.objects.filter(tenant=tenant, status="active").count()
    assert f"({active} active); {active} carry payment condition DD in Exact, {active} a " in first
    fees = sum((Decimal(p.deducted_fees) for p in payouts), Decimal(0))
    assert fees > 0

    # Again: both simulators and the tenant's data are reset; the same story, no leftovers.
    second = demo_run(exact, gocardless)
    again = facts(tenant)
    assert again == one
    assert Booking.objects.filter(tenant=tenant).count() == bookings.count()
    assert Payout.objects.filter(tenant=tenant).count() == payouts.count()
    exact_mandate_records(exact, tenant)
    assert (
        second.split("Exact Online (the books)")[1].split("Collection (")[0]
        == (first.split("Exact Online (the books)")[1].split("Collection (")[0])
    )


def test_demo_run_fits_its_default_exact_budget(simulators, demo_settings):
    """`make demo` passes no budget: the Exact simulator's clock stands still during the run,
    so every call (mandate records included) must fit in the demo's one minute."""
    exact, gocardless = simulators
    out = StringIO()
    call_command("demo_run", exact_url=exact.url, gocardless_url=gocardless.url, stdout=out)
    calls = sum(
        counts["total"] for path, counts in exact.call_counts().items() if "/api/v1/" in path
    )
    assert exact.settings()["minutely_limit"] == EXACT_MINUTELY_LIMIT > calls > 60
    assert not any("429" in counts for counts in exact.call_counts().values())
    exact_mandate_records(exact, Tenant.objects.get(slug="demo"))


def test_demo_run_says_when_a_simulator_is_not_running(demo_settings):
    with pytest.raises(CommandError, match="does not answer"):
        call_command(
            "demo_run",
            exact_url="http://127.0.0.1:9",
            gocardless_url="http://127.0.0.1:9",
            stdout=StringIO(),
        )


def test_demo_run_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo_run", stdout=StringIO())
