"""Creating the payment for an attempt, safely against crashes and repeats.

The order is what makes a double charge impossible:

1. ``attempts_write`` commits the attempt row (state *pending*, with its unique key and the
   ``Idempotency-Key`` derived from it) before anything is sent;
2. ``attempt_submit`` sends the create with that key;
3. the answer is saved on the attempt.

A process killed between 1 and 3 leaves a *pending* attempt; the next live run resubmits it
with the same key, and GoCardless answers with the payment it already made (the client checks
metadata, amount and currency match before adopting it). Nothing is ever sent under a new key
for the same attempt.

A pending attempt resumed days later may carry a charge date GoCardless no longer accepts;
``attempt_redate`` moves it to the earliest date it does accept before the resend. That is
safe with the same key: if the first send did create the payment, GoCardless answers 409 with
it (its original date stands, and the adoption check does not compare dates); if it did not,
the payment is created on the new date instead of being refused.
"""

from __future__ import annotations

import hashlib
import logging

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_date

from core.audit import Actor, audit_entry_build
from core.models import AuditEntry
from core.money import to_minor_units
from gocardless import errors
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.charge_dates import earliest_charge_date
from reconciliation.collection.models import AttemptState, CollectionAttempt
from reconciliation.collection.reactions import attempt_payment_changed

logger = logging.getLogger(__name__)

# Payment statuses → attempt state, for a payment we adopt or refresh.
_STATE_FOR_STATUS = {
    "pending_customer_approval": AttemptState.SUBMITTED,
    "pending_submission": AttemptState.SUBMITTED,
    "submitted": AttemptState.SUBMITTED,
    "confirmed": AttemptState.CONFIRMED,
    "paid_out": AttemptState.PAID_OUT,
}


def attempt_key(*, receivable_exact_id, attempt_number: int, part: int = 0) -> str:
    suffix = f".{part}" if part else ""
    return f"{receivable_exact_id}/{attempt_number}{suffix}"


def idempotency_key_for(*, tenant, key: str) -> str:
    """Deterministic from tenant + receivable + attempt (+ part); short and opaque."""
    digest = hashlib.sha256(f"{tenant.uuid}:{key}".encode()).hexdigest()[:40]
    return f"mlc-pay-{digest}"


def _attempt_rows(*, tenant, run, plan) -> list[CollectionAttempt]:
    """The attempt rows of one plan, unsaved: one per instalment, each with its own key."""
    parts = plan.part_amounts or [plan.amount]
    rows = []
    for index, amount in enumerate(parts, start=1):
        part = index if len(parts) > 1 else 0
        key = attempt_key(
            receivable_exact_id=plan.receivable_exact_id,
            attempt_number=plan.attempt_number,
            part=part,
        )
        rows.append(
            CollectionAttempt(
                tenant=tenant,
                run=run,
                receivable_exact_id=plan.receivable_exact_id,
                invoice_number=plan.invoice_number,
                account_exact_id=plan.account_exact_id,
                account_label=plan.account_label,
                attempt_number=plan.attempt_number,
                part=part,
                parts=len(parts),
                key=key,
                idempotency_key=idempotency_key_for(tenant=tenant, key=key),
                amount=amount,
                currency=plan.currency,
                charge_date=plan.charge_date,
                mandate_gocardless_id=plan.mandate_gocardless_id,
            )
        )
    return rows


def _created_entry(row: CollectionAttempt, *, tenant, actor: Actor) -> AuditEntry:
    return audit_entry_build(
        actor=actor,
        action="collection.attempt_created",
        tenant=tenant,
        obj=row,
        after={
            "key": row.key,
            "amount": str(row.amount),
            "currency": row.currency,
            "charge_date": row.charge_date.isoformat(),
            "mandate": row.mandate_gocardless_id,
        },
        message=f"Invoice {row.invoice_number}: payment about to be created",
    )


def _retried_mark(*, tenant, plan, actor: Actor) -> None:
    """The attempts this plan retries (every part waiting for its retry) are marked retried."""
    retried = CollectionAttempt.objects.filter(
        tenant=tenant,
        receivable_exact_id=plan.receivable_exact_id,
        state=AttemptState.RETRY_SCHEDULED,
    )
    with transaction.atomic():
        for earlier in retried.select_for_update():
            attempt_change(
                earlier,
                actor=actor,
                action="collection.attempt_retried",
                message=f"Retried by attempt {plan.attempt_number}",
                state=AttemptState.RETRIED,
            )


def attempts_write(*, tenant, run, plan, actor: Actor) -> list[CollectionAttempt]:
    """Commit the attempt rows for one plan (one per instalment) before any API call.

    Returns [] when another run already wrote this attempt (the unique key refused ours):
    that run owns it.
    """
    rows = _attempt_rows(tenant=tenant, run=run, plan=plan)
    try:
        with transaction.atomic():
            for row in rows:
                row.save()
            AuditEntry.objects.bulk_create(
                [_created_entry(row, tenant=tenant, actor=actor) for row in rows]
            )
    except IntegrityError:
        return []
    if plan.retry_of:
        _retried_mark(tenant=tenant, plan=plan, actor=actor)
    return rows


def _params(attempt: CollectionAttempt, *, success_plus: bool) -> dict:
    invoice = attempt.invoice_number
    description = f"Invoice {invoice}" if invoice is not None else "Invoice"
    if attempt.parts > 1:
        description += f" ({attempt.part}/{attempt.parts})"
    params = {
        "amount": to_minor_units(attempt.amount, attempt.currency),
        "currency": attempt.currency,
        "charge_date": attempt.charge_date.isoformat(),
        "description": description,
        "metadata": attempt.payment_metadata,
        "links": {"mandate": attempt.mandate_gocardless_id},
    }
    if success_plus:
        params["retry_if_possible"] = True
    return params


def attempt_redate(*, attempt: CollectionAttempt, mandate, today, actor: Actor) -> bool:
    """Move a pending attempt's charge date forward when it is earlier than GoCardless now
    accepts for its mandate (``mandate``: the mirror, or None when we have none). Returns
    whether it moved; audited."""
    if attempt.state != AttemptState.PENDING or attempt.charge_date is None or mandate is None:
        return False
    earliest = earliest_charge_date(
        scheme=mandate.scheme,
        today=today,
        next_possible=mandate.next_possible_charge_date,
        mandate_status=mandate.status,
    )
    if attempt.charge_date >= earliest:
        return False
    attempt_change(
        attempt,
        actor=actor,
        action="collection.attempt_redated",
        message=(
            f"Charge date {attempt.charge_date.isoformat()} can no longer be met for mandate "
            f"{mandate.gocardless_id}; resent for {earliest.isoformat()}"
        ),
        charge_date=earliest,
    )
    return True


def attempt_submit(*, attempt: CollectionAttempt, client, actor: Actor) -> str:
    """Send the attempt's payment (same key every time) and record the outcome.

    Returns the attempt's state afterwards. Raises ``errors.AuthError`` (the connection is
    unusable; the run stops) — everything else is recorded on the attempt.
    """
    if attempt.state != AttemptState.PENDING:
        return attempt.state
    # Counted with the outcome (one write per send, not two): a crash before that leaves the
    # count one short, which only makes a resumed attempt look like its first send.
    sends = attempt.send_count + 1
    params = _params(attempt, success_plus=attempt.tenant.use_success_plus)
    try:
        payment = client.payment_create(params=params, idempotency_key=attempt.idempotency_key)
    except errors.AuthError:
        raise
    except errors.RetryableError as exc:
        # Unknown outcome (timeout, 5xx, rate limit beyond patience): stay pending; the next
        # run resends the same key and adopts whatever GoCardless made.
        CollectionAttempt.objects.filter(pk=attempt.pk).update(
            last_error=str(exc)[:2000], send_count=sends
        )
        attempt.send_count = sends
        attempt.last_error = str(exc)
        logger.warning("payment for %s not confirmed yet: %s", attempt.key, exc)
        return attempt.state
    except errors.GoCardlessError as exc:
        # Refused (validation, invalid state, a different payment under our key): a person
        # decides. Nothing was created for this key, so nothing is in flight.
        attempt_change(
            attempt,
            actor=actor,
            action="collection.attempt_refused",
            message=f"GoCardless refused the payment: {exc}",
            send_count=sends,
            state=AttemptState.NEEDS_ATTENTION,
            flag=f"GoCardless refused the payment ({type(exc).__name__})"[:300],
            last_error=str(exc)[:2000],
        )
        return attempt.state
    status = payment.get("status", "")
    # The date GoCardless will charge, as it says: an adopted payment keeps the date it was
    # first created for, whatever this send asked.
    charged_on = parse_date(payment.get("charge_date") or "") or attempt.charge_date
    attempt_change(
        attempt,
        actor=actor,
        action="collection.payment_created",
        message=f"Payment {payment.get('id')} for invoice {attempt.invoice_number}",
        send_count=sends,
        charge_date=charged_on,
        state=_STATE_FOR_STATUS.get(status, AttemptState.SUBMITTED),
        payment_gocardless_id=payment.get("id", ""),
        payment_status=status,
        last_error="",
    )
    if status not in _STATE_FOR_STATUS:
        # Adopted long after the fact and already failed/cancelled: let the reactions decide
        # exactly as if the event had just arrived.
        attempt_payment_changed(attempt=attempt, status=status, details={}, actor=actor)
    return attempt.state
