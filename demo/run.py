"""The end-to-end demo, step by step, through the product's own services.

The simulators are driven through their control APIs only for what the outside world does
(the company's books in Exact, payers completing GoCardless' hosted page, days passing).
Everything ml-connector does, it does through its services and its HTTP clients, against the
simulators' APIs, as in production.

Idempotent by reset: each run empties both simulators and the demo tenant's integration data
(connections, mirrors, links, runs, bookings, events; the append-only audit trail stays),
then builds the whole story again.

One clock for everyone: the story starts ``STORY_DAYS`` days ago and ends now. The product's
clock is moved there (time-machine, ticking) and both simulators' clocks are set to it; each
simulated day moves all three by one day, so an event is never "created" at GoCardless after
ml-connector "processed" it, and when the admin is served, the simulators and the product
agree on today (a *Retry now* then charges on a date GoCardless accepts). One thing keeps the
database's own clock: ``GoCardlessEvent.received_at`` (set by the database), so it shows when
the demo ran, not the story's day.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import requests
from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.calendars import tenant_today
from core.money import to_minor_units
from demo import data
from demo.data import Onboarding
from demo.simulators import ExactControl, GoCardlessControl, SimulatorError

logger = logging.getLogger(__name__)

GOCARDLESS_ACCESS_TOKEN = "sim-access-token"  # the simulator's built-in sandbox token
GOCARDLESS_WEBHOOK_SECRET = "sim-webhook-secret"
# The story starts this many days ago and ends today: long enough for every payment of the
# approved preview to be collected and paid out (about ten days, weekends included).
STORY_DAYS = 14
# The demo's policy retries a failed payment after this many days: a payment that fails on
# day 1 or later of the story is retried after its last day (today), as the summary says.
RETRY_SPACING_DAYS = STORY_DAYS
# The Exact simulator's clock runs with the product's (set at the start and on each simulated
# day); the story's Exact calls come in bursts within one simulated minute: about 80 calls
# (sync, reflection with mandate records, bookings) must fit; Exact's own budget is 60.
EXACT_MINUTELY_LIMIT = 150
KEEP_ON_RESET = {"core.auditentry", "tenants.membership", "tenants.tenant"}


class DemoError(RuntimeError):
    """A step of the demo could not be carried out (the message says which and why)."""


@dataclass
class DemoResult:
    tenant_id: int
    preview_id: int | None = None
    live_run_id: int | None = None
    days_advanced: int = 0
    gocardless_today: str = ""
    story_start: date | None = None  # the story's first day (the product's date then)
    today: date | None = None  # its last: today, by every clock
    failed_payment: str = ""
    link_failed_payment: str = ""  # data.LINK_FAILURE's payment, refused: a payment link
    pay_link_id: int | None = None
    pay_link_emailed_to: list[str] = field(default_factory=list)  # the link's e-mail
    pay_link_paid_on: date | None = None
    exact_open_totals: dict = field(default_factory=dict)  # at the first sync
    exact_overdue: int = 0
    bookings_available: bool = False
    bookings_note: str = ""
    notes: list[str] = field(default_factory=list)


# --- reset ----------------------------------------------------------------------------------


def tenant_data_reset(*, tenant) -> dict[str, int]:
    """Delete the tenant's integration data (everything that points at the tenant except
    memberships and the append-only audit trail). Used only for the demo tenant."""
    targets = []
    for model in apps.get_models():
        if model._meta.label_lower in KEEP_ON_RESET:
            continue
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model is type(tenant):
                targets.append((model, f.name))
                break
    deleted: dict[str, int] = {}
    with transaction.atomic():
        # PROTECT links inside what is deleted (a live run's preview, a booking's "after"):
        # cut them first so the order of deletion does not matter.
        for model, tenant_field in targets:
            for f in model._meta.concrete_fields:
                protect = getattr(f.remote_field, "on_delete", None) is models.PROTECT
                if f.is_relation and protect and f.null and f.related_model is model:
                    model.objects.filter(**{tenant_field: tenant}).update(**{f.name: None})
        # PROTECT links between them (a payment link's attempt): a model whose rows others
        # still protect waits for the next pass, after those others are gone.
        waiting = list(targets)
        while waiting:
            protected = []
            for model, tenant_field in waiting:
                try:
                    with transaction.atomic():
                        count, _ = model.objects.filter(**{tenant_field: tenant}).delete()
                except models.ProtectedError:
                    protected.append((model, tenant_field))
                    continue
                if count:
                    deleted[model._meta.label] = deleted.get(model._meta.label, 0) + count
            if len(protected) == len(waiting):
                raise DemoError(
                    "could not reset the demo tenant: "
                    + ", ".join(m._meta.label for m, _ in protected)
                    + " are protected by rows outside the demo's data"
                )
            waiting = protected
    return deleted


# --- the demo -------------------------------------------------------------------------------


class Demo:
    def __init__(
        self,
        *,
        tenant,
        user,
        exact_url: str,
        gocardless_url: str,
        log: Callable[[str], None] = lambda _line: None,
        exact_minutely_limit: int | None = None,
    ) -> None:
        self.tenant = tenant
        self.user = user
        self.exact = ExactControl(exact_url)
        self.gocardless = GoCardlessControl(gocardless_url)
        self.log = log
        self.exact_minutely_limit = exact_minutely_limit
        self.actor = Actor.system("demo_run")
        self.result = DemoResult(tenant_id=tenant.pk)
        self.traveller = None  # the product's clock while the story runs (time-machine)

    # The steps, in order -------------------------------------------------------------------

    def run(self) -> DemoResult:
        with self.story_clock():
            self.reset()
            self.seed_exact()
            self.seed_gocardless()
            self.set_policy()
            self.connect_exact()
            self.connect_gocardless()
            self.configure_bookings()
            self.sync_exact()
            self.match_and_invite()
            self.payers_complete_hosted_pages()
            self.collect()
            self.let_days_pass()
            self.post_bookings()
            self.sync_exact(again=True)
        return self.result

    @contextmanager
    def story_clock(self) -> Iterator[None]:
        """The product's clock ``STORY_DAYS`` days back, ticking, the simulators' set to it;
        ``let_days_pass`` moves all three. Afterwards the product is on real time again (the
        story's last day is today) and so are both simulators, Exact's running on from here."""
        try:
            import time_machine
        except ImportError as exc:  # installed with the test extras (requirements.lock)
            raise DemoError(
                "the demo moves the product's clock with time-machine: install "
                "requirements.lock (`make install`)"
            ) from exc
        start = timezone.now() - timedelta(days=STORY_DAYS)
        try:
            with time_machine.travel(start, tick=True) as traveller:
                self.traveller = traveller
                self.result.story_start = tenant_today(self.tenant)
                yield
        finally:
            self.traveller = None
            try:
                self.clocks_in_step()  # real time again, whatever happened
            except SimulatorError:
                logger.warning("demo: could not set the simulators' clocks back to now")
        self.result.today = tenant_today(self.tenant)

    def clocks_in_step(self) -> None:
        """Both simulators' clocks to the product's now (each runs on with real time)."""
        now = timezone.now()
        self.gocardless.clock_set(now)
        self.exact.set_time(now=now.isoformat(), ticking=True)

    def step(self, text: str) -> None:
        self.log(f"- {text}")

    def reset(self) -> None:
        """On the story's first day: GoCardless' reset starts its daily processing from its
        clock's today, so the clock is set first (``GoCardlessControl.reset``)."""
        self.step("Resetting both simulators and the demo tenant's data")
        self.exact.reset()
        self.gocardless.reset()
        self.clocks_in_step()
        deleted = tenant_data_reset(tenant=self.tenant)
        if deleted:
            logger.info("demo: removed the previous demo's data: %s", deleted)

    def seed_exact(self) -> None:
        self.step(
            f"Exact Online: division {data.DIVISION} with {len(data.CUSTOMERS)} customers and "
            f"{sum(len(c.items) for c in data.CUSTOMERS)} open items"
        )
        self.exact.settings(minutely_limit=self.exact_minutely_limit or EXACT_MINUTELY_LIMIT)
        self.exact.seed_division(division=data.DIVISION, name=data.DIVISION_NAME)
        today = tenant_today(self.tenant)  # the date the collection engine works with
        number = 26001
        for n, customer in enumerate(data.CUSTOMERS, start=1):
            account = self.exact.seed_account(
                division=data.DIVISION,
                name=customer.name,
                code=str(1000 + n),
                email=customer.email or None,
                city=customer.city,
                country=customer.country,
                language=customer.language,
                sales_currency=customer.currency,
                payment_condition_sales="30",
                iban=customer.iban,  # also its main bank account (crm/BankAccounts)
                bic=customer.bic,
            )
            for item in customer.items:
                due = today + timedelta(days=item.due_in_days)
                fields = {
                    "division": data.DIVISION,
                    "account": account["ID"],
                    "amount": item.amount,
                    "number": number,
                    "currency": customer.currency,
                    "invoice_date": (due - timedelta(days=30)).isoformat(),
                    "due_date": due.isoformat(),
                    "description": item.description or f"Invoice {number}",
                }
                if item.open is not None:
                    fields["open"] = item.open
                if item.credit_note:
                    self.exact.seed_credit_note(**fields)
                else:
                    self.exact.seed_invoice(**fields)
                number += 1

    def seed_gocardless(self) -> None:
        existing = [c for c in data.CUSTOMERS if c.onboarding == Onboarding.EXISTING]
        self.step(
            f"GoCardless: creditor with SEPA and Bacs; {len(existing)} customers who already pay "
            "by direct debit"
        )
        mandates = [
            {
                "scheme": "bacs" if c.currency == "GBP" else "sepa_core",
                "status": "active",
                "company_name": c.name,
                "email": c.email,
            }
            for c in existing
        ]
        created = self.gocardless.seed(mandates=mandates)
        for customer, mandate_id in zip(existing, created["mandates"], strict=True):
            plan = customer.subscription
            if plan is None:
                continue
            self.step(
                f"GoCardless: {customer.name} also pays a subscription, '{plan.name}' "
                f"({customer.currency} {plan.amount} {plan.interval_unit}), collected by "
                "GoCardless itself"
            )
            # Set up in GoCardless' dashboard before ml-connector was connected: its events
            # (and its payments') reach the product through the polling job, like any other.
            self.gocardless.create_subscription(
                amount=to_minor_units(Decimal(plan.amount), customer.currency),
                currency=customer.currency,
                interval_unit=plan.interval_unit,
                name=plan.name,
                links={"mandate": mandate_id},
            )

    def set_policy(self) -> None:
        from reconciliation.collection.models import FailureSettings
        from reconciliation.customers.models import CustomerSettings, RegistrationPolicy
        from tenants.models import CollectionMode, ScheduleKind
        from tenants.services import tenant_update

        days = " and ".join(str(d) for d in data.SCHEDULE_MONTH_DAYS)
        self.step(
            f"Policy: review mode, collect what is due within {data.LEAD_DAYS} days; scheduled "
            f"runs on days {days} of the month at {data.SCHEDULE_HOUR:02d}:00; payment links on"
        )
        self.tenant = tenant_update(
            tenant=self.tenant,
            actor=self.actor,
            collection_mode=CollectionMode.REVIEW,
            lead_days=data.LEAD_DAYS,
            minimum_amount="5.00",
            currencies=["EUR", "GBP"],
            retry_spacing_days=RETRY_SPACING_DAYS,
            collection_hour=data.SCHEDULE_HOUR,
            schedule_kind=ScheduleKind.MONTH_DAYS,
            schedule_month_days=list(data.SCHEDULE_MONTH_DAYS),
        )  # the rest keeps its defaults: charge on the due date, one retry
        # Payment links: what an administrator switches on on the Failure settings page. A
        # failure the default table does not retry (the account closed) then e-mails the
        # customer a link to pay by bank instead of leaving it to a person.
        links, created = FailureSettings.objects.update_or_create(
            tenant=self.tenant, defaults={"pay_links_enabled": True}
        )
        audit_record(
            actor=self.actor,
            action="failuresettings.created" if created else "failuresettings.changed",
            tenant=self.tenant,
            obj=links,
            message="demo: send payment links",
        )
        row, created = CustomerSettings.objects.update_or_create(
            tenant=self.tenant,
            defaults={
                "registration_policy": RegistrationPolicy.OPEN_RECEIVABLES,
                "auto_invite": True,
                "direct_debit_condition": "DD",
                "default_payment_condition": "30",
                "reflect_payment_condition": True,
                # Each active mandate also gets a DirectDebitMandates record in Exact, on the
                # account's main bank account (seeded with the customer in seed_exact).
                "reflect_mandate_record": True,
                "invitation_sender": f"{self.tenant.name} <debiteuren@demo-trading.example>",
            },
        )
        audit_record(
            actor=self.actor,
            action="customersettings.created" if created else "customersettings.changed",
            tenant=self.tenant,
            obj=row,
            message="demo: invite customers with open invoices; reflect mandates in Exact",
        )

    def connect_exact(self) -> None:
        from exact.client import oauth_authorization_url, oauth_code_exchange
        from exact.connections import connection_choose_division, connection_store_consent
        from exact.models import ExactConnection, Region
        from exact.oauth import consent_divisions
        from exact.schedules import exact_schedules_ensure
        from exact.webhooks import subscriptions_create

        self.step("Connecting Exact Online (OAuth consent and code exchange)")
        if not settings.EXACT_CLIENT_ID or not settings.EXACT_CLIENT_SECRET:
            raise DemoError(
                "EXACT_CLIENT_ID / EXACT_CLIENT_SECRET are not set (the simulator's are "
                "sim-client-id / sim-client-secret; `make demo` sets them)."
            )
        # What an administrator fills in on the admin's add page, then "Connect".
        connection = ExactConnection(
            tenant=self.tenant, region=Region.CUSTOM, custom_base_url=self.exact.url
        )
        connection.full_clean()
        connection.save()
        # The browser's part: the consent page (auto-consent) redirects back with a code.
        auth_url = oauth_authorization_url(base_url=connection.base_url, state="demo")
        browser = requests.Session()
        browser.trust_env = False  # the simulator is on loopback: never through a proxy
        answer = browser.get(auth_url, allow_redirects=False, timeout=10)
        location = answer.headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code", [""])[0]
        if answer.status_code != 302 or not code:
            raise DemoError(
                f"Exact's consent page gave no code ({answer.status_code}); start the simulator "
                "with --auto-consent"
            )
        tokens = oauth_code_exchange(base_url=connection.base_url, code=code)
        connection = connection_store_consent(
            connection=connection, tokens=tokens, issued_at=timezone.now(), actor=self.actor
        )
        divisions = consent_divisions(connection=connection, access_token=tokens["access_token"])
        chosen = next((d for d in divisions if d["code"] == data.DIVISION), None)
        if chosen is None:
            raise DemoError(f"Division {data.DIVISION} is not in the consent: {divisions}")
        connection = connection_choose_division(
            connection=connection,
            division=chosen["code"],
            division_name=chosen["name"],
            actor=self.actor,
        )
        subscriptions_create(connection=connection)
        exact_schedules_ensure()

    def connect_gocardless(self) -> None:
        from gocardless.connect import connection_test
        from gocardless.models import Environment, GoCardlessConnection

        self.step("Connecting GoCardless (access token + webhook secret, Test connection)")
        connection = GoCardlessConnection.objects.create(
            tenant=self.tenant,
            environment=Environment.CUSTOM,
            custom_base_url=self.gocardless.url,
            access_token=GOCARDLESS_ACCESS_TOKEN,
            webhook_secret=GOCARDLESS_WEBHOOK_SECRET,
        )
        outcome = connection_test(connection=connection, actor=self.actor)
        if not outcome["ok"]:
            raise DemoError(f"GoCardless Test connection failed: {outcome['error']}")

    def configure_bookings(self) -> None:
        from django.core.exceptions import ValidationError

        from reconciliation.bookings.config import booking_settings_validate
        from reconciliation.bookings.models import BookingSettings

        self.step("Bookings: GoCardless clearing journal 21, debtors 1300, fees 4600")
        row = BookingSettings(
            tenant=self.tenant,
            enabled=True,
            clearing_journal_code="21",
            bank_journal_code="20",
            receivables_gl_code="1300",
            fees_gl_code="4600",
            transfer_gl_code="1190",
            unmatched_gl_code="2390",
        )
        try:
            booking_settings_validate(settings=row)
        except ValidationError as exc:
            self.result.bookings_note = f"booking settings were refused: {exc}"
            return
        row.save()
        audit_record(
            actor=self.actor,
            action="bookingsettings.created",
            tenant=self.tenant,
            obj=row,
            message="demo: book receipts and payouts in Exact",
        )
        self.result.bookings_available = True

    def sync_exact(self, *, again: bool = False) -> None:
        from exact.models import ExactConnection
        from exact.sync import exact_sync

        if again:
            self.step("Exact Online: sync again (the booked receipts close the invoices)")
        else:
            self.step("Exact Online: first sync of customers and open items")
        connection = ExactConnection.objects.get(tenant=self.tenant)
        runs = exact_sync(connection=connection, trigger="demo")
        failed = [r for r in runs if r.error]
        if failed:
            raise DemoError(f"Exact sync failed: {failed[0].error}")
        if not again:
            self._books_before()

    def _books_before(self) -> None:
        from exact.models import ExactReceivable

        totals: dict[str, Decimal] = defaultdict(Decimal)
        today = tenant_today(self.tenant)
        for row in ExactReceivable.objects.filter(tenant=self.tenant, is_fully_paid=False):
            totals[row.currency] += row.outstanding
            if row.due_date and row.due_date < today and row.outstanding > 0:
                self.result.exact_overdue += 1
        self.result.exact_open_totals = dict(totals)

    def match_and_invite(self) -> None:
        from reconciliation.customers.matching import customers_match
        from reconciliation.customers.registration import registration_run

        self.step("Customers: matching with GoCardless, inviting the rest to a mandate")
        report = customers_match(tenant=self.tenant, actor=self.actor)
        self.result.notes.append(f"matching: {report.as_dict()}")
        counts = registration_run(tenant=self.tenant, actor=self.actor)
        self.result.notes.append(f"registration: {counts}")

    def payers_complete_hosted_pages(self) -> None:
        from reconciliation.customers.models import InvitationState, MandateInvitation

        completes = {c.name: c for c in data.CUSTOMERS if c.onboarding == Onboarding.COMPLETES}
        invitations = MandateInvitation.objects.filter(
            tenant=self.tenant, state=InvitationState.SENT
        ).select_related("link")
        done = 0
        for invitation in invitations:
            customer = completes.get(invitation.link.exact_name)
            if customer is not None and invitation.flow_id:
                # The payer enters the bank account Exact knows for them.
                self.gocardless.complete_flow(
                    invitation.flow_id, **customer.gocardless_bank_details()
                )
                done += 1
        self.step(f"Payers: {done} customers complete GoCardless' hosted page")
        self.poll()

    def poll(self) -> dict:
        from gocardless.models import GoCardlessConnection
        from gocardless.polling import events_poll

        connection = GoCardlessConnection.objects.select_related("tenant").get(tenant=self.tenant)
        return events_poll(connection=connection)

    def collect(self) -> None:
        from reconciliation.collection.models import RunState, RunTrigger
        from reconciliation.collection.runs import run_approve, run_start

        preview = run_start(tenant=self.tenant, trigger=RunTrigger.USER, user=self.user)
        self.result.preview_id = preview.pk
        self.step(
            f"Collection: preview #{preview.pk} — {preview.to_collect} to collect, "
            f"{preview.skipped} not yet; approved by {self.user.username}"
        )
        if preview.state != RunState.AWAITING_APPROVAL:
            raise DemoError(f"expected a preview awaiting approval, got {preview.state}")
        live = run_approve(preview=preview, user=self.user)
        self.result.live_run_id = live.pk
        if live.state != RunState.COMPLETED:
            raise DemoError(f"the approved run ended {live.state}: {live.error}")

    def let_days_pass(self) -> None:
        from gocardless.models import Payment
        from reconciliation.collection.models import AttemptState, CollectionAttempt

        in_flight = [AttemptState.PENDING, AttemptState.SUBMITTED, AttemptState.CONFIRMED]
        attempts = CollectionAttempt.objects.filter(tenant=self.tenant)
        self.step(
            f"{STORY_DAYS} days pass, day by day (ml-connector's, Exact's and GoCardless' "
            "clocks together): GoCardless' events fetched by the polling job"
        )
        for day in range(1, STORY_DAYS + 1):
            self.traveller.shift(timedelta(days=1))
            self.gocardless.advance(days=1)
            self.exact.set_time(now=timezone.now().isoformat(), ticking=True)
            self.poll()
            self.result.days_advanced = day
            if not self.result.failed_payment:
                # One payer's bank refuses a payment, as happens in real life.
                submitted = (
                    Payment.objects.filter(tenant=self.tenant, status="submitted", currency="GBP")
                    .order_by("amount")
                    .first()
                )
                if submitted is not None:
                    self.gocardless.scenario("payment_failed", submitted.gocardless_id)
                    self.result.failed_payment = submitted.gocardless_id
                    self.poll()
            if not self.result.link_failed_payment:
                self.link_failure()
            elif self.result.pay_link_paid_on is None:
                self.customer_pays_link()
        self.result.gocardless_today = self.gocardless.clock()["today"]
        still = attempts.filter(state__in=in_flight).count()
        self.log(
            f"  (today, {self.result.gocardless_today}, by every clock"
            + (f"; {still} payment(s) still on their way" if still else "")
            + ")"
        )

    def link_failure(self) -> None:
        """data.LINK_FAILURE: the payer's bank refuses the payment with a cause the default
        failure table does not retry; the product e-mails the customer a payment link."""
        from gocardless.models import Payment
        from reconciliation.collection.models import CollectionAttempt, PayLink

        failure = data.LINK_FAILURE
        customer = next(c for c in data.CUSTOMERS if c.name == failure.customer)
        attempt = (
            CollectionAttempt.objects.filter(
                tenant=self.tenant,
                account_label__contains=failure.customer,
                amount=Decimal(failure.amount),
                currency=customer.currency,
            )
            .exclude(payment_gocardless_id="")
            .first()
        )
        if attempt is None:
            raise DemoError(f"no payment of {failure.amount} for {failure.customer} was created")
        payment = Payment.objects.filter(
            tenant=self.tenant, gocardless_id=attempt.payment_gocardless_id
        ).first()
        if payment is None or payment.status not in ("pending_submission", "submitted"):
            return  # its events have not reached us yet: the next day
        self.gocardless.fail_payment(payment.gocardless_id, cause=failure.cause)
        self.result.link_failed_payment = payment.gocardless_id
        self.poll()
        link = PayLink.objects.filter(tenant=self.tenant, attempt=attempt).first()
        if link is None or not link.flow_gocardless_id:
            raise DemoError(
                f"no payment link was sent for {failure.customer}'s refused payment "
                f"(attempt #{attempt.pk}: {attempt.get_state_display()}, {attempt.flag})"
            )
        self.result.pay_link_id = link.pk
        self.result.pay_link_emailed_to = self._emailed(link.authorisation_url)
        self.step(
            f"{failure.customer}'s bank refuses the payment of invoice {attempt.invoice_number} "
            f"({failure.cause.replace('_', ' ')}): a payment link is e-mailed to "
            f"{', '.join(self.result.pay_link_emailed_to) or link.email}"
        )

    @staticmethod
    def _emailed(url: str) -> list[str]:
        """Who received the e-mail carrying ``url`` (demo_run keeps e-mails in memory)."""
        from django.core import mail

        sent = [m for m in getattr(mail, "outbox", []) if url and url in m.body]
        return sorted({address for m in sent for address in m.to})

    def customer_pays_link(self) -> None:
        """The next day the customer opens the e-mail's link and pays on GoCardless' page
        (instant bank pay: confirmed at once); the product hears of it through polling."""
        from reconciliation.collection.models import PayLink, PayLinkState

        link = PayLink.objects.get(pk=self.result.pay_link_id)
        if link.state != PayLinkState.SENT:
            raise DemoError(f"the payment link for invoice {link.invoice_number} is {link.state}")
        self.gocardless.complete_flow(
            link.flow_gocardless_id, email=link.email, company_name=data.LINK_FAILURE.customer
        )
        self.poll()
        link.refresh_from_db()
        if link.state != PayLinkState.PAID:
            raise DemoError(
                f"the payment link for invoice {link.invoice_number} was paid at GoCardless "
                f"but is {link.get_state_display()}: {link.error}"
            )
        self.result.pay_link_paid_on = tenant_today(self.tenant)
        self.step(
            f"{data.LINK_FAILURE.customer} pays invoice {link.invoice_number} through the "
            "payment link, by instant bank transfer"
        )

    def post_bookings(self) -> None:
        if not self.result.bookings_available:
            return
        from reconciliation.bookings.posting import bookings_sweep

        self.step("Bookings: posting what is still due to Exact")
        for _ in range(5):  # 50 a sweep; stops when nothing is due
            if not bookings_sweep():
                break


def demo_prepare_simulators(*, exact_url: str, gocardless_url: str) -> None:
    """Fail early, with a clear message, when a simulator is not running."""
    ExactControl(exact_url).now()
    GoCardlessControl(gocardless_url).clock()


__all__ = ["Demo", "DemoError", "DemoResult", "SimulatorError", "demo_prepare_simulators"]
