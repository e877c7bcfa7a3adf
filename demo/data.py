"""The demo company's customer base: twelve customers, thirty-one open items (one a credit
note, one partly paid), some overdue, some not yet due, in EUR and GBP; one of them also pays
a monthly subscription GoCardless collects by itself, and its invoice for this month's
subscription is among the open items (the subscription's payment pays it, the collection run
leaves it alone). Each customer has a bank
account in Exact (crm/BankAccounts: Exact's mandate records need one); payers who complete
GoCardless' hosted page give the same bank details there.

Due dates are relative to the day the demo runs, so every run tells the same story:
overdue invoices and those due within the lead days are collected, later ones wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

DIVISION = 612345
DIVISION_NAME = "Demo Trading BV"
LEAD_DAYS = 7


class Onboarding:
    """How the customer comes to have a mandate in the demo."""

    EXISTING = "existing"  # already a GoCardless customer with an active mandate (matched)
    COMPLETES = "completes"  # invited; completes the hosted page
    IGNORES = "ignores"  # invited; has not reacted yet
    NO_EMAIL = "no_email"  # cannot be invited: no e-mail address in Exact


@dataclass(frozen=True)
class Item:
    amount: str
    due_in_days: int  # negative: overdue
    credit_note: bool = False
    open: str | None = None  # partly paid: what is still open
    description: str = ""
    by_subscription: bool = False  # the customer's subscription at GoCardless pays it


@dataclass(frozen=True)
class DemoSubscription:
    """A subscription the customer already pays at GoCardless, set up in GoCardless'
    dashboard: GoCardless creates its payments itself, without our metadata."""

    name: str
    amount: str  # each payment, in currency units
    interval_unit: str = "monthly"


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    email: str
    city: str
    country: str
    language: str
    onboarding: str
    currency: str = "EUR"
    items: tuple[Item, ...] = field(default_factory=tuple)
    iban: str = ""  # the customer's bank account in Exact (crm/BankAccounts)
    bic: str = ""
    subscription: DemoSubscription | None = None  # only for an EXISTING customer

    def gocardless_bank_details(self) -> dict[str, str]:
        """The same bank account as the payer enters it on GoCardless' hosted page: an IBAN
        for SEPA, sort code and account number (from the GB IBAN) for Bacs."""
        if self.currency == "GBP":
            return {"branch_code": self.iban[8:14], "account_number": self.iban[14:22]}
        return {"iban": self.iban}


CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        "Bakkerij Van Dijk B.V.",
        "crediteuren@vandijk-bakkerij.example",
        "Utrecht",
        "NL",
        "NL",
        Onboarding.EXISTING,
        items=(
            Item("1250.00", -12),
            Item("486.40", 3),
            Item("2100.00", 21),
            # This month's subscription, invoiced in Exact and due a few days after the
            # subscription's first charge date: within plan matching's 13 days either way
            # (reconciliation/bookings/plan_matching.py MATCH_WINDOW), and the only open
            # invoice of its amount, so its payment is matched to it automatically.
            Item("95.00", 5, description="Bread delivery subscription", by_subscription=True),
        ),
        iban="NL17RABO0300512345",
        bic="RABONL2U",
        # Also uses GoCardless to collect subscription fees: its first payment is collected
        # and paid out during the story, the next ones are ahead.
        subscription=DemoSubscription("Bread delivery subscription", "95.00"),
    ),
    DemoCustomer(
        "Hoekstra Installatietechniek B.V.",
        "administratie@hoekstra-installatie.example",
        "Groningen",
        "NL",
        "NL",
        Onboarding.COMPLETES,
        items=(Item("3480.00", -5, open="1480.00"), Item("915.75", 6), Item("1320.00", 35)),
        iban="NL03INGB0004567890",
        bic="INGBNL2A",
    ),
    DemoCustomer(
        "De Groene Kas V.O.F.",
        "boekhouding@degroenekas.example",
        "Naaldwijk",
        "NL",
        "NL",
        Onboarding.COMPLETES,
        items=(
            Item("1210.00", -2),
            Item("210.00", -2, credit_note=True, description="Credit: damaged delivery"),
            Item("660.00", 25),
        ),
        iban="NL53ABNA0517643210",
        bic="ABNANL2A",
    ),
    DemoCustomer(
        "Brouwerij 't Anker",
        "facturen@hetanker.example",
        "Mechelen",
        "BE",
        "NL",
        Onboarding.COMPLETES,
        items=(Item("742.50", -20), Item("1089.00", 4), Item("560.00", 18)),
        iban="BE73735012345660",
        bic="KREDBEBB",
    ),
    DemoCustomer(
        "Schmidt Logistik GmbH",
        "buchhaltung@schmidt-logistik.example",
        "Düsseldorf",
        "DE",
        "DE",
        Onboarding.COMPLETES,
        items=(Item("2450.00", -8), Item("1320.00", 2), Item("480.00", 28)),
        iban="DE68370400440532099999",
        bic="COBADEFFXXX",
    ),
    DemoCustomer(
        "Jansen & Co Accountants",
        "finance@jansen-co.example",
        "Amersfoort",
        "NL",
        "EN",
        Onboarding.COMPLETES,
        items=(Item("395.00", -1), Item("1815.00", 5)),
        iban="NL97RABO0156789012",
        bic="RABONL2U",
    ),
    DemoCustomer(
        "Meijer Bouw B.V.",
        "inkoop@meijerbouw.example",
        "Zwolle",
        "NL",
        "NL",
        Onboarding.IGNORES,
        items=(Item("2904.00", -15), Item("1100.00", 10)),
        iban="NL18INGB0006543219",
        bic="INGBNL2A",
    ),
    DemoCustomer(
        "Café De Zwaan",
        "",
        "Haarlem",
        "NL",
        "NL",
        Onboarding.NO_EMAIL,
        items=(Item("187.50", -30), Item("92.00", 3)),
        iban="NL39ABNA0412378965",
        bic="ABNANL2A",
    ),
    DemoCustomer(
        "Visser Transport B.V.",
        "ap@vissertransport.example",
        "Rotterdam",
        "NL",
        "NL",
        Onboarding.COMPLETES,
        items=(Item("4235.00", -3), Item("1452.00", 7), Item("230.00", 40)),
        iban="NL34RABO0389127456",
        bic="RABONL2U",
    ),
    DemoCustomer(
        "Thornbury Garden Supplies Ltd",
        "accounts@thornbury-garden.example",
        "Bristol",
        "GB",
        "EN",
        Onboarding.EXISTING,
        currency="GBP",
        items=(Item("1860.00", -6), Item("640.00", 4)),
        iban="GB82BARC20000673581924",
        bic="BARCGB22",
    ),
    DemoCustomer(
        "Ashworth & Sons Ltd",
        "payables@ashworth-sons.example",
        "Leeds",
        "GB",
        "EN",
        Onboarding.COMPLETES,
        currency="GBP",
        items=(Item("2275.50", -9), Item("415.00", 12)),
        iban="GB47LOYD30963847261530",
        bic="LOYDGB21",
    ),
    DemoCustomer(
        "Kestrel Print Ltd",
        "ledger@kestrelprint.example",
        "Manchester",
        "GB",
        "EN",
        Onboarding.COMPLETES,
        currency="GBP",
        items=(Item("980.00", 1), Item("3150.00", -4)),
        iban="GB57NWBK60161392837465",
        bic="NWBKGB2L",
    ),
)


@dataclass(frozen=True)
class DemoLinkFailure:
    """A payment of the collection run that the payer's bank refuses with a cause the
    default failure table does not retry (docs/failures.md: the account is closed, collecting
    again only costs a failure fee), so the customer is e-mailed a payment link instead; the
    customer pays it on GoCardless' page the next day."""

    customer: str
    amount: str  # the invoice whose payment fails
    cause: str  # the ``details.cause`` of the payment's failed event


# Schmidt Logistik is in Germany and pays in euros: GoCardless offers it instant bank pay
# (docs/failures.md), so the link's payment is confirmed the moment it is made.
LINK_FAILURE = DemoLinkFailure("Schmidt Logistik GmbH", "2450.00", "bank_account_closed")

# The company's scheduled collection run: the 1st and the 15th at 06:00 (its time zone),
# moved to the next working day (docs/schedules.md), as a finance team collecting twice a
# month picks it.
SCHEDULE_MONTH_DAYS = (1, 15)
SCHEDULE_HOUR = 6


def open_total(currency: str) -> Decimal:
    """What the customer base owes in ``currency`` (credit notes and part payments netted)."""
    total = Decimal(0)
    for customer in CUSTOMERS:
        if customer.currency != currency:
            continue
        for item in customer.items:
            value = Decimal(item.open or item.amount)
            total += -value if item.credit_note else value
    return total
