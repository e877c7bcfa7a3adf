"""Shared fixtures for collection tests: a tenant ready to collect from the GoCardless simulator.

``collection_world_factory(customers=N, ...)`` builds, for ``tenant_a``:

- at the simulator (``gc_sim``): N customers, each with a bank account and an *active*
  mandate (``sim.seed(bulk=...)``);
- in our database, the mirrors the selection reads: the GoCardless customer and mandate
  mirrors (ids, status, scheme and ``next_possible_charge_date`` as the simulator renders
  them), one Exact account per customer, a *matched* ``CustomerLink`` tying them together,
  and ``invoices_per_customer`` open invoices each (``ExactReceivable``), due within the lead
  window, each with its own amount;
- the tenant's policy: *auto* mode, the scheme's currency, lead days, no run limit in the way;
- the tenant's ``GoCardlessConnection`` pointing at the simulator (``gc_connection``).

The simulator's frozen clock is moved to the real "now" first, so the simulator's today and
the tenant's today agree: the charge dates the engine computes are a few working days ahead
of the simulator's clock, and ``gc_sim.advance(days=...)`` moves the payments through their
lifecycle (``gc_deliver()`` then brings the events through our webhook view). Its rate limit
is raised, because a frozen clock never starts a new rate-limit minute (1,000 calls would
otherwise be all a test ever gets); pass ``rate_limit=`` to test pacing.

``collection_world`` is the small default (10 customers, one invoice each). The returned
``CollectionWorld`` knows the expected amount of every invoice and checks the simulator's
payments against it (``assert_one_payment_per_invoice``).

Rows are bulk-created (a 300-invoice world takes well under a second). Works on SQLite and
PostgreSQL, in ordinary and ``transaction=True`` tests.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.utils import timezone

from core.calendars import tenant_today
from core.money import to_minor_units
from exact.models import ConnectionStatus as ExactStatus
from exact.models import (
    ExactAccount,
    ExactConnection,
    ExactReceivable,
    ReceivableKind,
    SyncEntity,
    SyncMode,
    SyncRun,
)
from gocardless.models import Customer, Mandate
from reconciliation.collection.models import CollectionAttempt
from reconciliation.collection.schemes import scheme_rule
from reconciliation.customers.models import CustomerLink, LinkState, MatchedBy
from tenants.models import CollectionMode

INVOICE_BASE = 26_000_000


def default_amount(index: int) -> Decimal:
    """Distinct, awkward amounts (cents that do not survive float arithmetic)."""
    return Decimal(10 + index % 400) + Decimal(index % 97 + 1) / 100


@dataclass
class CollectionWorld:
    tenant: object
    sim: object
    connection: object
    scheme: str
    currency: str
    accounts: list = field(default_factory=list)
    mandates: list = field(default_factory=list)  # Mandate mirrors, one per customer
    receivables: list = field(default_factory=list)

    @property
    def expected_minor(self) -> dict[str, int]:
        """receivable guid → the amount (minor units) its one payment must have."""
        return {
            str(r.exact_id): to_minor_units(r.outstanding, r.currency) for r in self.receivables
        }

    def sim_payments(self) -> list[dict]:
        """Every payment at the simulator (as the API renders them), oldest first."""
        return self.sim.resource("payments")

    def payments_by_receivable(self) -> dict[str, list[dict]]:
        """receivable guid → the simulator's payments whose ``mlc_attempt`` names it."""
        found: dict[str, list[dict]] = {}
        for payment in self.sim_payments():
            key = (payment.get("metadata") or {}).get("mlc_attempt", "")
            found.setdefault(key.split("/", 1)[0], []).append(payment)
        return found

    def assert_one_payment_per_invoice(self) -> None:
        """Exactly one payment per invoice at the simulator, for the right amount and mandate,
        and every attempt in our database names its payment."""
        payments = self.sim_payments()
        keys = Counter((p.get("metadata") or {}).get("mlc_attempt") for p in payments)
        duplicates = {k: n for k, n in keys.items() if n > 1}
        assert not duplicates, f"payments created twice: {duplicates}"
        expected = self.expected_minor
        by_receivable = self.payments_by_receivable()
        assert set(by_receivable) == set(expected), (
            f"{len(set(expected) - set(by_receivable))} invoices without a payment, "
            f"{len(set(by_receivable) - set(expected))} payments for unknown invoices"
        )
        mandate_of = {str(r.exact_id): m.gocardless_id for r, m in self._receivable_mandates()}
        wrong = []
        for receivable, found in by_receivable.items():
            assert len(found) == 1, f"{receivable}: {len(found)} payments"
            payment = found[0]
            if (
                payment["amount"] != expected[receivable]
                or payment["currency"] != self.currency
                or payment["links"]["mandate"] != mandate_of[receivable]
            ):
                wrong.append((receivable, payment["amount"], expected[receivable]))
        assert not wrong, f"payments with the wrong amount/currency/mandate: {wrong[:5]}"
        attempts = CollectionAttempt.objects.filter(tenant=self.tenant)
        assert attempts.count() == len(payments)
        missing = list(attempts.filter(payment_gocardless_id="").values_list("key", "state"))
        assert not missing, f"attempts without a payment id: {missing[:5]}"
        ours = set(attempts.values_list("payment_gocardless_id", flat=True))
        assert ours == {p["id"] for p in payments}

    def _receivable_mandates(self):
        accounts = [a.exact_id for a in self.accounts]
        mandate_by_account = dict(zip(accounts, self.mandates, strict=True))
        return [(r, mandate_by_account[r.account_exact_id]) for r in self.receivables]


def collection_world_build(
    *,
    tenant,
    sim,
    connection,
    customers: int = 10,
    invoices_per_customer: int = 1,
    scheme: str = "sepa_core",
    amount: Callable[[int], Decimal] = default_amount,
    rate_limit: int | None = 1_000_000,
    **policy,
) -> CollectionWorld:
    """Build the world described in the module docstring; ``policy`` overrides tenant fields."""
    rule = scheme_rule(scheme)
    assert rule is not None, f"no scheme rule for {scheme}"
    if hasattr(sim.clock, "set"):
        sim.clock.set(timezone.now())
    if rate_limit is not None:
        sim.set_rate_limit(rate_limit)
    total = customers * invoices_per_customer
    fields = {
        "collection_mode": CollectionMode.AUTO,
        "currencies": [rule.currency],
        "lead_days": 5,
        "minimum_amount": Decimal("1.00"),
        "max_payments_per_run": max(total, 1000),
        **policy,
    }
    for name, value in fields.items():
        setattr(tenant, name, value)
    tenant.save()

    created = sim.seed(bulk={"count": customers, "scheme": scheme, "status": "active"})
    rendered = [sim.resource("mandates", m) for m in created["mandates"]]
    now = timezone.now()
    gc_customers = Customer.objects.bulk_create(
        [
            Customer(
                tenant=tenant,
                gocardless_id=m["links"]["customer"],
                email=f"bulk-{n + 1}@example.test",
                fetched_at=now,
            )
            for n, m in enumerate(rendered)
        ]
    )
    mandates = Mandate.objects.bulk_create(
        [
            Mandate(
                tenant=tenant,
                gocardless_id=m["id"],
                status=m["status"],
                scheme=m["scheme"],
                reference=m.get("reference") or "",
                customer_id=m["links"]["customer"],
                customer_bank_account_id=m["links"]["customer_bank_account"],
                next_possible_charge_date=(
                    dt.date.fromisoformat(m["next_possible_charge_date"])
                    if m.get("next_possible_charge_date")
                    else None
                ),
                raw=m,
                fetched_at=now,
            )
            for m in rendered
        ]
    )
    accounts = ExactAccount.objects.bulk_create(
        [
            ExactAccount(
                tenant=tenant,
                exact_id=uuid.uuid4(),
                code=str(10_000 + n),
                name=f"Bulk Customer {n + 1} B.V.",
                email=f"bulk-{n + 1}@example.test",
                country="NL",
                status="C",
                currency=rule.currency,
                synced_at=now,
            )
            for n in range(customers)
        ]
    )
    CustomerLink.objects.bulk_create(
        [
            CustomerLink(
                tenant=tenant,
                exact_account=account,
                exact_account_guid=account.exact_id,
                exact_code=account.code,
                exact_name=account.name,
                gocardless_customer=customer,
                mandate=mandate,
                state=LinkState.MATCHED,
                matched_by=MatchedBy.METADATA,
                confirmed_at=now,
            )
            for account, customer, mandate in zip(accounts, gc_customers, mandates, strict=True)
        ]
    )
    today = tenant_today(tenant)
    window = max(int(fields["lead_days"]), 0)
    receivables = []
    for n in range(total):
        account = accounts[n % customers]
        value = amount(n)
        receivables.append(
            ExactReceivable(
                tenant=tenant,
                exact_id=uuid.uuid4(),
                account=account,
                account_exact_id=account.exact_id,
                invoice_number=INVOICE_BASE + n,
                invoice_date=today - dt.timedelta(days=30),
                due_date=today + dt.timedelta(days=n % (window + 1)),
                currency=rule.currency,
                amount=value,
                outstanding=value,
                kind=ReceivableKind.INVOICE,
                synced_at=now,
            )
        )
    ExactReceivable.objects.bulk_create(receivables, batch_size=500)
    exact_copy_mark_fresh(tenant)
    return CollectionWorld(
        tenant=tenant,
        sim=sim,
        connection=connection,
        scheme=scheme,
        currency=rule.currency,
        accounts=accounts,
        mandates=mandates,
        receivables=receivables,
    )


def exact_copy_mark_fresh(tenant, *, started_at=None) -> None:
    """What a healthy Exact side leaves behind: a connected ExactConnection and a successful
    whole-copy receivables sync (``reconciliation.collection.freshness``). Worlds built here
    pass the real freshness gate, also in the subprocesses of the crash and concurrency
    tests, where the ``_exact_copy_fresh`` patch below does not reach."""
    ExactConnection.objects.get_or_create(
        tenant=tenant,
        defaults={"status": ExactStatus.CONNECTED, "division": 100_001, "region": "nl"},
    )
    started_at = started_at or timezone.now()
    SyncRun.objects.create(
        tenant=tenant,
        entity=SyncEntity.RECEIVABLES,
        mode=SyncMode.INCREMENTAL,
        trigger="test",
        started_at=started_at,
        finished_at=started_at,
    )


@pytest.fixture(autouse=True)
def _exact_copy_fresh(request, monkeypatch):
    """Collection tests are about GoCardless and selection, not about how fresh the copy of
    Exact is: the freshness gate answers "fresh" unless a test is marked
    ``exact_freshness_gate`` (tests/reconciliation/collection/test_freshness.py)."""
    if request.node.get_closest_marker("exact_freshness_gate") is None:
        monkeypatch.setattr(
            "reconciliation.collection.live.exact_copy_problem", lambda **kwargs: None
        )


@pytest.fixture
def collection_world_factory(tenant_a, gc_sim, gc_connection):
    """``build(customers=N, invoices_per_customer=1, scheme="sepa_core", **policy)``."""

    def build(**options) -> CollectionWorld:
        return collection_world_build(
            tenant=tenant_a, sim=gc_sim, connection=gc_connection, **options
        )

    return build


@pytest.fixture
def collection_world(collection_world_factory) -> CollectionWorld:
    """Ten customers with active SEPA mandates, one open EUR invoice each."""
    return collection_world_factory(customers=10)


def tenants_due_for_run(*, now=None):
    """The tenants whose scheduled run is due (``schedules.slots_due_for_run``), for asserts."""
    from reconciliation.collection.schedules import slots_due_for_run

    return [tenant for tenant, _slot in slots_due_for_run(now=now)]
