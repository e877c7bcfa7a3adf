"""How attempts follow what happens to their payments and mandates at GoCardless.

- Payment confirmed / paid out → the attempt says so.
- Payment failed (also late, after confirmation) → the failure rules of its cause
  (failure_rules.py, docs/failures.md): a retry on a date, GoCardless Success+ retrying the
  same payment, or — retries used up, or not retried for that cause — a payment link to the
  customer (pay_links.py) when the rule and the company say so, else *needs attention*. The
  attempt records the rule that decided. A failure the customer disputes and every
  chargeback → *needs attention* (never retried automatically: collecting again what a
  customer disputed is how a connector loses a merchant's Direct Debit facility).
- Payment cancelled at GoCardless (not by us) → *needs attention*.
- Mandate cancelled / failed / expired / blocked → its in-flight attempts are flagged; a
  payment it cancelled, or a retry it made impossible, follows the rule of the mandate's
  cause (a payment link or *needs attention*).
- A payment made through a payment link → ``pay_links.pay_link_payment_changed``.

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
from reconciliation.collection.failure_rules import (
    NEVER_RETRIED,
    failure_decide,
    pay_links_enabled,
)
from reconciliation.collection.models import AttemptState, CollectionAttempt, FailureAction
from reconciliation.collection.pay_links import pay_link_payment_changed, pay_link_prepare
from reconciliation.customers.selectors import STOPPED_MANDATE_STATUSES

# States a payment event may still move (final states are left alone).
_LIVE_STATES = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)


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
    """The failure rules decide (failure_rules.py, docs/failures.md); the attempt records
    which rule it was."""
    tenant = attempt.tenant
    description = (details.get("description") or "")[:2000]
    decision = failure_decide(tenant=tenant, cause=cause, status=status)
    common = {
        "payment_status": status,
        "failure_cause": cause[:100],
        "failure_description": description,
        "decided_by": decision.rule[:300],
    }
    said = f"Payment {status} ({cause or 'no cause given'})"
    if status == "charged_back" or cause in NEVER_RETRIED:
        _set(
            attempt,
            actor,
            "collection.attempt_needs_attention",
            f"{said}: not retried automatically ({decision.rule})",
            state=AttemptState.NEEDS_ATTENTION,
            flag="Charged back by the customer" if status == "charged_back" else "Disputed",
            **common,
        )
        return
    if details.get("will_attempt_retry"):
        # GoCardless resubmits the same payment (Success+ was asked for when it was created);
        # the attempt stays with it whatever the rule says: a payment of ours beside it would
        # charge the customer twice.
        _set(
            attempt,
            actor,
            "collection.attempt_failed_success_plus",
            f"Payment failed ({cause}); GoCardless Success+ retries it",
            state=AttemptState.SUBMITTED,
            flag="Failed once; GoCardless Success+ retries it",
            **common,
        )
        return
    if (
        attempt.parts == 1
        and decision.action == FailureAction.RETRY
        and attempt.attempt_number <= decision.retry_times
    ):
        retry_on = tenant_today(tenant) + dt.timedelta(days=decision.retry_after_days)
        _set(
            attempt,
            actor,
            "collection.attempt_retry_scheduled",
            f"{said}; retry on {retry_on.isoformat()} ({decision.rule})",
            state=AttemptState.RETRY_SCHEDULED,
            next_retry_on=retry_on,
            **common,
        )
        return
    if attempt.parts > 1:
        why = "instalment failed"
    elif decision.action == FailureAction.RETRY:
        why = "retries used up"
    elif decision.action == FailureAction.SUCCESS_PLUS:
        why = "GoCardless will not retry"
    else:
        why = "not retried for this cause"
    _stopped(attempt, actor=actor, why=f"{said}; {why}", decision=decision, **common)


def _stopped(attempt: CollectionAttempt, *, actor: Actor, why: str, decision, **changes):
    """Nothing more is collected by Direct Debit: a payment link when the rule and the
    company say so (and the invoice is one payment), else *needs attention*."""
    if attempt.parts == 1 and decision.pay_link and pay_links_enabled(tenant=attempt.tenant):
        link = pay_link_prepare(attempt=attempt, rule=decision.rule, actor=actor)
        if link is not None:
            _set(
                attempt,
                actor,
                "collectionattempt.status_changed",
                f"{why}; a payment link is e-mailed to the customer ({decision.rule})",
                state=AttemptState.PAY_LINK_SENT,
                flag="",
                **changes,
            )
            return
        why = (
            f"{why} (no payment link: no e-mail address in Exact, the invoice no longer "
            "open there, or a link was sent before)"
        )
    _set(
        attempt,
        actor,
        "collection.attempt_needs_attention",
        f"{why} ({decision.rule})",
        state=AttemptState.NEEDS_ATTENTION,
        flag=f"Payment failed: {why.split('; ', 1)[-1]}"[:300]
        if why.startswith("Payment ")
        else why[:300],
        **changes,
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
    if _mandate_flagged_then_cancelled(attempt, status) and pay_links_enabled(
        tenant=attempt.tenant
    ):
        # The mandate's event came first and flagged it; now that GoCardless cancelled the
        # payment too, nothing will be collected: the mandate-gone rule applies.
        pass
    elif attempt.state not in _LIVE_STATES and not (
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
        if mandate in STOPPED_MANDATE_STATUSES:
            # The mandate is gone: the rule of the cause GoCardless gave decides whether the
            # customer gets a payment link.
            decision = failure_decide(tenant=attempt.tenant, cause=cause or "mandate_cancelled")
            _stopped(
                attempt,
                actor=actor,
                why=_mandate_why(mandate),
                decision=decision,
                payment_status=status,
                failure_cause=cause[:100],
                decided_by=decision.rule[:300],
            )
            return
        why = "Payment cancelled at GoCardless (not by this app)"
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
    details = {}
    if event is not None and event.action in ("failed", "charged_back", "late_failure_settled"):
        details = event.details or {}
    actor = actor_for_event(event, without_event="collection")
    attempt = attempt_for_payment(tenant=tenant, payment=payment)
    if attempt is None:
        # A payment a customer made through one of our payment links (pay_links.py), or
        # not a payment we created at all.
        pay_link_payment_changed(tenant=tenant, payment=payment, details=details, actor=actor)
        return
    attempt_payment_changed(attempt=attempt, status=payment.status, details=details, actor=actor)


def _mandate_why(status: str) -> str:
    return f"Mandate {sentence(status).lower()}: GoCardless cancels its pending payments"


def _mandate_flagged_then_cancelled(attempt: CollectionAttempt, status: str) -> bool:
    return (
        status == "cancelled"
        and attempt.state == AttemptState.NEEDS_ATTENTION
        and attempt.payment_status != "cancelled"
        and attempt.flag.startswith("Mandate ")
        and attempt.flag.endswith("GoCardless cancels its pending payments")
    )


def mandate_stopped_handle(*, tenant, mandate, event) -> int:
    """Flag the in-flight attempts of a mandate that can no longer be charged.

    GoCardless cancels the mandate's pending payments too; whichever event is processed
    first, the attempt ends up in *needs attention* naming the mandate as the reason, or —
    when the failure rules and the company say so — with a payment link to the customer
    (a retry that was scheduled can no longer be collected: the mandate is gone).
    """
    from django.db.models import Q

    flagged = 0
    why = _mandate_why(mandate.status)
    actor = actor_for_event(event, without_event="collection")
    cause = str(((getattr(event, "details", None) or {}).get("cause")) or "mandate_cancelled")
    for attempt in CollectionAttempt.objects.filter(
        Q(state__in=(AttemptState.PENDING, AttemptState.SUBMITTED, AttemptState.RETRY_SCHEDULED))
        | Q(state=AttemptState.NEEDS_ATTENTION, payment_status="cancelled"),
        tenant=tenant,
        mandate_gocardless_id=mandate.gocardless_id,
    ).select_related("tenant"):
        if attempt.flag == why:
            continue
        if attempt.state == AttemptState.RETRY_SCHEDULED or (
            attempt.state == AttemptState.NEEDS_ATTENTION
        ):
            # Its payment already failed or was cancelled: nothing is in flight any more.
            decision = failure_decide(tenant=tenant, cause=cause)
            _stopped(
                attempt,
                actor=actor,
                why=why,
                decision=decision,
                next_retry_on=None,
                decided_by=decision.rule[:300],
            )
            flagged += 1
            continue
        _set(
            attempt,
            actor,
            "collection.attempt_needs_attention",
            f"Mandate {mandate.gocardless_id} {mandate.status}",
            state=AttemptState.NEEDS_ATTENTION,
            flag=why,
        )
        flagged += 1
    return flagged
