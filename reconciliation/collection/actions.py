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
from gocardless import errors
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.live import run_live
from reconciliation.collection.models import AttemptState, CollectionAttempt, RunTrigger


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
    return CollectionAttempt.objects.select_for_update().select_related("tenant").get(pk=attempt.pk)


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
