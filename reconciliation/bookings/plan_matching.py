"""Which open Exact invoice a payment of a GoCardless subscription or instalment schedule pays
(docs/subscriptions.md, "Matching").

A plan payment carries ``links.subscription`` / ``links.instalment_schedule`` and none of our
metadata. It is matched automatically only when exactly ONE open invoice fits: an invoice of
the Exact account linked to the payment's GoCardless customer (mandate → customer → customer
link), in the payment's currency, due within ``MATCH_WINDOW`` of the charge date, on which
what is left to pay equals the payment's amount: its open amount in Exact less the money
already on its way for it that Exact does not show yet (other plan payments matched to it,
attempts of ours: ``being_paid``). As in customer matching (customers/matching.py), anything
else is never guessed: several fits or none → the payment waits for a person, who picks an
invoice or says it is not an invoice payment (``plan_payment_decide``). Every decision is
audited.

Nothing here books; ``plan_bookings.py`` books what a match makes bookable.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.audit import Actor, audit_record
from core.money import from_minor_units
from exact.locks import lock_row
from exact.models import ExactReceivable, ReceivableKind
from gocardless.models import Mandate, Payment
from reconciliation.collection.models import AttemptState, CollectionAttempt
from reconciliation.customers.models import CustomerLink, LinkState

from .models import Booking, BookingState, PlanMatchedBy, PlanMatchState, PlanPaymentMatch, Rule

# A due date at most this far before or after the charge date fits. 13 days each way is a
# 27-day window: shorter than the shortest month, so two monthly invoices of the same amount
# can never both fit one payment of a monthly subscription (that would be a guess), and wide
# enough for the usual practice of invoicing a plan's period with a due date up to two weeks
# around the day GoCardless collects it. An invoice outside it waits for a person.
MATCH_WINDOW = dt.timedelta(days=13)

# A plan payment in one of these never pays an invoice: it is not matched (a failure AFTER a
# match is booked as a reversal, like ours).
DEAD_STATUSES = ("failed", "cancelled", "customer_approval_denied", "charged_back")

# Our own attempts whose money is on its way for an invoice: a plan payment does not pay it.
_OUR_MONEY = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)


def plan_of(payment: Payment) -> str:
    """The subscription or instalment schedule that created ``payment`` ("" = none)."""
    return payment.subscription_id or payment.instalment_schedule_id or ""


def plan_payments(*, tenant):
    """The tenant's payments a plan created."""
    return Payment.objects.filter(tenant=tenant).filter(
        ~Q(subscription_id="") | ~Q(instalment_schedule_id="")
    )


def accounts_of_payment(*, payment: Payment) -> list:
    """Exact account guids linked to the GoCardless customer of ``payment``'s mandate."""
    mandate = (
        Mandate.objects.filter(tenant_id=payment.tenant_id, gocardless_id=payment.mandate_id)
        .only("customer_id")
        .first()
    )
    if mandate is None or not mandate.customer_id:
        return []
    return list(
        CustomerLink.objects.filter(
            tenant_id=payment.tenant_id, gocardless_customer__gocardless_id=mandate.customer_id
        )
        .exclude(state=LinkState.UNLINKED)
        .values_list("exact_account_guid", flat=True)
    )


def _shown(receipt, synced_at) -> bool:
    """Does Exact's open amount (as last read) already reflect this receipt?"""
    return (
        receipt is not None
        and receipt.state == BookingState.CONFIRMED
        and receipt.confirmed_at is not None
        and synced_at is not None
        and receipt.confirmed_at <= synced_at
    )


def being_paid(*, receivables: list, payment: Payment) -> dict:
    """Receivable guid → money already on its way for it that Exact's open amount does not
    show yet: other plan payments matched to it (not failed), and attempts of ours in flight
    or collected whose receipt Exact has not shown. Three queries."""
    if not receivables:
        return {}
    tenant_id = payment.tenant_id
    synced = {r.exact_id: r.synced_at for r in receivables}
    paid: dict = defaultdict(Decimal)
    matches = (
        PlanPaymentMatch.objects.filter(
            tenant_id=tenant_id, state=PlanMatchState.MATCHED, receivable_exact_id__in=synced
        )
        .exclude(payment=payment)
        .exclude(payment__status__in=DEAD_STATUSES)
        .select_related("payment", "receipt")
    )
    for m in matches:
        if not _shown(m.receipt, synced.get(m.receivable_exact_id)):
            paid[m.receivable_exact_id] += from_minor_units(m.payment.amount, m.payment.currency)
    attempts = list(
        CollectionAttempt.objects.filter(
            tenant_id=tenant_id, receivable_exact_id__in=synced, state__in=_OUR_MONEY
        ).only("receivable_exact_id", "amount", "payment_gocardless_id")
    )
    ours = [a.payment_gocardless_id for a in attempts if a.payment_gocardless_id]
    receipts = {  # the latest receipt of each payment
        b.gocardless_id: b
        for b in Booking.objects.filter(
            tenant_id=tenant_id, rule=Rule.RECEIPT, gocardless_id__in=ours
        ).order_by("sequence")
    }
    for a in attempts:
        if not _shown(receipts.get(a.payment_gocardless_id), synced.get(a.receivable_exact_id)):
            paid[a.receivable_exact_id] += a.amount
    return paid


def open_invoices(*, tenant_id, accounts: list, currency: str):
    return ExactReceivable.objects.filter(
        tenant_id=tenant_id,
        account_exact_id__in=accounts,
        currency=currency,
        kind=ReceivableKind.INVOICE,
        is_fully_paid=False,
        outstanding__gt=0,
    ).order_by("due_date", "invoice_number")


def _still_free(r: ExactReceivable, *, payment: Payment) -> bool:
    """Under the invoice's row lock, is what is left to pay on it still at least the
    payment? Two plan payments matched at the same time (a webhook and the sweep) queue
    here: the second sees the first's match once it is committed, and waits for a person
    instead of paying the invoice twice."""
    lock_row(ExactReceivable, r.pk)
    left = r.outstanding - being_paid(receivables=[r], payment=payment).get(r.exact_id, 0)
    return left >= from_minor_units(payment.amount, payment.currency)


def _candidate(r: ExactReceivable, left: Decimal) -> dict:
    return {
        "receivable": str(r.exact_id),
        "invoice": r.invoice_number,
        "due_date": r.due_date.isoformat() if r.due_date else None,
        "outstanding": str(left),  # what is left to pay on it
        "account": str(r.account_exact_id),
    }


def fitting_invoices(*, payment: Payment, accounts: list) -> tuple[list, list]:
    """(invoices that fit exactly, every open invoice of the customer in the currency with
    something left to pay), each as (invoice, what is left to pay on it)."""
    amount = from_minor_units(payment.amount, payment.currency)
    invoices = list(
        open_invoices(tenant_id=payment.tenant_id, accounts=accounts, currency=payment.currency)
    )
    paid = being_paid(receivables=invoices, payment=payment)
    every = [(r, r.outstanding - paid.get(r.exact_id, 0)) for r in invoices]
    every = [(r, left) for r, left in every if left > 0]
    day = payment.charge_date
    fits = [
        (r, left)
        for r, left in every
        if left == amount
        and day is not None
        and r.due_date is not None
        and day - MATCH_WINDOW <= r.due_date <= day + MATCH_WINDOW
    ]
    return fits, every


def _waiting_note(payment: Payment, fits: list, accounts: list) -> str:
    amount = f"{payment.currency} {from_minor_units(payment.amount, payment.currency)}"
    if not accounts:
        return "Its GoCardless customer is not linked to an Exact account."
    if len(fits) > 1:
        numbers = ", ".join(str(r.invoice_number) for r, _left in fits)
        return f"{len(fits)} open invoices of {amount} fit ({numbers}): a person decides."
    day = payment.charge_date
    if day is None:
        return f"No charge date yet: no open invoice of {amount} can be matched."
    start, end = day - MATCH_WINDOW, day + MATCH_WINDOW
    return (
        f"No open invoice due between {start:%d %b %Y} and {end:%d %b %Y} with {amount} "
        "left to pay on it."
    )


def plan_payment_match(*, payment: Payment, actor: Actor) -> PlanPaymentMatch | None:
    """Match one plan payment (idempotent). Returns its row, or None when ``payment`` is not
    a plan payment, or has failed or been cancelled before anything was decided.

    A row that is matched, or that a person decided, is returned untouched; a waiting row is
    tried again (the invoice may have arrived from Exact since)."""
    plan = plan_of(payment)
    if not plan:
        return None
    with transaction.atomic():
        # The payment's row first, as event processing locks it: the match row's foreign key
        # takes a share lock on it, and taken after the receivable's lock it deadlocked with a
        # worker processing the payment's event (found by the chaos month, tests/chaos).
        lock_row(Payment, payment.pk)
        match = PlanPaymentMatch.objects.filter(payment=payment).first()
        if match is not None:
            match = lock_row(PlanPaymentMatch, match.pk)
            if match.state != PlanMatchState.WAITING or payment.status in DEAD_STATUSES:
                return match
        elif payment.status in DEAD_STATUSES:
            return None
        accounts = accounts_of_payment(payment=payment)
        fits, every = fitting_invoices(payment=payment, accounts=accounts)
        if match is None:
            match, created = PlanPaymentMatch.objects.get_or_create(
                payment=payment, defaults={"tenant_id": payment.tenant_id, "plan": plan}
            )
            if not created:  # another worker made it first: its decision stands
                return match
        if len(fits) == 1 and _still_free(fits[0][0], payment=payment):
            return _matched(match, fits[0][0], by=PlanMatchedBy.AUTOMATIC, actor=actor)
        if len(fits) == 1:
            fits = []  # another payment took it in the meantime
        before = (match.note, match.candidates)
        match.note = _waiting_note(payment, fits, accounts)[:300]
        match.candidates = [_candidate(r, left) for r, left in (fits if len(fits) > 1 else every)]
        if (match.note, match.candidates) != before:
            match.save(update_fields=["note", "candidates", "updated_at"])
            audit_record(
                actor=actor,
                action="plan_payment.waiting",
                tenant=payment.tenant,
                obj=match,
                after={"state": match.state, "candidates": len(match.candidates)},
                message=f"Payment {payment.gocardless_id} of {plan}: {match.note}",
            )
        return match


def _matched(match: PlanPaymentMatch, r: ExactReceivable, *, by: str, actor: Actor, user=None):
    before = {"state": match.state}
    match.state = PlanMatchState.MATCHED
    match.matched_by = by
    match.receivable_exact_id = r.exact_id
    match.invoice_number = r.invoice_number
    match.account_exact_id = r.account_exact_id
    match.note = ""
    if user is not None:
        match.decided_by, match.decided_at = user, timezone.now()
    match.save()
    payment = match.payment
    audit_record(
        actor=actor,
        action="plan_payment.matched",
        tenant=payment.tenant,
        obj=match,
        before=before,
        after={
            "state": match.state,
            "matched_by": by,
            "invoice": r.invoice_number,
            "receivable": str(r.exact_id),
        },
        message=f"Payment {payment.gocardless_id} of {match.plan} "
        f"({payment.currency} {from_minor_units(payment.amount, payment.currency)}) pays "
        f"invoice {r.invoice_number} ({'by a person' if user else 'the one invoice that fits'})",
    )
    return match


class DecisionRefused(ValueError):
    """A person's decision that cannot be taken; the message says why, in words."""


def plan_payment_decide(
    *, match: PlanPaymentMatch, receivable_exact_id, user, actor: Actor
) -> PlanPaymentMatch:
    """A person decides a waiting plan payment: the invoice it pays, or (``None``) that it is
    not an invoice payment. Refused (``DecisionRefused``) when already decided or when the
    invoice is not an open invoice of that customer in the payment's currency."""
    with transaction.atomic():
        match = lock_row(PlanPaymentMatch, match.pk)
        payment = match.payment
        if match.state != PlanMatchState.WAITING:
            raise DecisionRefused(
                f"Payment {payment.gocardless_id} was already decided: {match.get_state_display()}."
            )
        if receivable_exact_id is None:
            match.state = PlanMatchState.NOT_INVOICE
            match.matched_by = PlanMatchedBy.PERSON
            match.decided_by, match.decided_at = user, timezone.now()
            match.note = ""
            match.save()
            audit_record(
                actor=actor,
                action="plan_payment.not_invoice",
                tenant=payment.tenant,
                obj=match,
                before={"state": PlanMatchState.WAITING},
                after={"state": match.state},
                message=f"Payment {payment.gocardless_id} of {match.plan} is not an invoice "
                "payment (it stays in the suspense account)",
            )
            return match
        accounts = accounts_of_payment(payment=payment)
        r = (
            open_invoices(tenant_id=payment.tenant_id, accounts=accounts, currency=payment.currency)
            .filter(exact_id=receivable_exact_id)
            .first()
        )
        if r is None:
            raise DecisionRefused(
                "That invoice is no longer open, or is not an invoice of this customer in "
                f"{payment.currency}: choose another."
            )
        if from_minor_units(payment.amount, payment.currency) > r.outstanding:
            raise DecisionRefused(
                f"Invoice {r.invoice_number} has {payment.currency} {r.outstanding} open, less "
                "than the payment: its receipt would pay more than is owed."
            )
        if not _still_free(r, payment=payment):
            raise DecisionRefused(
                f"Invoice {r.invoice_number} is already being paid by other payments: what is "
                "left on it is less than this payment."
            )
        return _matched(match, r, by=PlanMatchedBy.PERSON, actor=actor, user=user)
