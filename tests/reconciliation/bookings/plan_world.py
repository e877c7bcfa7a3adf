"""Helpers for the plan-payment tests: a customer of both simulators linked in the product
(Exact account and GoCardless customer and mandate mirrored, the customer link matched), and
GoCardless subscriptions / instalment schedules set up by the merchant (as in their dashboard).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from exact.models import ExactAccount
from exact.sync import exact_sync
from gocardless.mirrors import mirror_upsert
from reconciliation.customers.models import CustomerLink, LinkState


def linked(world, tenant, ex_connection, name: str) -> dict:
    """``world.customer`` whose Exact account and GoCardless customer are linked."""
    customer = world.customer(name)
    exact_sync(connection=ex_connection, trigger="test")
    mandate_data = world.gc_sim.resource("mandates", customer["mandate"])
    customer_id = mandate_data["links"]["customer"]
    gc_customer, _ = mirror_upsert(
        tenant=tenant,
        resource_type="customers",
        data=world.gc_sim.resource("customers", customer_id),
    )
    mandate, _ = mirror_upsert(tenant=tenant, resource_type="mandates", data=mandate_data)
    account = ExactAccount.objects.get(tenant=tenant, exact_id=customer["account"])
    customer["link"] = CustomerLink.objects.create(
        tenant=tenant,
        exact_account=account,
        exact_account_guid=account.exact_id,
        exact_code=account.code,
        exact_name=account.name,
        gocardless_customer=gc_customer,
        mandate=mandate,
        state=LinkState.MATCHED,
        matched_by="email",
    )
    customer["customer"] = customer_id
    return customer


def subscription(world, customer: dict, amount_minor: int, *, count: int = 3, **params) -> dict:
    """A monthly subscription the merchant made in their dashboard (none of our metadata)."""
    body = {
        "amount": amount_minor,
        "currency": "EUR",
        "interval_unit": "monthly",
        "count": count,
        "name": "Monthly service",
        "links": {"mandate": customer["mandate"]},
        **params,
    }
    return world.gc_sim.create_subscription(body)


def charge_dates(world, plan: dict) -> list[date]:
    """The plan's charge dates: of the payments it created already (the first one at once
    when its start date is the mandate's next possible charge date), then the upcoming."""
    made = [
        p["charge_date"]
        for p in world.gc_sim.resource("payments")
        if plan["id"] in (p["links"].get("subscription"), p["links"].get("instalment_schedule"))
    ]
    upcoming = [u["charge_date"] for u in plan["upcoming_payments"]]
    return [date.fromisoformat(d) for d in sorted(made) + upcoming]


def invoice_due(world, customer: dict, amount: str, due: date) -> dict:
    from tests.plugins.exact_sim import DIVISION

    return world.ex_sim.seed_invoice(
        DIVISION, account=customer["account"], amount=amount, currency="EUR", due_date=due
    )


def plan_payments(world) -> list[dict]:
    return [
        p
        for p in world.gc_sim.resource("payments")
        if p["links"].get("subscription") or p["links"].get("instalment_schedule")
    ]


def gl_total(world, code: str) -> Decimal:
    return sum(
        (
            Decimal(line["AmountFC"])
            for e in world.ledger()
            for line in e["Lines"]
            if line["GLAccountCode"] == code
        ),
        Decimal("0.00"),
    )
