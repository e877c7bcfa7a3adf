"""The month of the chaos run: three companies, February 2027, one day at a time.

What the people and the outside world do is done here (their books in Exact, payers and
GoCardless' banks, a refund, an administrator reconnecting Exact); everything ml-connector
does, its own processes do, through the task cluster and the web server, as in production:
the scheduled runs collect, the webhooks and the polling bring the events, the sweeps book.

The companies
- Van Dijk Installaties (NL, EUR): an overdue invoice, a part-paid invoice, an invoice with a
  credit note, a late failure after the money was confirmed, a subscription paying an invoice
  on the 10th, and invoices issued mid-month collected by the run of the 15th.
- Schmidt Logistik (DE, EUR): a chargeback, a payment refused for insufficient funds and
  retried three days later, a partial refund, and the administrator reconnecting Exact.
- Harbour Supplies (GB, GBP, Bacs): payments paid out, and a payout that bounces.

Every id the simulators hand out is replaced by a label in the final state (snapshot.py),
and what we seed gets deterministic ids, so two runs can be compared.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import requests

START = datetime(2027, 2, 1, 6, 0, tzinfo=UTC)  # Monday 1 February 2027, 07:00 in Amsterdam
NAMESPACE = uuid.UUID("6f1c2d4e-8a0b-4c55-9d3e-2b7a1e0c9f10")
WEBHOOK_SECRET = "chaos-webhook-secret"
GC_TOKEN = "sim-access-token"


def fixed_id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


class StoryError(RuntimeError):
    """The world is not as the story expects at this point (a bug in the product, or in us)."""


@dataclass
class Invoice:
    number: int
    amount: str
    due_day: int  # days after START (negative: overdue at the start)
    issued_day: int = -30  # the day it appears in Exact (before the start: there at once)
    open: str | None = None  # part-paid: what is still open
    credit_note: bool = False


@dataclass
class Customer:
    code: str
    name: str
    email: str
    iban: str
    invoices: list[Invoice]
    subscription: dict | None = None  # amount (minor), day_of_month, name


@dataclass
class Company:
    slug: str
    name: str
    time_zone: str
    currency: str
    country: str
    scheme: str
    division: int
    hour: int
    customers: list[Customer]
    # filled in by the world
    tenant: object = None
    exact_sim: object = None
    gc_sim: object = None
    invoice_ids: dict = field(default_factory=dict)


def companies() -> list[Company]:
    return [
        Company(
            slug="van-dijk", name="Van Dijk Installaties BV", time_zone="Europe/Amsterdam",
            currency="EUR", country="NL", scheme="sepa_core", division=710001, hour=7,
            customers=[
                Customer("1001", "Bakker Bouw BV", "ap@bakker-bouw.example", "NL91ABNA0417164300",
                         [Invoice(27001, "121.00", -3),
                          Invoice(27002, "250.00", 2, open="100.00"),
                          Invoice(27010, "75.00", 14, issued_day=7)]),
                Customer("1002", "Jansen Techniek", "finance@jansen.example",
                         "NL69INGB0123456789", [Invoice(27003, "300.00", 0)]),
                Customer("1003", "De Vries Advies", "admin@devries.example",
                         "NL20RABO0300065264", [Invoice(27004, "49.50", 10)],
                         subscription={"amount": 4950, "day_of_month": 10,
                                       "name": "Onderhoudscontract"}),
                Customer("1004", "Smit Installatie", "smit@smit.example", "NL02ABNA0123456789",
                         [Invoice(27005, "80.00", 1),
                          Invoice(27006, "20.00", 1, credit_note=True),
                          Invoice(27011, "42.35", 15, issued_day=8)]),
            ],
        ),
        Company(
            slug="schmidt", name="Schmidt Logistik GmbH", time_zone="Europe/Berlin",
            currency="EUR", country="DE", scheme="sepa_core", division=720002, hour=7,
            customers=[
                Customer("2001", "Müller Spedition GmbH", "buchhaltung@mueller.example",
                         "DE89370400440532013000", [Invoice(28001, "500.00", 0)]),
                Customer("2002", "Weber Handel KG", "rechnung@weber.example",
                         "DE02120300000000202051", [Invoice(28002, "120.00", 0)]),
                Customer("2003", "Fischer Lager AG", "ap@fischer.example",
                         "DE02500105170137075030", [Invoice(28003, "90.00", -1),
                                                    Invoice(28010, "64.20", 14, issued_day=9)]),
            ],
        ),
        Company(
            slug="harbour", name="Harbour Supplies Ltd", time_zone="Europe/London",
            currency="GBP", country="GB", scheme="bacs", division=730003, hour=6,
            customers=[
                Customer("3001", "Taylor & Sons Ltd", "accounts@taylor.example",
                         "GB33BUKB20201555555555", [Invoice(29001, "200.00", 0)]),
                Customer("3002", "Brown Fabrication Ltd", "ap@brown.example",
                         "GB94BARC10201530093459", [Invoice(29002, "150.00", 1),
                                                    Invoice(29010, "88.88", 15, issued_day=7)]),
            ],
        ),
    ]


# The story's days (after START) and what happens on each, beyond the product's own work.
DAYS = [0, 1, 7, 10, 14, 15, 16, 17, 24, 28, 35]


class Story:
    def __init__(self, world) -> None:
        self.world = world
        self.companies = world.companies
        self.by_slug = {c.slug: c for c in self.companies}
        self.notes: list[str] = []
        self.issued: set[int] = set()

    # --- the days -----------------------------------------------------------------------------

    def on_day(self, day: int) -> None:
        handler = getattr(self, f"day_{day}", None)
        for company in self.companies:
            self.issue_invoices(company, day)
        if handler is not None:
            handler()

    def day_0(self) -> None:
        # Set-up happened before the clock reached 07:00: connections, policy, mandates.
        pass

    def day_1(self) -> None:
        # Weber's bank refuses the payment: not enough money in the account (retried).
        self.fail("schmidt", 28002, cause="insufficient_funds")

    def day_14(self) -> None:
        # Jansen's payment fails after GoCardless had confirmed it (a late failure).
        self.scenario("van-dijk", 27003, "payment_late_failure")

    def day_15(self) -> None:
        # Müller disputes the debit with their bank: a chargeback.
        self.scenario("schmidt", 28001, "payment_charged_back")

    def day_10(self) -> None:
        # Schmidt refunds Fischer 30.00 in GoCardless' dashboard.
        company = self.by_slug["schmidt"]
        payment = self.payment_of(company, 28003)
        self.world.gocardless_refund(company, payment_id=payment["id"], amount=3000,
                                     key="chaos-refund-fischer")

    def day_16(self) -> None:
        # Harbour's bank returns GoCardless' first payout (a closed account): it bounces.
        company = self.by_slug["harbour"]
        payouts = [p for p in company.gc_sim.resource("payouts") if p["status"] == "paid"]
        if not payouts:
            raise StoryError("Harbour has no paid payout to bounce on day 16")
        company.gc_sim.run_scenario("payout_bounced", sorted(payouts, key=_payout_key)[0]["id"])

    def day_17(self) -> None:
        # Schmidt's administrator connects Exact again (a new consent: a new token chain;
        # Exact makes the old one obsolete).
        self.world.exact_connect(self.by_slug["schmidt"], again=True)

    # --- what the outside world does -------------------------------------------------------

    def issue_invoices(self, company: Company, day: int) -> None:
        """Invoices issued since the last day of the story (before the start: at set-up)."""
        for customer in company.customers:
            for invoice in customer.invoices:
                if 0 <= invoice.issued_day <= day and invoice.number not in self.issued:
                    self.world.exact_invoice_seed(company, customer, invoice)
                    self.issued.add(invoice.number)

    def payment_of(self, company: Company, number: int) -> dict:
        """The (first) payment ml-connector created for invoice ``number``."""
        wanted = [p for p in company.gc_sim.resource("payments")
                  if (p.get("metadata") or {}).get("exact_invoice") == str(number)]
        if not wanted:
            raise StoryError(f"{company.slug}: no payment for invoice {number} at GoCardless")
        return sorted(wanted, key=lambda p: p["created_at"])[0]

    def scenario(self, slug: str, number: int, name: str) -> None:
        company = self.by_slug[slug]
        payment = self.payment_of(company, number)
        company.gc_sim.run_scenario(name, payment["id"])
        self.notes.append(f"{slug}: {name} on invoice {number}'s payment")

    def fail(self, slug: str, number: int, *, cause: str) -> None:
        company = self.by_slug[slug]
        payment = self.payment_of(company, number)
        company.gc_sim.fail_payment(payment["id"], cause)
        self.notes.append(f"{slug}: invoice {number}'s payment failed ({cause})")


def _payout_key(payout: dict) -> tuple:
    return (payout.get("arrival_date") or "", payout["amount"], payout["created_at"])


def start_day(day: int) -> datetime:
    return START + timedelta(days=day)


def story_dates(day: int) -> tuple[date, date]:
    return START.date(), (START + timedelta(days=day)).date()


def consent_code(exact_url: str, redirect_uri: str, state: str) -> str:
    """The browser's part of Exact's consent (the simulator consents by itself)."""
    browser = requests.Session()
    browser.trust_env = False
    answer = browser.get(f"{exact_url}/api/oauth2/auth",
                         params={"client_id": "sim-client-id", "redirect_uri": redirect_uri,
                                 "response_type": "code", "state": state},
                         allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(answer.headers.get("Location", "")).query).get("code", [""])[0]
    if not code:
        raise StoryError(f"Exact's consent page gave no code ({answer.status_code})")
    return code


def money(value: str) -> Decimal:
    return Decimal(value)
