"""Builders for the selection / preview / approval / charge-date / no-float tests.

Plain helpers (not fixtures) so each test states its whole world: a tenant with a policy,
customers (Exact account + customer link + mandate mirror) and their open receivables.

``TODAY`` is the GoCardless simulator's frozen date (tests/plugins/gocardless_sim.SIM_START,
a Monday), so the charge dates we compute and the ones the simulator accepts agree.
``freeze_today`` pins the runs' notion of "today" to it (tests never depend on wall time).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from exact.models import ReceivableKind
from gocardless.models import Mandate
from reconciliation.customers.models import LinkState
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.gocardless.factories import CustomerFactory, MandateFactory
from tests.reconciliation.factories import CustomerLinkFactory

TODAY = dt.date(2026, 3, 2)  # Monday; the simulator's frozen clock date
D = dt.date


def freeze_today(monkeypatch, day: dt.date = TODAY) -> None:
    """Runs evaluate as of ``day`` (in the tenant's zone, whatever the wall clock says)."""
    for module in ("previews", "live"):
        monkeypatch.setattr(
            f"reconciliation.collection.{module}.tenant_today", lambda tenant, now=None: day
        )


def policy(tenant, **fields):
    """Set the tenant's collection policy (sane test defaults) and save it."""
    defaults = dict(
        collection_mode="review",
        lead_days=5,
        minimum_amount=Decimal("1.00"),
        currencies=["EUR", "GBP"],
        max_payments_per_run=1000,
        charge_date_policy="earliest",
        over_maximum_policy="skip",
        retry_count=1,
        retry_spacing_days=7,
        use_success_plus=False,
    )
    defaults.update(fields)
    for name, value in defaults.items():
        setattr(tenant, name, value)
    tenant.save()
    return tenant


def customer(
    tenant,
    *,
    scheme: str = "sepa_core",
    status: str = "active",
    link_state: str = LinkState.MATCHED,
    mandate: bool = True,
    mandate_id: str | None = None,
    next_possible: dt.date | None = None,
    blocked: bool = False,
    stop_reason: str = "",
    linked: bool = True,
    name: str | None = None,
):
    """(Exact account, customer link or None, mandate mirror or None)."""
    account_fields = {"tenant": tenant, "blocked": blocked}
    if name:
        account_fields["name"] = name
    account = ExactAccountFactory(**account_fields)
    if not linked:
        return account, None, None
    mirror = None
    if mandate:
        fields = {"tenant": tenant, "scheme": scheme, "status": status}
        if mandate_id:
            fields["gocardless_id"] = mandate_id
        mirror = MandateFactory(**fields, next_possible_charge_date=next_possible)
    link = CustomerLinkFactory(
        tenant=tenant,
        exact_account=account,
        state=link_state,
        mandate=mirror,
        stop_reason=stop_reason,
    )
    return account, link, mirror


def invoice(
    tenant,
    account,
    outstanding: str | Decimal,
    *,
    due: dt.date | None = TODAY,
    amount: str | Decimal | None = None,
    currency: str = "EUR",
    number: int | None = None,
    credit_note: bool = False,
):
    """An open Exact receivable of ``account`` (a credit note's outstanding is negative)."""
    outstanding = Decimal(str(outstanding))
    fields = dict(
        tenant=tenant,
        account=account,
        account_exact_id=account.exact_id,
        outstanding=outstanding,
        amount=Decimal(str(amount)) if amount is not None else outstanding,
        currency=currency,
        due_date=due,
        kind=ReceivableKind.CREDIT_NOTE if credit_note else ReceivableKind.INVOICE,
    )
    if number is not None:
        fields["invoice_number"] = number
    return ExactReceivableFactory(**fields)


def gocardless_customer(tenant, link, mandate):
    """Give ``link`` its GoCardless customer, and ``mandate`` that customer (what a plan's
    mandate leads back to the Exact account through). Returns the customer mirror."""
    mirror = CustomerFactory(tenant=tenant)
    link.gocardless_customer = mirror
    link.save(update_fields=["gocardless_customer"])
    Mandate.objects.filter(pk=mandate.pk).update(customer_id=mirror.gocardless_id)
    mandate.customer_id = mirror.gocardless_id
    return mirror


def sim_customer(sim, tenant, *, scheme: str = "sepa_core", status: str = "active", **kw):
    """A customer whose mandate exists in the GoCardless simulator and is mirrored here.

    The mirror copies the simulator's scheme, status and next_possible_charge_date, as the
    mandate sync would.
    """
    created = sim.seed(mandates=[{"scheme": scheme, "status": status}])
    remote = sim.resource("mandates", created["mandates"][0])
    account, link, mirror = customer(
        tenant,
        scheme=scheme,
        status=remote["status"],
        mandate_id=remote["id"],
        next_possible=(
            D.fromisoformat(remote["next_possible_charge_date"])
            if remote.get("next_possible_charge_date")
            else None
        ),
        **kw,
    )
    return account, link, mirror


def mirror_mandate_status(mirror: Mandate, status: str) -> None:
    Mandate.objects.filter(pk=mirror.pk).update(status=status)
    mirror.status = status


def sim_payments(sim) -> list[dict]:
    return list(sim.resource("payments"))


def gc_calls(sim) -> dict:
    """Every API call the simulator answered except the control plane (method path → n)."""
    return {k: sum(v.values()) for k, v in sim.call_counts().items()}


def guid() -> uuid.UUID:
    return uuid.uuid4()
