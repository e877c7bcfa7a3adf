"""Exact invoices that changed under a payment already on its way.

After each receivables sync (a task queued by the receivers), every submitted attempt is
checked against its invoice: credited, reduced or paid by other means.

- Still ``pending_submission`` at GoCardless → the payment is cancelled, the attempt
  *superseded*, and whatever remains is collected again at once (auto) or shown in the next
  preview (review): through ``run_start``, so the tenant's mode decides.
- Already submitted → *needs attention*: a person looks (a refund may be due).

This module starts runs, so it sits above ``runs``; the payment-event reactions
(``reactions``) sit below it, since submission applies them to an adopted payment.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from django.db import transaction

from core.audit import Actor
from core.display import PAYMENT_STATUS_WORDS, money_display, words
from exact.models import ExactReceivable
from gocardless import errors
from gocardless.models import Payment
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.models import AttemptState, CollectionAttempt, RunTrigger
from reconciliation.collection.runs import RunRefused, run_start

logger = logging.getLogger(__name__)

# Attempts whose amount is money on its way from the customer.
_MONEY_ON_ITS_WAY = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)


class _Allowance:
    """What each in-flight attempt may still collect: its invoice's outstanding amount,
    capped by what the customer owes net of credit notes and of the other money on its way
    (the same rule the selection uses)."""

    def __init__(self, tenant) -> None:
        self.open_items = {
            r.exact_id: r
            for r in ExactReceivable.objects.filter(tenant=tenant, is_fully_paid=False).only(
                "exact_id", "outstanding", "account_exact_id", "currency", "kind"
            )
        }
        self.balance: dict = defaultdict(Decimal)
        for r in self.open_items.values():
            self.balance[(r.account_exact_id, r.currency)] += r.outstanding
        self.on_its_way: dict = defaultdict(Decimal)
        for a in CollectionAttempt.objects.filter(
            tenant=tenant,
            receivable_exact_id__in=list(self.open_items),
            state__in=_MONEY_ON_ITS_WAY,
        ).only("account_exact_id", "currency", "amount"):
            self.on_its_way[(a.account_exact_id, a.currency)] += a.amount

    def for_attempt(self, attempt: CollectionAttempt) -> tuple[Decimal, str]:
        """(amount the attempt may collect now, why it differs — for the audit message)."""
        item = self.open_items.get(attempt.receivable_exact_id)
        if item is None:
            return Decimal("0"), "invoice closed in Exact (paid by other means or credited)"
        key = (attempt.account_exact_id, attempt.currency)
        others = self.on_its_way[key] - attempt.amount
        allowed = min(item.outstanding, self.balance[key] - others)
        return (
            allowed,
            f"invoice now needs {money_display(max(allowed, Decimal('0')), attempt.currency)} "
            f"instead of {money_display(attempt.amount, attempt.currency)}",
        )


def _still_covered(attempt: CollectionAttempt, allowed: Decimal) -> bool:
    if attempt.parts > 1:
        # Instalments: the allowance is compared with the whole attempt group.
        group_total = sum(
            CollectionAttempt.objects.filter(
                tenant=attempt.tenant,
                receivable_exact_id=attempt.receivable_exact_id,
                attempt_number=attempt.attempt_number,
            ).values_list("amount", flat=True),
            Decimal("0"),
        )
        return allowed >= group_total
    return allowed >= attempt.amount


def _payment_status(attempt: CollectionAttempt) -> str:
    mirrored = (
        Payment.objects.filter(tenant=attempt.tenant, gocardless_id=attempt.payment_gocardless_id)
        .values_list("status", flat=True)
        .first()
    )
    return mirrored or attempt.payment_status


def _payment_cancel(attempt: CollectionAttempt, *, client, actor: Actor, why: str) -> bool:
    """Cancel the payment and supersede the attempt; True when cancelled. When GoCardless
    will not (or cannot) cancel it, the attempt is flagged for a person instead."""
    try:
        if client is None:
            raise errors.GoCardlessError("GoCardless is not connected")
        client.payment_cancel(attempt.payment_gocardless_id)
    except errors.AuthError:
        raise  # the connection is unusable: the task fails and says so
    except errors.GoCardlessError as exc:
        with transaction.atomic():
            attempt_change(
                attempt,
                actor=actor,
                action="collection.attempt_needs_attention",
                message=f"{why}; cancelling failed: {exc}",
                state=AttemptState.NEEDS_ATTENTION,
                flag=f"Invoice changed; payment could not be cancelled ({why})"[:300],
            )
        return False
    with transaction.atomic():
        attempt_change(
            attempt,
            actor=actor,
            action="collection.attempt_superseded",
            message=f"Payment {attempt.payment_gocardless_id} cancelled: {why}",
            state=AttemptState.SUPERSEDED,
            payment_status="cancelled",
            flag=why[:300],
        )
    return True


def _refund_flag(attempt: CollectionAttempt, *, actor: Actor, why: str, status: str) -> None:
    said = words(status, PAYMENT_STATUS_WORDS).lower()
    with transaction.atomic():
        attempt_change(
            attempt,
            actor=actor,
            action="collection.attempt_needs_attention",
            message=f"{why}, but payment is already {status}: a refund may be due",
            state=AttemptState.NEEDS_ATTENTION,
            flag=f"Invoice changed after the payment left ({said}); refund?"[:300],
        )


def attempts_check_against_exact(*, tenant, client=None) -> dict[str, int]:
    """After a receivables sync: cancel or flag payments whose invoice changed under them."""
    # Imported when called: a test that replaces it at its home sees every use.
    from reconciliation.customers.config import gocardless_client_for

    counts = {"checked": 0, "cancelled": 0, "flagged": 0, "recollect": 0}
    in_flight = list(
        CollectionAttempt.objects.filter(tenant=tenant, state=AttemptState.SUBMITTED)
        .exclude(payment_gocardless_id="")
        .select_related("tenant")
    )
    if not in_flight:
        return counts
    allowance = _Allowance(tenant)
    recollect = []
    actor = Actor.system("collection.exact-check")
    for attempt in in_flight:
        counts["checked"] += 1
        allowed, why = allowance.for_attempt(attempt)
        if _still_covered(attempt, allowed):
            continue
        status = _payment_status(attempt)
        if status != "pending_submission":
            _refund_flag(attempt, actor=actor, why=why, status=status)
            counts["flagged"] += 1
            continue
        client = client or gocardless_client_for(tenant=tenant)
        if not _payment_cancel(attempt, client=client, actor=actor, why=why):
            counts["flagged"] += 1
            continue
        counts["cancelled"] += 1
        if allowed > 0:
            recollect.append(attempt.receivable_exact_id)
    if recollect:
        counts["recollect"] = len(recollect)
        try:
            run_start(
                tenant=tenant, trigger=RunTrigger.CHANGE, only_receivables=recollect, client=client
            )
        except RunRefused as exc:
            logger.info("not re-collecting for %s: %s", tenant, exc)
    return counts
