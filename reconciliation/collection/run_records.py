"""What every kind of run shares: the refusal it raises, who it acts as, and how it records
the plans it evaluated (counts, totals, one ``CollectionItem`` line per plan)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from core.audit import Actor
from reconciliation.collection.models import CollectionItem, CollectionRun, Decision, RunTrigger
from reconciliation.collection.selection import Plan


class RunRefused(Exception):
    """A request for a run that may not happen now (shown to the user as a message)."""


def run_actor(user, trigger: str) -> Actor:
    if user is not None:
        return Actor.for_user(user)
    if trigger == RunTrigger.WEBHOOK:
        return Actor.webhook("exact")
    return Actor.schedule("collection.run")


def _totals(plans: list[Plan]) -> dict[str, str]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for p in plans:
        if p.decision == Decision.COLLECT:
            sums[p.currency] += p.amount
    return {currency: str(total) for currency, total in sorted(sums.items())}


def run_items(run: CollectionRun, plans: list[Plan]) -> list[CollectionItem]:
    return [
        CollectionItem(
            run=run,
            tenant_id=run.tenant_id,
            receivable_exact_id=p.receivable_exact_id,
            invoice_number=p.invoice_number,
            account_exact_id=p.account_exact_id,
            account_label=p.account_label,
            due_date=p.due_date,
            currency=p.currency,
            outstanding=p.outstanding,
            amount=p.amount,
            charge_date=p.charge_date,
            mandate_gocardless_id=p.mandate_gocardless_id,
            scheme=p.scheme,
            parts=p.parts,
            decision=p.decision,
            reason=p.reason,
            detail=p.detail,
        )
        for p in plans
    ]


def run_count(run: CollectionRun, plans: list[Plan]) -> None:
    run.evaluated = len(plans)
    run.to_collect = sum(1 for p in plans if p.decision == Decision.COLLECT)
    run.skipped = run.evaluated - run.to_collect
    run.totals = _totals(plans)
