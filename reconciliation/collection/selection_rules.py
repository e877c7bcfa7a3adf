"""The rules that decide one invoice: collect (how much, when, in how many parts) or skip,
with the reason finance staff read on the run's line.

The rules run in the order of docs/collections.md ("Selection"); the first that finds a
reason to skip decides. ``selection.py`` loads what they read (links, mandates, earlier
attempts, balances) once per evaluation and hands each invoice to ``line_decide``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from core.money import from_minor_units, to_minor_units
from exact.models import ExactReceivable
from gocardless.models import Mandate
from reconciliation.collection.charge_dates import charge_date_for, earliest_charge_date
from reconciliation.collection.models import AttemptState, Decision, SkipReason
from reconciliation.collection.pay_link_rules import pay_link_skip
from reconciliation.collection.schemes import SchemeRule, scheme_rule
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.customers.selectors import STOPPED_MANDATE_STATUSES

# Mandate statuses a payment may be created on (issue 6: "active (or pending-submission)";
# GoCardless also accepts ``submitted``).
COLLECTABLE_MANDATE_STATUSES = ("pending_submission", "submitted", "active")
_DISPUTE_CAUSES = ("charged_back", "authorisation_disputed", "refund_requested")


@dataclass
class Plan:
    """What a run does with one open invoice (stored as its ``CollectionItem`` line)."""

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


@dataclass
class PlanFacts:
    """What GoCardless subscriptions and instalment schedules will pay or are paying
    (selection.py loads it; docs/subscriptions.md, "Never charged twice")."""

    # receivable guid → [(amount, words)] plan payments matched to it whose money Exact
    # does not show yet
    paying: dict = field(default_factory=dict)
    # (account guid, currency) → [(amount, words)] plan payments not matched to an invoice
    unmatched: dict = field(default_factory=dict)
    # (account guid, currency) → [(amount, words)] the sum of several of them of one plan
    unmatched_sums: dict = field(default_factory=dict)
    # (account guid, currency) → [(amount, words)] payments live plans will create
    upcoming: dict = field(default_factory=dict)


# --- what the rules share ------------------------------------------------------------------


@dataclass
class Evaluation:
    """What the rules read across the invoices of one evaluation, and what the lines collected
    so far have used up (the customer's balance, the run's payments)."""

    tenant: object
    today: dt.date
    window_end: dt.date
    currencies: set
    links: dict  # Exact account guid → customer link (with its mandate)
    attempts: dict  # receivable guid → attempts of its highest attempt number
    balance: dict  # (account guid, currency) → what the customer still owes, net
    on_its_way: dict  # receivable guid → money already on its way for that invoice
    previewed: set | None
    payments_left: int
    plans: PlanFacts = field(default_factory=lambda: PlanFacts())
    pay_links: dict = field(default_factory=dict)  # receivable guid → its open payment link


@dataclass
class Line:
    """One invoice under evaluation: its plan, and what the rules found on the way."""

    receivable: ExactReceivable
    plan: Plan
    link: CustomerLink | None = None
    mandate: Mandate | None = None
    rule: SchemeRule | None = None
    left: Decimal = Decimal("0")  # outstanding less the money already on its way for it
    amount: Decimal = Decimal("0")
    reduced: str = ""
    minor: int = 0
    part_minor: list[int] = field(default_factory=list)


_Skip = tuple[str, str]  # (SkipReason, detail)


def _split(minor: int, maximum: int) -> list[int]:
    """Equal instalments (the first ones carry the remainder), each within the maximum."""
    parts = -(-minor // maximum)
    base, extra = divmod(minor, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


# --- the rules, in the order they are checked (docs/collections.md, "Selection") ------------
# Each returns the skip (reason, detail) that stops the invoice, or None to go on; some note
# what they found on the line (or the plan) for the rules after them.


def _earlier_attempt(line: Line, ev: Evaluation) -> _Skip | None:
    """An earlier attempt in the way. Only the latest attempt number counts: older ones were
    retried or superseded."""
    attempts = ev.attempts.get(line.receivable.exact_id)
    if not attempts:
        return None
    states = {a.state for a in attempts}
    number = attempts[0].attempt_number
    line.plan.attempt_number = number + 1
    if states & {AttemptState.PENDING, AttemptState.SUBMITTED}:
        return SkipReason.ALREADY_IN_FLIGHT, f"attempt {number} is with GoCardless"
    if AttemptState.NEEDS_ATTENTION in states:
        if any(a.failure_cause in _DISPUTE_CAUSES for a in attempts):
            return SkipReason.DISPUTED, f"attempt {number} was disputed by the customer"
        return SkipReason.NEEDS_ATTENTION, f"attempt {number} needs attention"
    if states & {AttemptState.PAY_LINK_SENT, AttemptState.PAID_BY_LINK}:
        # The link rule skips these with the link's own words; an attempt in a link state
        # whose link row is not open (never expected) is still never charged again here.
        return SkipReason.PAY_LINK_SENT, f"attempt {number}: a payment link was sent"
    if states & {AttemptState.CANCELLED, AttemptState.RESOLVED}:
        return SkipReason.HANDLED_BY_PERSON, f"attempt {number} was cancelled or resolved"
    if AttemptState.RETRY_SCHEDULED in states:
        due = min((a.next_retry_on for a in attempts if a.next_retry_on), default=None)
        if due is not None and due > ev.today:
            return SkipReason.RETRY_NOT_DUE, f"attempt {number + 1} on {due.isoformat()}"
        line.plan.retry_of = True
        return None
    if states & {AttemptState.CONFIRMED, AttemptState.PAID_OUT}:
        # Collected; the receipt booking closes the invoice. Anything Exact still shows
        # open after that is for a person (a second automatic charge is never safe here).
        return SkipReason.ALREADY_IN_FLIGHT, f"attempt {number} collected"
    return None


def _pay_link_open(line: Line, ev: Evaluation) -> _Skip | None:
    """The customer holds a payment link for this invoice (being made, sent, or paid and on
    its way to the receipt): charging it by Direct Debit too could make them pay twice."""
    return pay_link_skip(line.receivable.exact_id, ev.pay_links)


def _plan_collects(line: Line, ev: Evaluation) -> _Skip | None:
    """A GoCardless subscription or instalment schedule pays this invoice, or may: never
    charge it as well. Errs on the side of not charging (docs/subscriptions.md): a matched
    plan payment whose money Exact does not show yet; plan payments of this customer not
    matched to any invoice yet, for this invoice's open amount or its full amount; a live plan
    of this customer (active, pending or paused) that collects one of those amounts."""
    r = line.receivable
    paying = ev.plans.paying.get(r.exact_id)
    if paying:
        return SkipReason.PLAN_COLLECTS, f"{paying[0][1]} pays it"
    key = (r.account_exact_id, r.currency)
    # The full amount too: an invoice part-paid by other means is still the one a plan of
    # its amount is for.
    amounts = {r.outstanding, r.amount}
    for amount, words in (*ev.plans.unmatched.get(key, ()), *ev.plans.unmatched_sums.get(key, ())):
        if amount in amounts:
            return SkipReason.PLAN_COLLECTS, f"{words}, not yet matched, is for this amount"
    for amount, words in ev.plans.upcoming.get(key, ()):
        if amount in amounts:
            return SkipReason.PLAN_COLLECTS, f"{words} collects this amount"
    return None


def _no_customer_link(line: Line, ev: Evaluation) -> _Skip | None:
    line.link = ev.links.get(line.receivable.account_exact_id)
    if line.link is None:
        return SkipReason.NO_CUSTOMER_LINK, ""
    return None


def _link_ambiguous(line: Line, ev: Evaluation) -> _Skip | None:
    if line.link.state == LinkState.AMBIGUOUS:
        return SkipReason.LINK_NOT_CONFIRMED, "several GoCardless customers could match"
    return None


def _link_not_matched(line: Line, ev: Evaluation) -> _Skip | None:
    if line.link.state != LinkState.MATCHED:
        # Unmatched (not at GoCardless yet) or unlinked by a person: there is no customer
        # to collect from, which is what finance needs to read here.
        return SkipReason.NO_CUSTOMER_LINK, line.link.get_state_display()
    return None


def _collection_stopped(line: Line, ev: Evaluation) -> _Skip | None:
    if line.link.stop_reason:
        return SkipReason.COLLECTION_STOPPED, line.link.stop_reason
    return None


def _account_blocked(line: Line, ev: Evaluation) -> _Skip | None:
    if line.link.exact_account is None or line.link.exact_account.blocked:
        return SkipReason.ACCOUNT_BLOCKED, ""
    return None


def _no_mandate(line: Line, ev: Evaluation) -> _Skip | None:
    line.mandate = line.link.mandate
    if line.mandate is None:
        return SkipReason.NO_MANDATE, ""
    # Shown on the line from here on, whatever the later rules decide.
    line.plan.mandate_gocardless_id = line.mandate.gocardless_id
    line.plan.scheme = line.mandate.scheme
    return None


def _mandate_cancelled(line: Line, ev: Evaluation) -> _Skip | None:
    if line.mandate.status in STOPPED_MANDATE_STATUSES:
        return SkipReason.MANDATE_CANCELLED, f"mandate {line.mandate.status}"
    return None


def _mandate_pending(line: Line, ev: Evaluation) -> _Skip | None:
    if line.mandate.status not in COLLECTABLE_MANDATE_STATUSES:
        return SkipReason.MANDATE_PENDING, f"mandate {line.mandate.status or 'unknown'}"
    return None


def _currency_not_in_policy(line: Line, ev: Evaluation) -> _Skip | None:
    currency = line.receivable.currency
    if currency not in ev.currencies:
        return SkipReason.CURRENCY_NOT_COLLECTABLE, f"{currency} not in the policy"
    return None


def _currency_not_the_schemes(line: Line, ev: Evaluation) -> _Skip | None:
    line.rule = scheme_rule(line.mandate.scheme)
    currency = line.receivable.currency
    if line.rule is None or line.rule.currency != currency:
        scheme = line.mandate.scheme or "unknown"
        return SkipReason.CURRENCY_NOT_COLLECTABLE, f"{currency} invoice, {scheme} mandate"
    return None


def _not_due(line: Line, ev: Evaluation) -> _Skip | None:
    due = line.receivable.due_date
    if due is not None and due > ev.window_end:
        return SkipReason.NOT_DUE, f"due {due.isoformat()}"
    return None


def _covered_by_earlier_payments(line: Line, ev: Evaluation) -> _Skip | None:
    line.left = line.receivable.outstanding - ev.on_its_way[line.receivable.exact_id]
    if line.left <= 0:
        return SkipReason.ALREADY_IN_FLIGHT, "earlier payments cover the open amount"
    return None


def _credited(line: Line, ev: Evaluation) -> _Skip | None:
    """The amount: what is left on the invoice, capped by what the customer owes net."""
    r = line.receivable
    amount = min(line.left, ev.balance[(r.account_exact_id, r.currency)])
    if amount <= 0:
        return SkipReason.CREDITED, "credit notes (or money on its way) cover the open amount"
    line.amount = line.plan.amount = amount
    line.reduced = " (reduced by credit notes)" if amount < line.left else ""
    return None


def _below_policy_minimum(line: Line, ev: Evaluation) -> _Skip | None:
    minimum = ev.tenant.minimum_amount
    if line.amount < minimum:
        return SkipReason.BELOW_MINIMUM, f"{line.amount} < {minimum}{line.reduced}"
    return None


def _below_scheme_minimum(line: Line, ev: Evaluation) -> _Skip | None:
    currency = line.receivable.currency
    line.minor = to_minor_units(line.amount, currency)
    if line.minor < line.rule.minimum:
        minimum = from_minor_units(line.rule.minimum, currency)
        return SkipReason.BELOW_MINIMUM, f"scheme minimum {minimum}{line.reduced}"
    return None


def _over_scheme_maximum(line: Line, ev: Evaluation) -> _Skip | None:
    """Above the scheme's per-payment maximum: equal instalments, or skipped (the policy)."""
    line.part_minor = [line.minor]
    if line.minor > line.rule.maximum:
        maximum = from_minor_units(line.rule.maximum, line.receivable.currency)
        if ev.tenant.over_maximum_policy != "split":
            return SkipReason.OVER_SCHEME_MAXIMUM, f"scheme maximum {maximum}"
        line.part_minor = _split(line.minor, line.rule.maximum)
    return None


def _not_in_preview(line: Line, ev: Evaluation) -> _Skip | None:
    # Before the run limit and before the balance is used: an invoice the approved preview
    # did not show takes nothing from the lines it did.
    if ev.previewed is not None and line.receivable.exact_id not in ev.previewed:
        return SkipReason.NOT_IN_PREVIEW, ""
    return None


def _run_limit(line: Line, ev: Evaluation) -> _Skip | None:
    if len(line.part_minor) > ev.payments_left:
        return SkipReason.RUN_LIMIT, f"max {ev.tenant.max_payments_per_run} per run"
    return None


_RULES = (
    _pay_link_open,
    _earlier_attempt,
    _plan_collects,
    _no_customer_link,
    _link_ambiguous,
    _link_not_matched,
    _collection_stopped,
    _account_blocked,
    _no_mandate,
    _mandate_cancelled,
    _mandate_pending,
    _currency_not_in_policy,
    _currency_not_the_schemes,
    _not_due,
    _covered_by_earlier_payments,
    _credited,
    _below_policy_minimum,
    _below_scheme_minimum,
    _over_scheme_maximum,
    _not_in_preview,
    _run_limit,
)


def _collect(line: Line, ev: Evaluation) -> None:
    """Every rule passed: the plan collects, and uses up its share of the run and balance."""
    r, plan, mandate, part_minor = line.receivable, line.plan, line.mandate, line.part_minor
    ev.payments_left -= len(part_minor)
    ev.balance[(r.account_exact_id, r.currency)] -= line.amount
    plan.parts = len(part_minor)
    plan.part_amounts = [from_minor_units(m, r.currency) for m in part_minor]
    plan.earliest_charge_date = earliest_charge_date(
        scheme=mandate.scheme,
        today=ev.today,
        next_possible=mandate.next_possible_charge_date,
        mandate_status=mandate.status,
    )
    plan.charge_date = charge_date_for(
        scheme=mandate.scheme,
        today=ev.today,
        due_date=r.due_date,
        next_possible=mandate.next_possible_charge_date,
        policy=ev.tenant.charge_date_policy,
        mandate_status=mandate.status,
    )
    plan.decision, plan.reason = Decision.COLLECT, ""
    plan.detail = f"{len(part_minor)} instalments" if len(part_minor) > 1 else line.reduced.strip()


def line_decide(line: Line, ev: Evaluation) -> None:
    """The first rule that finds a reason skips the line; when none does, it is collected."""
    for rule in _RULES:
        skip = rule(line, ev)
        if skip is not None:
            line.plan.skip(*skip)
            return
    _collect(line, ev)
