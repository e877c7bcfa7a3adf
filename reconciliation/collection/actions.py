"""What finance staff do to an attempt: retry now, cancel, mark resolved.

Each is a keyword-only service the admin's actions call; each checks the attempt is in a state
where the action makes sense (``ActionRefused`` carries the message the person sees), and
each writes an audit entry naming the person.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.calendars import tenant_today
from core.display import money_display
from exact.models import ExactReceivable
from gocardless import errors
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.live import run_live
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    Decision,
    RunState,
    RunTrigger,
)


class ActionRefused(Exception):
    """The action cannot be taken on this attempt now; the message says why."""


RETRYABLE_STATES = (AttemptState.NEEDS_ATTENTION, AttemptState.RETRY_SCHEDULED)
CANCELLABLE_STATES = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.RETRY_SCHEDULED,
    AttemptState.NEEDS_ATTENTION,
)
RESOLVABLE_STATES = (
    AttemptState.NEEDS_ATTENTION,
    AttemptState.RETRY_SCHEDULED,
    AttemptState.CANCELLED,
)


def _locked(attempt: CollectionAttempt) -> CollectionAttempt:
    locked = (
        CollectionAttempt.objects.select_for_update().select_related("tenant").get(pk=attempt.pk)
    )
    if locked.state == AttemptState.PAY_LINK_SENT:
        # The customer may pay through the link at any moment: collecting, cancelling or
        # closing the attempt beside it could take the money twice or lose track of it.
        raise ActionRefused(
            f"{locked}: a payment link is open for this invoice; cancel it on the payment "
            "links screen first"
        )
    return locked


def _change(attempt, *, user, action: str, message: str, **changes) -> None:
    attempt_change(attempt, actor=Actor.for_user(user), action=action, message=message, **changes)


def attempt_retry_now(*, attempt: CollectionAttempt, user, client=None):
    """Collect the invoice again now (a new attempt, through the normal checks).

    Returns the live run that made the new attempt; its item says why if nothing was sent.
    """
    with transaction.atomic():
        attempt = _locked(attempt)
        # The person's click is the approval, so review mode does not stop it; an inactive
        # tenant (offboarded, or suspended by its administrators) does.
        if not attempt.tenant.is_active:
            raise ActionRefused(f"{attempt.tenant} is inactive; nothing is collected")
        if attempt.state not in RETRYABLE_STATES:
            raise ActionRefused(
                f"{attempt} is {attempt.get_state_display().lower()}; only failed attempts "
                "that need attention or wait for a retry can be retried now"
            )
        siblings = CollectionAttempt.objects.filter(
            tenant=attempt.tenant,
            receivable_exact_id=attempt.receivable_exact_id,
            attempt_number=attempt.attempt_number,
        ).exclude(state__in=(AttemptState.CONFIRMED, AttemptState.PAID_OUT))
        today = tenant_today(attempt.tenant)
        for row in siblings.select_for_update():
            _change(
                row,
                user=user,
                action="collection.attempt_retry_requested",
                message="Retry now",
                state=AttemptState.RETRY_SCHEDULED,
                next_retry_on=today,
            )
    return run_live(
        tenant=attempt.tenant,
        trigger=RunTrigger.RETRY,
        user=user,
        only_receivables=[attempt.receivable_exact_id],
        client=client,
    )


_SENT_STATES = (AttemptState.SUBMITTED, AttemptState.CONFIRMED, AttemptState.PAID_OUT)


def retry_not_sent_reason(*, run: CollectionRun, attempt: CollectionAttempt) -> str | None:
    """After *Retry now*: None when ``run`` sent a payment for ``attempt``'s invoice;
    otherwise why not, in words a person acts on (never a bare run state)."""
    invoice = f"invoice {attempt.invoice_number or '?'}"
    if run.state in (RunState.REFUSED, RunState.FAILED):
        if run.state == RunState.REFUSED:
            return "another collection run of this company was running; try again in a minute"
        return f"the run stopped before sending: {run.error or 'no reason was recorded'}"
    new = (
        CollectionAttempt.objects.filter(run=run, receivable_exact_id=attempt.receivable_exact_id)
        .order_by("-attempt_number", "part")
        .first()
    )
    if new is not None:
        if new.state in _SENT_STATES:
            return None
        if new.state == AttemptState.PENDING:
            return (
                f"GoCardless did not answer in time ({new.last_error or 'no answer'}); the "
                "payment stays pending and the next run sends it again under the same key"
            )
        # The error's words, without the technical tail (status=… type=… request_id=…).
        why = (new.last_error or new.flag or new.failure_cause).split(" status=")[0]
        if new.state == AttemptState.NEEDS_ATTENTION:
            return f"GoCardless refused the payment: {why or 'no reason given'}"
        return f"the new attempt is {new.get_state_display().lower()}" + (f": {why}" if why else "")
    item = run.items.filter(receivable_exact_id=attempt.receivable_exact_id).first()
    if item is not None and item.decision != Decision.COLLECT:
        reason = item.get_reason_display() if item.reason else "no reason recorded"
        return f"{invoice} was skipped: {reason.lower()}" + (
            f" ({item.detail})" if item.detail else ""
        )
    if item is not None:
        return (
            f"another run had already written attempt {attempt.attempt_number + 1} of "
            f"{invoice}; see that attempt"
        )
    receivable = ExactReceivable.objects.filter(
        tenant_id=run.tenant_id, exact_id=attempt.receivable_exact_id
    ).first()
    if receivable is None:
        return f"{invoice} is no longer open in Exact (not in the last sync)"
    if receivable.is_fully_paid or receivable.outstanding <= 0:
        return (
            f"{invoice} is paid in Exact (open amount "
            f"{money_display(receivable.outstanding, receivable.currency)} as last synced)"
        )
    return f"{invoice} was not evaluated by the run"


def attempt_cancel(*, attempt: CollectionAttempt, user, reason: str, client=None) -> None:
    """Stop collecting: cancel the payment at GoCardless if it is still cancellable."""
    from reconciliation.customers.config import gocardless_client_for

    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused("A reason is required to cancel an attempt")
    with transaction.atomic():
        attempt = _locked(attempt)
        if attempt.state not in CANCELLABLE_STATES:
            raise ActionRefused(f"{attempt} is {attempt.get_state_display().lower()}")
        if attempt.payment_gocardless_id and attempt.state in (
            AttemptState.PENDING,
            AttemptState.SUBMITTED,
        ):
            client = client or gocardless_client_for(tenant=attempt.tenant)
            if client is None:
                raise ActionRefused("GoCardless is not connected")
            try:
                client.payment_cancel(attempt.payment_gocardless_id)
            except (errors.InvalidStateError, errors.ValidationError) as exc:
                raise ActionRefused(
                    f"GoCardless did not cancel {attempt.payment_gocardless_id}: {exc.message}"
                ) from exc
        elif attempt.state == AttemptState.PENDING:
            raise ActionRefused(
                f"{attempt} may already have reached GoCardless; wait for the next run to "
                "confirm it, then cancel"
            )
        _change(
            attempt,
            user=user,
            action="collection.attempt_cancelled",
            message=reason,
            state=AttemptState.CANCELLED,
            resolution=reason,
            resolved_by=user,
            resolved_at=timezone.now(),
        )


def attempt_resolve(*, attempt: CollectionAttempt, user, reason: str) -> None:
    """A person has dealt with it (paid by bank transfer, written off, agreed a plan...)."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused("A reason is required to mark an attempt resolved")
    with transaction.atomic():
        attempt = _locked(attempt)
        if attempt.state not in RESOLVABLE_STATES:
            raise ActionRefused(f"{attempt} is {attempt.get_state_display().lower()}")
        _change(
            attempt,
            user=user,
            action="collection.attempt_resolved",
            message=reason,
            state=AttemptState.RESOLVED,
            resolution=reason,
            resolved_by=user,
            resolved_at=timezone.now(),
        )
