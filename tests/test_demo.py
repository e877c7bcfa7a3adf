"""`manage.py demo_run` end to end against both simulators (in process, on free loopback
ports, configured as `manage.py simulate --auto-consent` runs them), twice: the second run
resets and tells the same story. Then `scripts/demo.sh`'s environment: the address follows
DEMO_ADDR, and the `.env` it leaves for README's operator commands."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from core.calendars import tenant_today
from core.display import local_time_display
from core.money import to_minor_units
from demo import data, environment
from demo.run import EXACT_MINUTELY_LIMIT, STORY_DAYS
from exact.models import ExactReceivable
from gocardless.models import (
    GoCardlessEvent,
    Mandate,
    Payment,
    Payout,
    PayoutItem,
    PayoutItemsState,
    Subscription,
)
from reconciliation.bookings.models import Booking, PlanMatchedBy, PlanMatchState, PlanPaymentMatch
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    FailureSettings,
    PayLink,
    PayLinkState,
    SkipReason,
)
from reconciliation.collection.schedule_slots import schedule_next_slot
from reconciliation.customers.models import MandateInvitation
from reconciliation.workspace.schedule import next_run
from simulators.exact_online import Simulator as ExactSimulator
from simulators.gocardless import Simulator as GoCardlessSimulator
from tenants.models import ScheduleKind, Tenant


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
        # The payments the collection engine made (the subscription's are GoCardless' own,
        # the payment link's the customer made on GoCardless' page).
        "payments": Payment.objects.filter(tenant=tenant, subscription_id="",
                                           instalment_schedule_id="")
        .exclude(gocardless_id__in=PayLink.objects.filter(tenant=tenant)
                 .values("payment_gocardless_id")).count(),
        "plan_payments": sorted(Payment.objects.filter(tenant=tenant).exclude(subscription_id="")
                                .values_list("amount", "currency", "status")),
    }


def subscription_in_the_story(tenant) -> None:
    """Bakkerij Van Dijk's subscription (set up in GoCardless' dashboard) reached the mirrors
    through the polling job, with its payment, which was paid out in a payout; more are
    ahead."""
    (plan,) = Subscription.objects.filter(tenant=tenant)
    customer = next(c for c in data.CUSTOMERS if c.subscription is not None)
    assert (plan.name, plan.status, plan.currency, plan.interval_unit) == (
        customer.subscription.name, "active", "EUR", "monthly")
    assert plan.amount == to_minor_units(Decimal(customer.subscription.amount), "EUR")
    mandate = Mandate.objects.get(tenant=tenant, gocardless_id=plan.mandate_id)
    assert mandate.customer_id and plan.upcoming_payments
    assert all(u["charge_date"] > tenant_today(tenant).isoformat()
               for u in plan.upcoming_payments)
    payments = Payment.objects.filter(tenant=tenant, subscription_id=plan.gocardless_id)
    assert payments.count() >= 1 and all(p.metadata == {} for p in payments)
    paid = payments.filter(status="paid_out")
    assert paid.exists()
    assert PayoutItem.objects.filter(tenant=tenant, item_type="payment_paid_out",
                                     payment_id__in=paid.values("gocardless_id")).exists()


def subscription_pays_its_invoice(exact, tenant) -> int:
    """The merchant's Exact invoice for the subscription: the collection run skipped it (a
    GoCardless plan collects it), the subscription's payment was matched to it automatically
    and its receipt booked, and Exact closed it. Returns its number."""
    customer = next(c for c in data.CUSTOMERS if c.subscription is not None)
    (item,) = [i for i in customer.items if i.by_subscription]
    assert item.amount == customer.subscription.amount
    preview = CollectionRun.objects.filter(tenant=tenant, kind="live").latest("pk").preview
    (line,) = CollectionItem.objects.filter(run=preview, reason=SkipReason.PLAN_COLLECTS)
    assert line.decision != Decision.COLLECT and customer.name in line.account_label
    assert (line.outstanding, line.amount) == (Decimal(item.amount), Decimal(0))  # not charged
    (plan,) = Subscription.objects.filter(tenant=tenant)
    (payment,) = Payment.objects.filter(tenant=tenant, subscription_id=plan.gocardless_id)
    match = PlanPaymentMatch.objects.get(tenant=tenant, payment=payment)
    assert (match.state, match.matched_by) == (PlanMatchState.MATCHED, PlanMatchedBy.AUTOMATIC)
    assert match.invoice_number == line.invoice_number
    assert match.receipt.rule == "receipt" and match.receipt.state == "confirmed"
    assert match.receipt.facts["invoice"] == line.invoice_number
    # Never charged by us, and closed in Exact by the receipt.
    assert not CollectionAttempt.objects.filter(
        tenant=tenant, invoice_number=line.invoice_number).exists()
    assert exact_open_amount(exact, line.invoice_number) == Decimal("0.00")
    assert not ExactReceivable.objects.filter(
        tenant=tenant, exact_id=line.receivable_exact_id, is_fully_paid=False).exists()
    return line.invoice_number


def pay_link_paid_and_booked(exact, tenant) -> int:
    """data.LINK_FAILURE: the payment refused for a cause the default table does not retry,
    a payment link e-mailed instead (payment links are on), paid by the customer at the
    simulator, its receipt booked against the invoice, which Exact closed. Returns the
    invoice's number."""
    failure = data.LINK_FAILURE
    assert FailureSettings.objects.get(tenant=tenant).pay_links_enabled
    (link,) = PayLink.objects.filter(tenant=tenant)
    attempt = link.attempt
    assert failure.customer in attempt.account_label
    assert (attempt.amount, attempt.failure_cause) == (Decimal(failure.amount), failure.cause)
    assert attempt.state == AttemptState.PAID_BY_LINK
    customer = next(c for c in data.CUSTOMERS if c.name == failure.customer)
    assert (link.state, link.email, link.instant) == (PayLinkState.PAID, customer.email, True)
    assert link.amount == Decimal(failure.amount) and link.payment_gocardless_id
    payment = Payment.objects.get(tenant=tenant, gocardless_id=link.payment_gocardless_id)
    assert payment.metadata == link.payment_metadata and payment.status == "paid_out"
    receipt = Booking.objects.get(
        tenant=tenant, rule="receipt", gocardless_id=link.payment_gocardless_id)
    assert receipt.state == "confirmed" and receipt.facts["invoice"] == link.invoice_number
    assert exact_open_amount(exact, link.invoice_number) == Decimal("0.00")
    return link.invoice_number


def exact_open_amount(exact, number: int) -> Decimal:
    """What Exact (the simulator's books) still has open on invoice ``number``."""
    division = exact.state.division(data.DIVISION)
    invoice = division.invoices.get(division.invoice_by_number[number])
    return invoice.open


def schedule_in_the_story(tenant, summary: str) -> None:
    """The company's schedule is days 1 and 15 at 06:00; the dashboard's *Next collection
    run* (and the summary) shows it, here on a pinned day."""
    tenant.refresh_from_db()
    assert (tenant.schedule_kind, tenant.schedule_month_days, tenant.collection_hour) == (
        ScheduleKind.MONTH_DAYS, [1, 15], 6)
    assert "Scheduled collection: on days 1 and 15 of the month at 06:00" in summary
    assert "next collection run: " in summary
    with time_machine.travel(dt.datetime(2027, 3, 10, 12, tzinfo=dt.UTC), tick=False):
        when, what = next_run(tenant, timezone.now(), tenant_today(tenant))
    assert when == "Mon 15 Mar 2027, 06:00 CET" and what == "A preview for you to approve"
    # Saturday 1 May 2027 (Labour Day, TARGET closed) moves past Monday 3 May, the early May
    # bank holiday of Bacs (the company collects EUR and GBP), and the page says why.
    with time_machine.travel(dt.datetime(2027, 5, 2, 12, tzinfo=dt.UTC), tick=False):
        when, _ = next_run(tenant, timezone.now(), tenant_today(tenant))
    assert when == "Tue 4 May 2027, 06:00 CEST (the 1st is a holiday: Labour Day)"


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


# The product's clock and each simulator's are set from one another over HTTP and then run on
# separately, so they agree to within a call's latency (and drift by milliseconds under a
# faked system clock). The story's promise is at the precision a person reads (the admin shows
# minutes): nothing created at GoCardless after we processed it, no 10-day gap.
SKEW = dt.timedelta(seconds=1)


def clocks_in_step(exact, gocardless, tenant) -> None:
    now = timezone.now()
    assert abs(gocardless.clock.now() - now) < dt.timedelta(minutes=1)
    assert abs(exact.clock.now() - now) < dt.timedelta(minutes=1)
    events = GoCardlessEvent.objects.filter(tenant=tenant)
    assert events.exists()
    for event in events:
        assert event.created_at <= event.processed_at + SKEW, event.event_id
        assert event.processed_at <= now
    first_day = CollectionRun.objects.filter(tenant=tenant).earliest("started_at").started_at
    assert now - first_day > dt.timedelta(days=STORY_DAYS - 1)  # the story began days ago
    attempts = CollectionAttempt.objects.filter(tenant=tenant).exclude(payment_gocardless_id="")
    for attempt in attempts:
        payment = Payment.objects.get(tenant=tenant, gocardless_id=attempt.payment_gocardless_id)
        written = attempt.created_at
        written = written.replace(microsecond=written.microsecond // 1000 * 1000)  # as GoCardless
        assert written <= payment.gocardless_created_at + SKEW
        assert payment.gocardless_created_at <= now + SKEW
    # The refused payment's retry is still ahead: not due in the past with no run to do it.
    retry = CollectionAttempt.objects.get(tenant=tenant, state=AttemptState.RETRY_SCHEDULED)
    assert retry.next_retry_on > tenant_today(tenant)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_demo_run_end_to_end_twice(simulators, demo_settings):
    exact, gocardless = simulators

    first = demo_run(exact, gocardless)
    tenant = Tenant.objects.get(slug="demo")
    one = facts(tenant)

    # Every invoice the approved preview listed became exactly one payment at GoCardless.
    assert one["created"] == one["attempts"] == one["invoices"] == one["preview"] > 10
    assert one["payments"] == one["created"] and one["errors"] == 0
    assert one["approved_by"] == "demo"
    # They were paid out, except the two the payers' banks refused: one retried later, one
    # paid through the payment link the failure rules sent instead.
    assert one["states"] == [
        AttemptState.PAID_BY_LINK, AttemptState.PAID_OUT, AttemptState.RETRY_SCHEDULED]
    for state in (AttemptState.RETRY_SCHEDULED, AttemptState.PAID_BY_LINK):
        assert CollectionAttempt.objects.filter(tenant=tenant, state=state).count() == 1
    # Payouts in both currencies, each with GoCardless' fees deducted.
    payouts = Payout.objects.filter(tenant=tenant)
    assert {p.currency for p in payouts} == {"EUR", "GBP"}
    assert all(p.status == "paid" and p.deducted_fees > 0 for p in payouts)
    # Their lines were fetched when each was first seen.
    assert {p.items_state for p in payouts} == {PayoutItemsState.FETCHED}
    # The subscription's payment is GoCardless' own, collected and paid out in the story.
    subscription_in_the_story(tenant)
    assert "Subscriptions GoCardless collects by itself" in first
    assert "'Bread delivery subscription', €95.00 every month — Active" in first
    plan_invoice = subscription_pays_its_invoice(exact, tenant)
    assert (
        f"pays invoice {plan_invoice}: matched automatically (the one open invoice of that "
        "amount due around its charge date); its receipt booked in Exact" in first
    )
    assert "1 collected by a GoCardless subscription or instalment plan (Bakkerij " in first
    link_invoice = pay_link_paid_and_booked(exact, tenant)
    assert (
        f"Schmidt Logistik GmbH, invoice {link_invoice}, €2,450.00: the bank refused the "
        "payment (the customer's bank account is closed); not collected again by direct debit: "
        "a payment link was e-mailed to buchhaltung@schmidt-logistik.example on " in first
    )
    assert (
        "the customer paid it by instant bank transfer, its receipt booked in Exact against "
        "the invoice, which Exact closed" in first
    )
    # Bookings: every receipt and payout posted to Exact, which now shows the receipts: ours
    # but the two refused, the subscription's and the payment link's.
    bookings = Booking.objects.filter(tenant=tenant)
    assert bookings.filter(rule="receipt").count() == one["created"] - 2 + 2
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

    # One clock (issue 15: "created Dec 17, processed Dec 7"): the story ends today for the
    # product and both simulators, and nothing was processed before it happened.
    clocks_in_step(exact, gocardless, tenant)

    # The summary says the same, in words.
    created = re.search(r"payments created at GoCardless: (\d+) for (\d+) invoices", first)
    assert created and int(created[1]) == int(created[2]) == one["created"]
    paid_out = re.search(r"paid out: (\d+) payments", first)
    assert paid_out and int(paid_out[1]) == one["created"] - 2
    assert first.count("  payout ") == payouts.count()
    assert f"{bookings.count()} of {bookings.count()} entries posted" in first
    # The refused payment waits for its retry: not "needs attention" (the admin's filter
    # and the summary share one definition, reconciliation.collection.selectors).
    assert "Needs attention: 0 " in first
    assert "Retry scheduled (" in first and "retry scheduled for " in first
    # ... and which scheduled run (days 1 and 15) collects it: the first from its day on.
    retry = CollectionAttempt.objects.get(tenant=tenant, state=AttemptState.RETRY_SCHEDULED)
    slot = schedule_next_slot(
        tenant=tenant,
        after=max(timezone.now(), dt.datetime.combine(
            retry.next_retry_on, dt.time(0), tzinfo=tenant.zone) - dt.timedelta(microseconds=1)),
    )
    assert slot.day.day in (1, 15) or slot.why_moved
    assert f"retry scheduled for {retry.next_retry_on}, collected by the scheduled run of " \
        f"{local_time_display(slot.at, tenant)}" in first
    assert "Meijer Bouw B.V. has not completed the mandate invitation yet" in first
    assert "Café De Zwaan: no e-mail address in Exact" in first
    assert "login: demo / demo-password" in first
    schedule_in_the_story(tenant, first)
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
        second.split("Exact Online (the books")[1].split("Collection (")[0]
        == (first.split("Exact Online (the books")[1].split("Collection (")[0])
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_demo_run_says_when_a_simulator_is_not_running(demo_settings):
    with pytest.raises(CommandError, match="does not answer"):
        call_command(
            "demo_run",
            exact_url="http://127.0.0.1:9",
            gocardless_url="http://127.0.0.1:9",
            stdout=StringIO(),
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_demo_run_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo_run", stdout=StringIO())


# --- scripts/demo.sh's environment: DEMO_ADDR and the .env for README's commands ------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("addr", "url", "hosts"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000", "127.0.0.1,localhost"),
        ("127.0.0.1:8765", "http://127.0.0.1:8765", "127.0.0.1,localhost"),
        ("8765", "http://127.0.0.1:8765", "127.0.0.1,localhost"),
        ("0.0.0.0:8765", "http://127.0.0.1:8765", "127.0.0.1,localhost"),
        ("localhost:9000", "http://localhost:9000", "127.0.0.1,localhost"),
        ("[::1]:8765", "http://[::1]:8765", "127.0.0.1,localhost"),
        ("demo.lan:8080", "http://demo.lan:8080", "127.0.0.1,localhost,demo.lan"),
    ],
)
def test_public_base_url_follows_demo_addr(addr, url, hosts):
    assert environment.base_url(addr) == url
    assert environment.allowed_hosts(addr) == hosts


DEMO_VALUES = {
    "DEBUG": "true",
    "EXACT_CLIENT_ID": "sim-client-id",
    "EXACT_CLIENT_SECRET": "sim-client-secret",
    "EXACT_WEBHOOK_SECRET": "sim-webhook-secret",
    "PUBLIC_BASE_URL": "http://127.0.0.1:8765",
    "HOME": "/not/copied",
}


def test_env_file_is_written_and_rewritten_but_never_over_the_users_own(tmp_path):
    path = tmp_path / ".env"
    written, message = environment.env_file_write(path, DEMO_VALUES)
    assert written and "README" in message
    text = path.read_text()
    assert text.splitlines()[0] == environment.MARKER
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert values == {k: v for k, v in DEMO_VALUES.items() if k != "HOME"}

    # The demo's own file follows the next DEMO_ADDR.
    environment.env_file_write(path, {**DEMO_VALUES, "PUBLIC_BASE_URL": "http://127.0.0.1:8000"})
    assert "PUBLIC_BASE_URL=http://127.0.0.1:8000" in path.read_text()

    # Someone's own .env (no marker on its first line) is never touched.
    own = "# mine\nDEBUG=false\nPUBLIC_BASE_URL=https://connector.example.com\n"
    path.write_text(own)
    written, message = environment.env_file_write(path, DEMO_VALUES)
    assert not written and path.read_text() == own
    assert "left as it is" in message and "EXACT_CLIENT_ID=sim-client-id" in message


def _fake_project(tmp_path: Path) -> Path:
    """scripts/demo.sh and demo/environment.py in a directory of their own, with a PYTHON
    that answers for the simulators and records every manage.py command and its environment
    (nothing is started, nothing in the repository is written)."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "demo").mkdir()
    shutil.copy(ROOT / "scripts" / "demo.sh", project / "scripts" / "demo.sh")
    shutil.copy(ROOT / "demo" / "environment.py", project / "demo" / "environment.py")
    (project / "demo" / "__init__.py").write_text("")
    fake = project / "fake-python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = "-" ]; then cat >/dev/null; exit 0; fi\n'  # the simulators answer
        f'if [ "$1" = "-m" ]; then exec {sys.executable} "$@"; fi\n'
        'echo "$* | PUBLIC_BASE_URL=$PUBLIC_BASE_URL EXACT_REDIRECT_URI=$EXACT_REDIRECT_URI'
        ' ALLOWED_HOSTS=$ALLOWED_HOSTS" >> calls.log\n'
        # demo.sh waits for the task workers to say they run before it serves the admin
        'if [ "$2" = "qcluster" ]; then echo "Q Cluster fake running."; fi\n'
    )
    fake.chmod(0o755)
    return project


def _demo_sh(project: Path, **env) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=project,
        env={**keep, **DEMO_VALUES, "PYTHON": str(project / "fake-python"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_sh_serves_and_builds_urls_on_demo_addr_and_leaves_a_dot_env(tmp_path):
    """Issue 15: with DEMO_ADDR=127.0.0.1:8765 the demo printed http://127.0.0.1:8000/admin/
    and built callback and webhook URLs on :8000; README's commands then stopped with
    mlc.E003 unless the demo's environment was exported by hand."""
    project = _fake_project(tmp_path)
    stale = {"PUBLIC_BASE_URL": "http://127.0.0.1:8000", "DEMO_ADDR": "127.0.0.1:8765"}
    result = _demo_sh(project, **stale)
    assert result.returncode == 0, result.stderr
    assert "ml-connector admin: http://127.0.0.1:8765/admin/" in result.stdout
    assert ":8000" not in result.stdout
    calls = (project / "calls.log").read_text().splitlines()
    # The task workers run in the background beside runserver (their line may come first).
    assert [c.split(" |")[0] for c in calls if "qcluster" not in c] == [
        "manage.py migrate --noinput",
        "manage.py demo_setup",
        "manage.py demo_run --exact-url http://127.0.0.1:8101 "
        "--gocardless-url http://127.0.0.1:8102",
        "manage.py schedules",
        "manage.py runserver 127.0.0.1:8765",
    ]
    assert [c.split(" |")[0] for c in calls if "qcluster" in c] == ["manage.py qcluster"]
    for call in calls:
        assert "PUBLIC_BASE_URL=http://127.0.0.1:8765 " in call
        assert "EXACT_REDIRECT_URI=http://127.0.0.1:8765/connect/exact/callback/" in call
    text = (project / ".env").read_text()
    assert text.startswith(environment.MARKER)
    for line in (
        "DEBUG=true",
        "EXACT_CLIENT_ID=sim-client-id",
        "EXACT_CLIENT_SECRET=sim-client-secret",
        "PUBLIC_BASE_URL=http://127.0.0.1:8765",
    ):
        assert line in text.splitlines()
    assert "Wrote .env" in result.stdout

    # A .env the user wrote stays exactly as it was.
    own = "SECRET_KEY=mine\n"
    (project / ".env").write_text(own)
    result = _demo_sh(project, DEMO_ADDR="127.0.0.1:8765")
    assert result.returncode == 0, result.stderr
    assert (project / ".env").read_text() == own
    assert ".env was not written by the demo" in result.stdout
