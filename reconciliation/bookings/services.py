"""Creating bookings from money events (called by the signal receivers, inside the event
transaction). Posting them is posting.py's job; its task is queued here by dotted path, so
this module never imports the tasks (or posting) modules."""

from __future__ import annotations

import logging
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from exact.locks import lock_row
from gocardless.actors import actor_for_event
from gocardless.models import Payment

from . import rules
from .company_posting import company_turn_queue
from .models import Booking, BookingSettings, PlanPaymentMatch, Rule
from .payout_facts import receipted_payments

logger = logging.getLogger(__name__)


def _settings_if_enabled(tenant) -> BookingSettings | None:
    """The tenant's settings when bookings are on; None = create no bookings. A tenant turns
    bookings on deliberately: history from before that is never booked behind its back."""
    return BookingSettings.objects.filter(tenant=tenant, enabled=True).first()


def _event_date(event, fallback: date | None = None) -> date:
    created = getattr(event, "created_at", None)
    if created is not None:
        return created.date()
    return fallback or timezone.now().date()


def booking_create(
    *,
    tenant,
    rule: str,
    gocardless_id: str,
    facts: dict,
    currency: str,
    amount_minor: int,
    booking_date: date,
    sequence: int = 1,
    after: Booking | None = None,
    event=None,
) -> Booking:
    """Create the booking for (tenant, rule, id, sequence) unless it exists; queue its post
    after commit. Idempotent: a replay returns the existing row and queues nothing."""
    key = f"{rule}:{gocardless_id}" + (f":{sequence}" if rule in SEQUENCED else "")
    existing = Booking.objects.filter(tenant=tenant, key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            booking = Booking.objects.create(
                tenant=tenant,
                key=key,
                rule=rule,
                gocardless_id=gocardless_id,
                sequence=sequence,
                reference=Booking.new_reference(),
                facts=facts,
                currency=currency,
                amount_minor=amount_minor,
                booking_date=booking_date,
                after=after,
            )
    except IntegrityError:
        # Another transaction created it first (unique key): that one is the booking.
        return Booking.objects.get(tenant=tenant, key=key)
    audit_record(
        actor=_actor(event),
        action="booking.created",
        tenant=tenant,
        obj=booking,
        after={"key": key, "state": booking.state, "amount_minor": amount_minor},
        message=f"{booking.get_rule_display()} for {gocardless_id}"
        + (f" (event {event.event_id})" if event is not None else ""),
    )
    transaction.on_commit(
        lambda: booking_post_enqueue(booking_pk=booking.pk, tenant_id=booking.tenant_id)
    )
    return booking


def booking_post_enqueue(*, booking_pk: int, tenant_id: int) -> None:
    """Queue the post of a new booking (called after the event transaction commits): its
    company's turn, unless one is queued and not started yet, which will post this booking
    too (company_posting.company_turn_queue). Should the broker be down, the booking stays
    pending and the sweep posts it: unlike ``core.queue.enqueue_on_commit``, a queueing
    error must not reach the event pipeline, whose transaction has already committed."""
    try:
        company_turn_queue(tenant_id=tenant_id)
    except Exception:
        logger.warning(
            "booking %s: could not queue its post; the sweep will", booking_pk, exc_info=True
        )


SEQUENCED = {Rule.RECEIPT, Rule.REVERSAL, Rule.PAYOUT_BOUNCED}


def _actor(event) -> Actor:
    return actor_for_event(event, without_event="bookings")


def _count(tenant, rule: str, gocardless_id: str) -> int:
    return Booking.objects.filter(tenant=tenant, rule=rule, gocardless_id=gocardless_id).count()


def payment_owner_of(payment: Payment | None) -> dict | None:
    """Whose invoice ``payment`` pays: our metadata (the collection engine's payments), or
    the invoice a subscription / instalment payment was matched to (plan_matching.py)."""
    if payment is None:
        return None
    owner = rules.payment_owner(payment.metadata)
    if owner is None and (payment.subscription_id or payment.instalment_schedule_id):
        owner = rules.plan_owner(PlanPaymentMatch.objects.filter(payment=payment).first())
    return owner


def _suspense_payout(tenant, payment: Payment) -> str:
    """The payout whose booking put ``payment`` in the suspense account ("" = none).

    Decided under the payout booking's row lock, the lock its post takes to recompute which
    payments are ours: either that post ran first (the payment is in its ``foreign`` facts:
    the receipt moves the money out of suspense), or it runs after and finds the receipt
    (``receipted_payments`` then leaves the payment out of suspense). Never both, never
    neither."""
    if not payment.payout_id:
        return ""
    booked = Booking.objects.filter(
        tenant=tenant, rule=Rule.PAYOUT, gocardless_id=payment.payout_id
    ).first()
    if booked is None:
        return ""
    booked = lock_row(Booking, booked.pk)
    if payment.gocardless_id in (booked.facts.get("foreign") or {}):
        return booked.gocardless_id
    return ""


def receipt_book(*, tenant, payment: Payment, event, on: str) -> Booking | None:
    """Payment collected → receipt on the customer naming the invoice (closes the open item).

    Receipt n and reversal n pair up: a new receipt only when every earlier one was reversed,
    so a payment collected again after a late failure is booked again, a replay never is.
    A plan payment matched only after its payout booked it to suspense gets a receipt that
    also takes it out of suspense (``from_suspense``): still one receipt, exactly once.
    """
    settings = _settings_if_enabled(tenant)
    if settings is None or settings.receipt_on != on:
        return None
    owner = payment_owner_of(payment)
    if owner is None:
        return None  # not ours, nor a matched plan payment: reported, never booked
    receipts = _count(tenant, Rule.RECEIPT, payment.gocardless_id)
    if receipts != _count(tenant, Rule.REVERSAL, payment.gocardless_id):
        return None
    facts = rules.payment_facts(payment, owner, event=event)
    if owner.get("plan") and receipts == 0:
        suspense = _suspense_payout(tenant, payment)
        if suspense:
            facts["from_suspense"] = suspense
    booking = booking_create(
        tenant=tenant,
        rule=Rule.RECEIPT,
        gocardless_id=payment.gocardless_id,
        sequence=receipts + 1,
        facts=facts,
        currency=payment.currency,
        amount_minor=payment.amount,
        booking_date=payment.charge_date or _event_date(event),
        event=event,
    )
    if owner.get("plan"):
        PlanPaymentMatch.objects.filter(payment=payment).update(receipt=booking)
    return booking


def reversal_book(*, tenant, payment: Payment, event) -> Booking | None:
    """Failed (incl. late failure) or charged back after a receipt → reversal (reopens)."""
    if _settings_if_enabled(tenant) is None:
        return None
    receipts = Booking.objects.filter(
        tenant=tenant, rule=Rule.RECEIPT, gocardless_id=payment.gocardless_id
    ).order_by("-sequence")
    last = receipts.first()
    if last is None or _count(tenant, Rule.REVERSAL, payment.gocardless_id) >= last.sequence:
        return None  # never receipted (failed before collection) or already reversed
    return booking_create(
        tenant=tenant,
        rule=Rule.REVERSAL,
        gocardless_id=payment.gocardless_id,
        sequence=last.sequence,
        facts={**last.facts, **_cause(event)},
        currency=last.currency,
        amount_minor=last.amount_minor,
        booking_date=_event_date(event),
        after=last,
        event=event,
    )


def _cause(event) -> dict:
    details = getattr(event, "details", None) or {}
    return {
        "cause": details.get("cause", "") or getattr(event, "action", ""),
        "event": getattr(event, "event_id", ""),
    }


def payout_book(*, tenant, payout, event) -> list[Booking]:
    """Payout paid → fees, app fees and surcharges with VAT, and the net transfer out of the
    clearing journal (+ the bank side when a bank journal is configured)."""
    settings = _settings_if_enabled(tenant)
    if settings is None:
        return []
    facts = rules.payout_facts(payout, owned_payments=receipted_payments(payout=payout))
    paid_on = (
        payout.gocardless_created_at.date() if payout.gocardless_created_at else _event_date(event)
    )
    made = [
        booking_create(
            tenant=tenant,
            rule=Rule.PAYOUT,
            gocardless_id=payout.gocardless_id,
            facts=facts,
            currency=payout.currency,
            amount_minor=payout.amount,
            booking_date=paid_on,
            event=event,
        )
    ]
    if settings.bank_journal_code:
        made.append(
            booking_create(
                tenant=tenant,
                rule=Rule.PAYOUT_BANK,
                gocardless_id=payout.gocardless_id,
                facts=facts,
                currency=payout.currency,
                amount_minor=payout.amount,
                booking_date=payout.arrival_date or paid_on,
                after=made[0],
                event=event,
            )
        )
    return made


def payout_bounce_book(*, tenant, payout, event) -> Booking | None:
    if _settings_if_enabled(tenant) is None:
        return None
    booked = Booking.objects.filter(
        tenant=tenant, rule=Rule.PAYOUT, gocardless_id=payout.gocardless_id
    ).first()
    if booked is None:
        return None
    bank_side = Booking.objects.filter(
        tenant=tenant, rule=Rule.PAYOUT_BANK, gocardless_id=payout.gocardless_id
    ).exists()
    made = booking_create(
        tenant=tenant,
        rule=Rule.PAYOUT_BOUNCED,
        gocardless_id=payout.gocardless_id,
        facts={**booked.facts, "side": "clearing"},
        currency=booked.currency,
        amount_minor=booked.amount_minor,
        booking_date=_event_date(event),
        after=booked,
        event=event,
    )
    if bank_side:
        # The bank side said the money arrived; it did not: take it out of the bank again.
        booking_create(
            tenant=tenant,
            rule=Rule.PAYOUT_BOUNCED,
            gocardless_id=payout.gocardless_id,
            sequence=2,
            facts={**booked.facts, "side": "bank"},
            currency=booked.currency,
            amount_minor=booked.amount_minor,
            booking_date=_event_date(event),
            after=made,
            event=event,
        )
    return made


def _refund_owner(tenant, refund):
    payment = Payment.objects.filter(tenant=tenant, gocardless_id=refund.payment_id).first()
    return payment, payment_owner_of(payment)


def refund_book(*, tenant, refund, event) -> Booking | None:
    """Refund paid (or settled) → the money leaves the GoCardless balance to the customer."""
    if _settings_if_enabled(tenant) is None:
        return None
    payment, owner = _refund_owner(tenant, refund)
    if owner is None:
        return None
    return booking_create(
        tenant=tenant,
        rule=Rule.REFUND,
        gocardless_id=refund.gocardless_id,
        facts=rules.refund_facts(refund, payment, owner, event=event),
        currency=refund.currency,
        amount_minor=refund.amount,
        booking_date=_event_date(event),
        event=event,
    )


def refund_return_book(*, tenant, refund, event) -> Booking | None:
    """Refund failed / funds returned after it was booked → the money comes back."""
    if _settings_if_enabled(tenant) is None:
        return None
    booked = Booking.objects.filter(
        tenant=tenant, rule=Rule.REFUND, gocardless_id=refund.gocardless_id
    ).first()
    if booked is None:
        return None  # never left the balance as far as we booked: nothing to undo
    return booking_create(
        tenant=tenant,
        rule=Rule.REFUND_RETURNED,
        gocardless_id=refund.gocardless_id,
        facts=booked.facts,
        currency=booked.currency,
        amount_minor=booked.amount_minor,
        booking_date=_event_date(event),
        after=booked,
        event=event,
    )
