"""Which payments of a payout entered the clearing journal through a receipt of ours.

Shared by creating a payout's booking (services.py) and by posting it (posting.py), which
recomputes the facts first: a payout's payments may be booked after the payout itself.
"""

from __future__ import annotations

from datetime import timedelta

from gocardless.models import Payment, Payout

from . import rules
from .models import Booking, PlanMatchState, PlanPaymentMatch, Rule

# A payout's payments may be processed after the payout itself (webhooks in other batches,
# reordered): wait this long for their receipts before booking them as not ours.
RECEIPTS_GRACE = timedelta(hours=1)


def receipted_payments(*, payout) -> set[str]:
    """Payments in the payout whose money entered the clearing journal through a receipt.

    A receipt that took a plan payment out of THIS payout's suspense line
    (``facts["from_suspense"]``, docs/subscriptions.md) does not count: the payout's entry
    keeps that line, the receipt moved it on."""
    payment_ids = payout_payment_ids(payout)
    return {
        gocardless_id
        for gocardless_id, facts in Booking.objects.filter(
            tenant_id=payout.tenant_id, rule=Rule.RECEIPT, gocardless_id__in=payment_ids
        ).values_list("gocardless_id", "facts")
        if (facts or {}).get("from_suspense") != payout.gocardless_id
    }


def payout_payment_ids(payout) -> set[str]:
    """The payments in a payout: from its lines, or, when GoCardless no longer gives them
    (410 Gone), the payments that name it."""
    if rules.payout_lines_gone(payout):
        return {payment_id for payment_id, _ in rules.payout_payments_named(payout)}
    return set(payout.items.exclude(payment_id="").values_list("payment_id", flat=True))


def payout_facts_refresh(*, booking: Booking, now) -> str | None:
    """Before posting a payout: recompute which of its payments were receipted (they may
    have been booked after the payout was). Returns a reason to wait, or None to post."""
    payout = Payout.objects.filter(
        tenant_id=booking.tenant_id, gocardless_id=booking.gocardless_id
    ).first()
    if payout is None or not (payout.items.exists() or rules.payout_lines_gone(payout)):
        return None  # keep the facts captured when it was paid
    owned = receipted_payments(payout=payout)
    unreceipted = Payment.objects.filter(
        tenant_id=booking.tenant_id, gocardless_id__in=payout_payment_ids(payout) - owned
    )
    # Plan payments matched to an invoice are waited for like ours (their receipt may be
    # processed after the payout); unmatched ones go to suspense at once.
    matched = set(
        PlanPaymentMatch.objects.filter(
            payment__in=unreceipted, state=PlanMatchState.MATCHED
        ).values_list("payment__gocardless_id", flat=True)
    )
    # ... except one whose receipt takes it out of this payout's suspense line.
    moved = set(
        Booking.objects.filter(
            tenant_id=booking.tenant_id, rule=Rule.RECEIPT, gocardless_id__in=matched
        ).values_list("gocardless_id", flat=True)
    )
    waiting = [
        p.gocardless_id
        for p in unreceipted
        if rules.payment_owner(p.metadata) is not None or p.gocardless_id in matched - moved
    ]
    if waiting and booking.created_at > now - RECEIPTS_GRACE:
        return f"waiting for the receipts of {', '.join(sorted(waiting))}"
    booking.facts = rules.payout_facts(payout, owned_payments=owned)
    return None
