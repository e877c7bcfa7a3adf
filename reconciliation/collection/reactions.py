"""How attempts follow what happens to their payments and mandates at GoCardless.

- Payment confirmed / paid out → the attempt says so.
- Payment failed (also late, after confirmation) → the tenant's retry policy: a retry on a
  date, or *needs attention* when retries are used up; with Success+ GoCardless retries and
  the attempt waits. A failure the customer disputes and every chargeback → *needs attention*
  (never retried automatically: collecting again what a customer disputed is how a connector
  loses a merchant's Direct Debit facility).
- Payment cancelled at GoCardless (not by us) → *needs attention*.
- Mandate cancelled / failed / expired / blocked → its in-flight attempts are flagged.

Receivers of GoCardless signals run inside the event-processing transaction: local writes
only here. The submission applies the same rules to a payment it adopts, so this module
depends on nothing that starts runs; invoices that change in Exact under a payment are
``invoice_changes``'s, the daily e-mail about *needs attention* is ``attention``'s.
"""

from __future__ import annotations

import datetime as dt

from core.audit import Actor
from core.calendars import tenant_today
from core.display import sentence
from gocardless.actors import actor_for_event
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.models import AttemptState, CollectionAttempt
from reconciliation.customers.selectors import STOPPED_MANDATE_STATUSES

# States a payment event may still move (final states are left alone).
_LIVE_STATES = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)
_NEVER_RETRIED = ("authorisation_disputed", "charged_back", "refund_requested")


def attempt_for_payment(*, tenant, payment) -> CollectionAttempt | None:
    """The attempt that created ``payment`` (a mirror row or the API's dict), if ours.

    By payment id, or — when a crash lost the id before we saved it — by the attempt key we
    put in the payment's metadata.
    """
    payment_id = payment["id"] if isinstance(payment, dict) else payment.gocardless_id
    metadata = (payment.get("metadata") if isinstance(payment, dict) else payment.metadata) or {}
    found = CollectionAttempt.objects.filter(
        tenant=tenant, payment_gocardless_id=payment_id
    ).first()
    if found is None and metadata.get("mlc_attempt"):
        found = CollectionAttempt.objects.filter(tenant=tenant, key=metadata["mlc_attempt"]).first()
        if found is not None and not found.payment_gocardless_id:
            # A crash lost the id between the create and our save: adopt the payment now.
            found.payment_gocardless_id = payment_id
            found.save(update_fields=["payment_gocardless_id", "updated_at"])
    return found


def _set(attempt: CollectionAttempt, actor: Actor, action: str, message: str, **changes):
    attempt_change(attempt, actor=actor, action=action, message=message, **changes)


def _failure(attempt: CollectionAttempt, *, cause: str, details: dict, actor: Actor, status):
    tenant = attempt.tenant
    description = (details.get("description") or "")[:2000]
    common = {"payment_status": status, "failure_cause": cause[:100]}
    if status == "charged_back" or cause in _NEVER_RETRIED:
        _set(
            attempt,
            actor,
            "collection.attempt_needs_attention",
            f"Payment {status} ({cause or 'no cause given'}): not retried automatically",
            state=AttemptState.NEEDS_ATTENTION,
            failure_description=description,
            flag="Charged back by the customer" if status == "charged_back" else "Disputed",
            **common,
        )
        return
    if tenant.use_success_plus and details.get("will_attempt_retry"):
        # GoCardless resubmits the same payment; the attempt stays with it.
        _set(
            attempt,
            actor,
            "collection.attempt_failed_success_plus",
            f"Payment failed ({cause}); GoCardless Success+ retries it",
            state=AttemptState.SUBMITTED,
            failure_description=description,
            flag="Failed once; GoCardless Success+ retries it",
            **common,
        )
        return
    if (
        attempt.parts == 1
        and not tenant.use_success_plus
        and (attempt.attempt_number <= tenant.retry_count)
    ):
        retry_on = tenant_today(tenant) + dt.timedelta(days=tenant.retry_spacing_days)
        _set(
            attempt,
            actor,
            "collection.attempt_retry_scheduled",
            f"Payment failed ({cause or 'no cause given'}); retry on {retry_on.isoformat()}",
            state=AttemptState.RETRY_SCHEDULED,
            next_retry_on=retry_on,
            failure_description=description,
            **common,
        )
        return
    why = (
        "instalment failed"
        if attempt.parts > 1
        else "retries used up"
        if not tenant.use_success_plus
        else "GoCardless will not retry"
    )
    _set(
        attempt,
        actor,
        "collection.attempt_needs_attention",
        f"Payment failed ({cause or 'no cause given'}); {why}",
        state=AttemptState.NEEDS_ATTENTION,
        failure_description=description,
        flag=f"Payment failed: {why}",
        **common,
    )


def _mandate_status(attempt: CollectionAttempt) -> str:
    from gocardless.models import Mandate

    return (
        Mandate.objects.filter(tenant=attempt.tenant, gocardless_id=attempt.mandate_gocardless_id)
        .values_list("status", flat=True)
        .first()
        or ""
    )


def attempt_payment_changed(
    *, attempt: CollectionAttempt, status: str, details: dict, actor: Actor
) -> None:
    """Apply a payment's new status (from a webhook/poll, or an adopted payment)."""
    if attempt.state not in _LIVE_STATES and not (
        attempt.state == AttemptState.RETRY_SCHEDULED and status == "charged_back"
    ):
        # Final or already handled by a person: record the status only.
        if attempt.payment_status != status:
            attempt.payment_status = status
            attempt.save(update_fields=["payment_status", "updated_at"])
        return
    cause = str(details.get("cause") or "")
    if status == "confirmed":
        _set(
            attempt,
            actor,
            "collection.attempt_confirmed",
            "Payment confirmed",
            state=AttemptState.CONFIRMED,
            payment_status=status,
        )
    elif status == "paid_out":
        _set(
            attempt,
            actor,
            "collection.attempt_paid_out",
            "Payment paid out",
            state=AttemptState.PAID_OUT,
            payment_status=status,
        )
    elif status in ("failed", "charged_back"):
        _failure(attempt, cause=cause, details=details, actor=actor, status=status)
    elif status == "cancelled":
        mandate = _mandate_status(attempt)
        why = (
            f"Mandate {sentence(mandate).lower()}: GoCardless cancels its pending payments"
            if mandate in STOPPED_MANDATE_STATUSES
            else "Payment cancelled at GoCardless (not by this app)"
        )
        _set(
            attempt,
            actor,
            "collection.attempt_needs_attention",
            why,
            state=AttemptState.NEEDS_ATTENTION,
            payment_status=status,
            failure_cause=cause[:100],
            flag=why,
        )
    elif attempt.state == AttemptState.PENDING and status:
        _set(
            attempt,
            actor,
            "collection.payment_created",
            "Payment found at GoCardless",
            state=AttemptState.SUBMITTED,
            payment_status=status,
        )


def payment_signal_handle(*, tenant, payment, event) -> None:
    """Receiver body for the payment status signals."""
    attempt = attempt_for_payment(tenant=tenant, payment=payment)
    if attempt is None:
        return  # not a payment we created
    details = {}
    if event is not None and event.action in ("failed", "charged_back", "late_failure_settled"):
        details = event.details or {}
    actor = actor_for_event(event, without_event="collection")
    attempt_payment_changed(attempt=attempt, status=payment.status, details=details, actor=actor)


def mandate_stopped_handle(*, tenant, mandate, event) -> int:
    """Flag the in-flight attempts of a mandate that can no longer be charged.

    GoCardless cancels the mandate's pending payments too; whichever event is processed
    first, the attempt ends up in *needs attention* naming the mandate as the reason.
    """
    from django.db.models import Q

    flagged = 0
    why = f"Mandate {sentence(mandate.status).lower()}: GoCardless cancels its pending payments"
    for attempt in CollectionAttempt.objects.filter(
        Q(state__in=(AttemptState.PENDING, AttemptState.SUBMITTED, AttemptState.RETRY_SCHEDULED))
        | Q(state=AttemptState.NEEDS_ATTENTION, payment_status="cancelled"),
        tenant=tenant,
        mandate_gocardless_id=mandate.gocardless_id,
    ).select_related("tenant"):
        if attempt.flag == why:
            continue
        _set(
            attempt,
            actor_for_event(event, without_event="collection"),
            "collection.attempt_needs_attention",
            f"Mandate {mandate.gocardless_id} {mandate.status}",
            state=AttemptState.NEEDS_ATTENTION,
            flag=why,
        )
        flagged += 1
    return flagged
