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

from gocardless.models import Payment, Payout
from reconciliation.bookings.models import Booking
from reconciliation.collection.models import AttemptState, CollectionAttempt, CollectionRun
from reconciliation.demo import data
from simulators.exact_online import Simulator as ExactSimulator
from simulators.gocardless import Simulator as GoCardlessSimulator
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


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

    # The summary says the same, in words.
    created = re.search(r"payments created at GoCardless: (\d+) for (\d+) invoices", first)
    assert created and int(created[1]) == int(created[2]) == one["created"]
    paid_out = re.search(r"paid out: (\d+) payments", first)
    assert paid_out and int(paid_out[1]) == one["created"] - 1
    assert first.count("  payout ") == payouts.count()
    assert f"{bookings.count()} of {bookings.count()} entries posted" in first
    assert "Payment failed" in first
    assert "Meijer Bouw B.V. has not completed the mandate invitation yet" in first
    assert "Café De Zwaan: no e-mail address in Exact" in first
    assert "login: demo / demo-password" in first
    fees = sum((Decimal(p.deducted_fees) for p in payouts), Decimal(0))
    assert fees > 0

    # Again: both simulators and the tenant's data are reset; the same story, no leftovers.
    second = demo_run(exact, gocardless)
    again = facts(tenant)
    assert again == one
    assert Booking.objects.filter(tenant=tenant).count() == bookings.count()
    assert Payout.objects.filter(tenant=tenant).count() == payouts.count()
    assert (
        second.split("Exact Online (the books)")[1].split("Collection (")[0]
        == (first.split("Exact Online (the books)")[1].split("Collection (")[0])
    )


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
