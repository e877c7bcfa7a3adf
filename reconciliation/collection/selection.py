"""Which open receivables a run collects, for how much and when — and why not the others.

Pure evaluation: reads the mirrors (Exact receivables, customer links with their mandates,
earlier attempts) and returns one ``Plan`` per open invoice. Nothing is written here; the
run services turn plans into items and attempts. The rules that decide each invoice, in
their order, are in ``selection_rules.py``; this module loads what they read and keeps the
balances they use up.

The amount is the invoice's outstanding amount (Exact's ``AmountFC``, so partial payments are
already deducted), capped by what the customer owes in that currency net of credit notes and
of money already on its way (attempts in flight or collected but not yet booked): a credit
note reduces what is collected, oldest invoices first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Q

from core.money import from_minor_units
from exact.models import ExactReceivable, ReceivableKind
from gocardless.models import InstalmentSchedule, Mandate, Payment, Subscription
from reconciliation.collection.models import AttemptState, CollectionAttempt
from reconciliation.collection.pay_link_rules import pay_link_money_on_its_way, pay_links_open
from reconciliation.collection.selection_rules import (
    Evaluation,
    Line,
    Plan,
    PlanFacts,
    line_decide,
)
from reconciliation.customers.models import CustomerLink, LinkState

__all__ = ["Plan", "selection_evaluate"]

# Attempts whose amount is money on its way: the customer's remaining balance excludes it.
_MONEY_ON_ITS_WAY = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)


# Plans that will still create payments (GoCardless statuses; docs/subscriptions.md). A
# paused subscription counts: it resumes by itself or when the merchant resumes it.
LIVE_SUBSCRIPTION_STATUSES = ("pending_customer_approval", "active", "paused")
LIVE_SCHEDULE_STATUSES = ("pending", "active")
# Plan payments whose money will not come (failed, cancelled, charged back).
_DEAD_PAYMENT_STATUSES = ("failed", "cancelled", "customer_approval_denied", "charged_back")

# --- loading what the rules read -------------------------------------------------------------


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
        .select_related("mandate", "exact_account", "gocardless_customer")
        .order_by("pk")
    ):
        links[link.exact_account_guid] = link  # newest wins, as link_for_account does
    return links


def _money(minor: int, currency: str) -> str:
    return f"{currency} {from_minor_units(int(minor), currency)}"


def _plan_facts(tenant, *, links: dict, receivables: list) -> PlanFacts:
    """What GoCardless plans pay or will pay, per invoice and per customer (four queries).

    A plan reaches an Exact account through its mandate's GoCardless customer and that
    customer's link. The plan payments matched to an invoice are read through the payment's
    ``plan_match`` (reconciliation/bookings; this app cannot import it: bookings imports
    collection)."""
    facts = PlanFacts()
    account_of_customer = {
        link.gocardless_customer.gocardless_id: link.exact_account_guid
        for link in links.values()
        if link.gocardless_customer is not None and link.state != LinkState.UNLINKED
    }
    if not account_of_customer:
        return facts
    synced = {r.exact_id: r.synced_at for r in receivables}
    subscriptions = list(
        Subscription.objects.filter(tenant=tenant, status__in=LIVE_SUBSCRIPTION_STATUSES).only(
            "gocardless_id", "mandate_id", "amount", "currency", "upcoming_payments", "status"
        )
    )
    schedules = list(
        InstalmentSchedule.objects.filter(tenant=tenant, status__in=LIVE_SCHEDULE_STATUSES).only(
            "gocardless_id", "mandate_id", "currency", "total_amount", "upcoming_payments",
            "status",
        )
    )
    payments = list(
        Payment.objects.filter(tenant=tenant)
        .filter(~Q(subscription_id="") | ~Q(instalment_schedule_id=""))
        .exclude(status__in=_DEAD_PAYMENT_STATUSES)
        .filter(
            Q(plan_match__isnull=True)
            | Q(plan_match__state="waiting")
            | Q(
                plan_match__state="matched",
                plan_match__receivable_exact_id__in=ExactReceivable.objects.filter(
                    tenant=tenant, is_fully_paid=False
                ).values("exact_id"),
            )
        )
        .select_related("plan_match", "plan_match__receipt")
        .only(
            "gocardless_id", "mandate_id", "amount", "currency", "subscription_id",
            "instalment_schedule_id", "plan_match__state", "plan_match__receivable_exact_id",
            "plan_match__receipt__state", "plan_match__receipt__confirmed_at",
        )
    )
    mandate_ids = {p.mandate_id for p in [*subscriptions, *schedules, *payments]}
    customer_of_mandate = dict(
        Mandate.objects.filter(tenant=tenant, gocardless_id__in=mandate_ids).values_list(
            "gocardless_id", "customer_id"
        )
    )

    def account(obj):
        return account_of_customer.get(customer_of_mandate.get(obj.mandate_id))

    def add(table: dict, obj, currency: str, minor: int, words: str) -> None:
        if minor:
            table.setdefault((account(obj), currency), []).append(
                (from_minor_units(int(minor), currency), words)
            )

    for sub in subscriptions:
        amounts = {sub.amount} | {int(u.get("amount") or 0) for u in sub.upcoming_payments or []}
        for minor in sorted(amounts):
            money = _money(minor, sub.currency)
            words = f"subscription {sub.gocardless_id} ({sub.status}, {money})"
            add(facts.upcoming, sub, sub.currency, minor, words)
    for schedule in schedules:
        name, cur = f"instalment schedule {schedule.gocardless_id}", schedule.currency
        upcoming = [int(u.get("amount") or 0) for u in schedule.upcoming_payments or []]
        for u, minor in zip(schedule.upcoming_payments or [], upcoming, strict=True):
            words = f"{name} ({_money(minor, cur)} on {u.get('charge_date')})"
            add(facts.upcoming, schedule, cur, minor, words)
        # A schedule usually pays ONE invoice in parts: its total, and what it has still to
        # collect, are amounts it collects too.
        add(facts.upcoming, schedule, cur, schedule.total_amount,
            f"{name} ({_money(schedule.total_amount, cur)} in instalments)")
        if len(upcoming) > 1:
            add(facts.upcoming, schedule, cur, sum(upcoming),
                f"{name} ({_money(sum(upcoming), cur)} still to collect)")
    per_plan: dict = {}
    for p in payments:
        plan = p.subscription_id or p.instalment_schedule_id
        words = f"payment {p.gocardless_id} of {plan} ({_money(p.amount, p.currency)})"
        match = getattr(p, "plan_match", None)
        if match is None or match.state == "waiting":
            add(facts.unmatched, p, p.currency, p.amount, words)
            per_plan.setdefault((plan, p.currency), []).append(p)
            continue
        receipt = match.receipt
        # Exact shows the money once its receipt is confirmed and the invoice was read
        # again after that; until then the invoice is being paid by this payment.
        shown = (
            receipt is not None
            and receipt.state == "confirmed"
            and receipt.confirmed_at is not None
            and synced.get(match.receivable_exact_id) is not None
            and receipt.confirmed_at <= synced[match.receivable_exact_id]
        )
        if not shown:
            facts.paying.setdefault(match.receivable_exact_id, []).append(
                (from_minor_units(p.amount, p.currency), words)
            )
    # Several unmatched payments of one plan (an instalment schedule's parts) may together
    # pay one invoice: their sum is an amount they pay too (not money of its own).
    for (plan, cur), group in per_plan.items():
        if len(group) > 1:
            total = sum(p.amount for p in group)
            words = f"{len(group)} payments of {plan} ({_money(total, cur)} together)"
            facts.unmatched_sums.setdefault((account(group[0]), cur), []).append(
                (from_minor_units(total, cur), words)
            )
    return facts


def _open_receivables(tenant) -> list[ExactReceivable]:
    return list(
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
            "amount",
            "kind",
            "synced_at",
        )
    )


def _evaluation_start(*, tenant, today, receivables, invoices, previewed) -> Evaluation:
    # What each customer owes per currency, credit notes included (they are negative).
    balance: dict = defaultdict(Decimal)
    for r in receivables:
        balance[(r.account_exact_id, r.currency)] += r.outstanding
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
    plans = _plan_facts(tenant, links=links, receivables=receivables)
    # A plan payment matched to an invoice and not yet shown by Exact is money on its way
    # for that invoice and lowers what the customer owes, like an attempt of ours.
    for r in receivables:
        for amount, _words in plans.paying.get(r.exact_id, ()):
            balance[(r.account_exact_id, r.currency)] -= amount
            on_its_way[r.exact_id] += amount
    # A plan payment not (yet) matched to any invoice is the customer's money too, taken or
    # on its way: what is left to collect from that customer is lower by it (erring on the
    # side of not charging until a person says it is not an invoice payment).
    for key, found in plans.unmatched.items():
        for amount, _words in found:
            balance[key] -= amount
    # A payment link the customer holds (pay_link_rules): its invoice is not collected by
    # Direct Debit, and a paid link's money lowers what the customer owes like a payment of
    # ours on its way. Only links of invoices Exact still shows open count: once the receipt
    # is booked and the invoice closed, the link's money is in Exact's numbers.
    pay_links = {
        receivable: link
        for receivable, link in pay_links_open(tenant=tenant).items()
        if receivable in open_ids
    }
    paid_by_customer, paid_by_receivable = pay_link_money_on_its_way(pay_links)
    for key, amount in paid_by_customer.items():
        balance[key] -= amount
    for receivable, amount in paid_by_receivable.items():
        on_its_way[receivable] += amount
    return Evaluation(
        tenant=tenant,
        today=today,
        window_end=today + dt.timedelta(days=tenant.lead_days),
        currencies=set(tenant.currencies or []),
        links=links,
        plans=plans,
        pay_links=pay_links,
        attempts=attempts,
        balance=balance,
        on_its_way=on_its_way,
        previewed=previewed,
        payments_left=tenant.max_payments_per_run,
    )


def _plan_for(r: ExactReceivable) -> Plan:
    account = r.account
    label = f"{account.code} {account.name}".strip() if account else ""
    return Plan(
        receivable_exact_id=r.exact_id,
        invoice_number=r.invoice_number,
        account_exact_id=r.account_exact_id,
        account_label=label[:300],
        due_date=r.due_date,
        currency=r.currency,
        outstanding=r.outstanding,
    )


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
    receivables = _open_receivables(tenant)
    invoices = [r for r in receivables if r.kind == ReceivableKind.INVOICE and r.outstanding > 0]
    wanted = {str(x) for x in only_receivables} if only_receivables else None
    invoices.sort(key=lambda r: (r.due_date or today, r.invoice_number or 0, str(r.exact_id)))
    ev = _evaluation_start(
        tenant=tenant, today=today, receivables=receivables, invoices=invoices, previewed=previewed
    )
    plans: list[Plan] = []
    for r in invoices:
        if wanted is not None and str(r.exact_id) not in wanted:
            continue
        line = Line(receivable=r, plan=_plan_for(r))
        plans.append(line.plan)
        line_decide(line, ev)
    return plans
