"""Which open receivables a run collects, for how much and when — and why not the others.

Pure evaluation: reads the mirrors (Exact receivables, customer links with their mandates,
earlier attempts) and returns one ``Plan`` per open invoice. Nothing is written here; the
run services turn plans into items and attempts.

The amount is the invoice's outstanding amount (Exact's ``AmountFC``, so partial payments are
already deducted), capped by what the customer owes in that currency net of credit notes and
of money already on its way (attempts in flight or collected but not yet booked): a credit
note reduces what is collected, oldest invoices first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from core.money import from_minor_units, to_minor_units
from exact.models import ExactReceivable, ReceivableKind
from reconciliation.collection.charge_dates import charge_date_for, earliest_charge_date
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    Decision,
    SkipReason,
)
from reconciliation.collection.schemes import scheme_rule
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.customers.selectors import STOPPED_MANDATE_STATUSES

# Mandate statuses a payment may be created on (issue 6: "active (or pending-submission)";
# GoCardless also accepts ``submitted``).
COLLECTABLE_MANDATE_STATUSES = ("pending_submission", "submitted", "active")
# Attempts whose amount is money on its way: the customer's remaining balance excludes it.
_MONEY_ON_ITS_WAY = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)
_DISPUTE_CAUSES = ("charged_back", "authorisation_disputed", "refund_requested")


@dataclass
class Plan:
    receivable_exact_id: object
    invoice_number: int | None
    account_exact_id: object
    account_label: str
    due_date: dt.date | None
    currency: str
    outstanding: Decimal
    amount: Decimal = Decimal("0")
    charge_date: dt.date | None = None
    # The earliest date GoCardless accepts today (scheme lead, mandate's next possible date):
    # approval checks a previewed charge date against it.
    earliest_charge_date: dt.date | None = None
    mandate_gocardless_id: str = ""
    scheme: str = ""
    parts: int = 1
    attempt_number: int = 1
    decision: str = Decision.SKIP
    reason: str = ""
    detail: str = ""
    part_amounts: list[Decimal] = field(default_factory=list)
    retry_of: bool = False

    def skip(self, reason: str, detail: str = "") -> Plan:
        self.decision, self.reason, self.detail = Decision.SKIP, reason, detail[:300]
        return self


def _attempts_by_receivable(tenant, receivable_ids) -> tuple[dict, list]:
    """(receivable guid → attempts of its highest attempt number, every attempt loaded)."""
    latest: dict = {}
    rows = list(
        CollectionAttempt.objects.filter(
            tenant=tenant, receivable_exact_id__in=receivable_ids
        ).only(
            "receivable_exact_id",
            "attempt_number",
            "parts",
            "state",
            "next_retry_on",
            "failure_cause",
            "amount",
            "account_exact_id",
            "currency",
            "key",
        )
    )
    for attempt in rows:
        current = latest.get(attempt.receivable_exact_id)
        if current is None or attempt.attempt_number > current[0].attempt_number:
            latest[attempt.receivable_exact_id] = [attempt]
        elif attempt.attempt_number == current[0].attempt_number:
            current.append(attempt)
    return latest, rows


def _links_by_account(tenant) -> dict:
    links: dict = {}
    for link in (
        CustomerLink.objects.filter(tenant=tenant)
        .select_related("mandate", "exact_account")
        .order_by("pk")
    ):
        links[link.exact_account_guid] = link  # newest wins, as link_for_account does
    return links


def _split(minor: int, maximum: int) -> list[int]:
    """Equal instalments (the first ones carry the remainder), each within the maximum."""
    parts = -(-minor // maximum)
    base, extra = divmod(minor, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _attempt_block(plan: Plan, attempts: list, today: dt.date) -> bool:
    """Sets the plan's reason when an earlier attempt stands in the way; True if so.

    Only the latest attempt number counts: older ones were retried or superseded.
    """
    states = {a.state for a in attempts}
    number = attempts[0].attempt_number
    plan.attempt_number = number + 1
    if states & {AttemptState.PENDING, AttemptState.SUBMITTED}:
        plan.skip(SkipReason.ALREADY_IN_FLIGHT, f"attempt {number} is with GoCardless")
    elif AttemptState.NEEDS_ATTENTION in states:
        if any(a.failure_cause in _DISPUTE_CAUSES for a in attempts):
            plan.skip(SkipReason.DISPUTED, f"attempt {number} was disputed by the customer")
        else:
            plan.skip(SkipReason.NEEDS_ATTENTION, f"attempt {number} needs attention")
    elif states & {AttemptState.CANCELLED, AttemptState.RESOLVED}:
        plan.skip(SkipReason.HANDLED_BY_PERSON, f"attempt {number} was cancelled or resolved")
    elif AttemptState.RETRY_SCHEDULED in states:
        due = min((a.next_retry_on for a in attempts if a.next_retry_on), default=None)
        if due is not None and due > today:
            plan.skip(SkipReason.RETRY_NOT_DUE, f"attempt {number + 1} on {due.isoformat()}")
        else:
            plan.retry_of = True
    elif states & {AttemptState.CONFIRMED, AttemptState.PAID_OUT}:
        # Collected; the receipt booking closes the invoice. Anything Exact still shows
        # open after that is for a person (a second automatic charge is never safe here).
        plan.skip(SkipReason.ALREADY_IN_FLIGHT, f"attempt {number} collected")
    return plan.decision == Decision.SKIP and bool(plan.reason)


def selection_evaluate(
    *,
    tenant,
    today: dt.date,
    only_receivables: list | None = None,
    previewed: set | None = None,
) -> list[Plan]:
    """One plan per open invoice of the tenant (or of ``only_receivables``), in due order.

    ``previewed`` (approval of a preview): the receivables the preview would collect. Any
    other invoice is still evaluated and shown, but as *not in the preview*, before it takes
    any of the customer's balance or of the run's payments from an approved line.
    """
    receivables = list(
        ExactReceivable.objects.filter(tenant=tenant, is_fully_paid=False)
        .select_related("account")
        .only(
            "exact_id",
            "invoice_number",
            "account_exact_id",
            "account__code",
            "account__name",
            "due_date",
            "currency",
            "outstanding",
            "kind",
        )
    )
    # What each customer owes per currency, credit notes included (they are negative).
    balance: dict = defaultdict(Decimal)
    for r in receivables:
        balance[(r.account_exact_id, r.currency)] += r.outstanding
    invoices = [r for r in receivables if r.kind == ReceivableKind.INVOICE and r.outstanding > 0]
    wanted = {str(x) for x in only_receivables} if only_receivables else None
    invoices.sort(key=lambda r: (r.due_date or today, r.invoice_number or 0, str(r.exact_id)))

    attempts, every_attempt = _attempts_by_receivable(tenant, [r.exact_id for r in invoices])
    # Money already on its way (sent, or collected but not yet booked so the invoice is
    # still open) lowers what is left to collect from the same customer.
    # The same money is also not left on its own invoice (an instalment collected while
    # another one is retried): a retry never reaches into the customer's other invoices.
    on_its_way: dict = defaultdict(Decimal)
    for a in every_attempt:
        if a.state in _MONEY_ON_ITS_WAY:
            balance[(a.account_exact_id, a.currency)] -= a.amount
            on_its_way[a.receivable_exact_id] += a.amount
    # A payment still with GoCardless for an invoice Exact has closed since (credited or paid
    # by other means once it was too late to cancel): nothing in Exact reflects that money
    # yet, and the customer will pay it, so it too lowers what is left to collect.
    open_ids = {r.exact_id for r in invoices}
    for a in CollectionAttempt.objects.filter(
        tenant=tenant, state__in=(AttemptState.PENDING, AttemptState.SUBMITTED)
    ).only("receivable_exact_id", "amount", "account_exact_id", "currency"):
        if a.receivable_exact_id not in open_ids:
            balance[(a.account_exact_id, a.currency)] -= a.amount
    links = _links_by_account(tenant)
    window_end = today + dt.timedelta(days=tenant.lead_days)
    currencies = set(tenant.currencies or [])
    payments_left = tenant.max_payments_per_run

    plans: list[Plan] = []
    for r in invoices:
        if wanted is not None and str(r.exact_id) not in wanted:
            continue
        account = r.account
        label = f"{account.code} {account.name}".strip() if account else ""
        plan = Plan(
            receivable_exact_id=r.exact_id,
            invoice_number=r.invoice_number,
            account_exact_id=r.account_exact_id,
            account_label=label[:300],
            due_date=r.due_date,
            currency=r.currency,
            outstanding=r.outstanding,
        )
        plans.append(plan)
        earlier = attempts.get(r.exact_id)
        if earlier and _attempt_block(plan, earlier, today):
            continue
        link = links.get(r.account_exact_id)
        if link is None:
            plan.skip(SkipReason.NO_CUSTOMER_LINK)
            continue
        if link.state == LinkState.AMBIGUOUS:
            plan.skip(SkipReason.LINK_NOT_CONFIRMED, "several GoCardless customers could match")
            continue
        if link.state != LinkState.MATCHED:
            # Unmatched (not at GoCardless yet) or unlinked by a person: there is no customer
            # to collect from, which is what finance needs to read here.
            plan.skip(SkipReason.NO_CUSTOMER_LINK, link.get_state_display())
            continue
        if link.stop_reason:
            plan.skip(SkipReason.COLLECTION_STOPPED, link.stop_reason)
            continue
        if link.exact_account is None or link.exact_account.blocked:
            plan.skip(SkipReason.ACCOUNT_BLOCKED)
            continue
        mandate = link.mandate
        if mandate is None:
            plan.skip(SkipReason.NO_MANDATE)
            continue
        plan.mandate_gocardless_id, plan.scheme = mandate.gocardless_id, mandate.scheme
        if mandate.status in STOPPED_MANDATE_STATUSES:
            plan.skip(SkipReason.MANDATE_CANCELLED, f"mandate {mandate.status}")
            continue
        if mandate.status not in COLLECTABLE_MANDATE_STATUSES:
            plan.skip(SkipReason.MANDATE_PENDING, f"mandate {mandate.status or 'unknown'}")
            continue
        rule = scheme_rule(mandate.scheme)
        if r.currency not in currencies:
            plan.skip(SkipReason.CURRENCY_NOT_COLLECTABLE, f"{r.currency} not in the policy")
            continue
        if rule is None or rule.currency != r.currency:
            plan.skip(
                SkipReason.CURRENCY_NOT_COLLECTABLE,
                f"{r.currency} invoice, {mandate.scheme or 'unknown'} mandate",
            )
            continue
        if r.due_date is not None and r.due_date > window_end:
            plan.skip(SkipReason.NOT_DUE, f"due {r.due_date.isoformat()}")
            continue
        key = (r.account_exact_id, r.currency)
        left = r.outstanding - on_its_way[r.exact_id]
        if left <= 0:
            plan.skip(SkipReason.ALREADY_IN_FLIGHT, "earlier payments cover the open amount")
            continue
        amount = min(left, balance[key])
        if amount <= 0:
            plan.skip(
                SkipReason.CREDITED, "credit notes (or money on its way) cover the open amount"
            )
            continue
        reduced = " (reduced by credit notes)" if amount < left else ""
        plan.amount = amount
        if amount < tenant.minimum_amount:
            plan.skip(SkipReason.BELOW_MINIMUM, f"{amount} < {tenant.minimum_amount}{reduced}")
            continue
        minor = to_minor_units(amount, r.currency)
        if minor < rule.minimum:
            minimum = from_minor_units(rule.minimum, r.currency)
            plan.skip(SkipReason.BELOW_MINIMUM, f"scheme minimum {minimum}{reduced}")
            continue
        part_minor = [minor]
        if minor > rule.maximum:
            maximum = from_minor_units(rule.maximum, r.currency)
            if tenant.over_maximum_policy != "split":
                plan.skip(SkipReason.OVER_SCHEME_MAXIMUM, f"scheme maximum {maximum}")
                continue
            part_minor = _split(minor, rule.maximum)
        if previewed is not None and r.exact_id not in previewed:
            plan.skip(SkipReason.NOT_IN_PREVIEW)
            continue
        if len(part_minor) > payments_left:
            plan.skip(SkipReason.RUN_LIMIT, f"max {tenant.max_payments_per_run} per run")
            continue
        payments_left -= len(part_minor)
        balance[key] -= amount
        plan.parts = len(part_minor)
        plan.part_amounts = [from_minor_units(m, r.currency) for m in part_minor]
        plan.earliest_charge_date = earliest_charge_date(
            scheme=mandate.scheme,
            today=today,
            next_possible=mandate.next_possible_charge_date,
            mandate_status=mandate.status,
        )
        plan.charge_date = charge_date_for(
            scheme=mandate.scheme,
            today=today,
            due_date=r.due_date,
            next_possible=mandate.next_possible_charge_date,
            policy=tenant.charge_date_policy,
            mandate_status=mandate.status,
        )
        plan.decision, plan.reason = Decision.COLLECT, ""
        plan.detail = f"{len(part_minor)} instalments" if len(part_minor) > 1 else reduced.strip()
    return plans
