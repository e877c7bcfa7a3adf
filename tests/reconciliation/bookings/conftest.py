"""Fixtures for bookings: tenant A connected to both simulators, booking settings validated
against the Exact simulator, and helpers that create payments the way the collection engine
does (metadata mlc_attempt / exact_invoice / exact_account)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gocardless.client import GoCardlessClient
from reconciliation.bookings.config import booking_settings_validate
from reconciliation.bookings.models import BookingSettings
from tests.plugins.exact_sim import DIVISION
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

# Re-exported fixtures of tests/reconciliation/conftest.py are picked up by pytest itself.


@pytest.fixture
def ex_sim_fast(ex_sim):
    # Exact's 60 calls a minute would make the limiter wait for real; the limiter itself is
    # tested in tests/exact. Here the budget is generous.
    ex_sim.settings(minutely_limit=100_000, daily_limit=1_000_000)
    return ex_sim


@pytest.fixture
def booking_settings(tenant_a, ex_sim_fast, ex_connection):
    settings = BookingSettings(
        tenant=tenant_a,
        clearing_journal_code="21",
        bank_journal_code="20",
        receivables_gl_code="1300",
        fees_gl_code="4600",
        fees_vat_code="VN",
        transfer_gl_code="1190",
        unmatched_gl_code="2390",
    )
    booking_settings_validate(settings=settings)
    settings.save()
    return settings


@pytest.fixture
def gc_api(gc_sim, gc_connection):
    return GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=gc_sim.url)


class World:
    """Customers with an Exact account, open invoices and an active SEPA mandate."""

    def __init__(self, ex_sim, gc_sim, gc_api):
        self.ex_sim, self.gc_sim, self.gc_api = ex_sim, gc_sim, gc_api
        self.keys = 0

    def customer(self, name: str) -> dict:
        account = self.ex_sim.seed_account(DIVISION, name=name)
        seeded = self.gc_sim.seed(
            mandates=[{"scheme": "sepa_core", "status": "active", "company_name": name}]
        )
        return {"account": account["ID"], "mandate": seeded["mandates"][0]}

    def invoice(self, customer: dict, amount: str) -> dict:
        return self.ex_sim.seed_invoice(
            DIVISION, account=customer["account"], amount=amount, currency="EUR"
        )

    def collect(
        self, customer: dict, invoice: dict, amount_minor: int, *, attempt: int = 1, part: str = ""
    ) -> dict:
        """Create a payment the way the collection engine does."""
        attempt_key = f"{invoice['TermID']}/{attempt}{part}"
        return self.gc_api.payment_create(
            params={
                "amount": amount_minor,
                "currency": "EUR",
                "links": {"mandate": customer["mandate"]},
                "metadata": {
                    "mlc_attempt": attempt_key,
                    "exact_invoice": str(invoice["InvoiceNumber"]),
                    "exact_account": customer["account"],
                },
            },
            idempotency_key=f"test-{attempt_key}",
        )

    def foreign_payment(self, customer: dict, amount_minor: int) -> dict:
        self.keys += 1
        return self.gc_api.payment_create(
            params={
                "amount": amount_minor,
                "currency": "EUR",
                "links": {"mandate": customer["mandate"]},
            },
            idempotency_key=f"foreign-{self.keys}",
        )

    def open_amount(self, invoice: dict) -> Decimal:
        found = self.ex_sim.invoice(DIVISION, invoice_id=invoice["InvoiceID"])
        return Decimal(str(found["Open"]))

    def ledger(self) -> list[dict]:
        return self.ex_sim.ledger(DIVISION)

    def journal_total(self, code: str) -> Decimal:
        return sum(
            (
                Decimal(line["AmountFC"])
                for e in self.ledger()
                if e["JournalCode"] == code
                for line in e["Lines"]
            ),
            Decimal("0.00"),
        )


@pytest.fixture
def world(ex_sim_fast, gc_sim, gc_api):
    return World(ex_sim_fast, gc_sim, gc_api)
