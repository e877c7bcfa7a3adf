"""Approving a preview: a live run that submits exactly what the preview showed.

The live run evaluates what the preview evaluated and collects a previewed line only if it
still evaluates to the same amount, currency, mandate, instalments and due date, on the
previewed charge date (``previews.plans_restrict_to_preview``); anything else is listed as
*not in the preview* or *changed since the preview*. Approving twice, a superseded preview,
or with collection switched off is refused. When the live run could not start, the preview
goes back to awaiting approval (or superseded, if a newer one exists).

From the admin, approval is ``approval_queue``: in one transaction the preview is approved
(re-checked under its row lock) and its live run stored ``queued`` (the tenant's one live run:
refused, and the approval with it, while another is queued or running); the task carries it
out with ``approval_carry_out``. ``run_approve`` does both in this process (the demo, tests).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from reconciliation.collection.live import live_run_execute_queued, live_run_queue, run_live
from reconciliation.collection.models import CollectionRun, RunKind, RunState, RunTrigger
from reconciliation.collection.run_records import RunRefused
from tenants.models import CollectionMode


def _preview_lock_approved(*, preview: CollectionRun, user) -> CollectionRun:
    """Mark the preview approved under a row lock; a second click is refused here."""
    with transaction.atomic():
        locked = CollectionRun.objects.select_for_update().get(pk=preview.pk)
        if locked.kind != RunKind.PREVIEW or locked.state != RunState.AWAITING_APPROVAL:
            raise RunRefused(
                f"Run #{locked.pk} is {locked.get_state_display().lower()}, not awaiting approval"
            )
        tenant = locked.tenant
        if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
            # Switching collection off stops everything, an approval of an older preview too.
            raise RunRefused(f"Collection is off for {tenant}")
        locked.state = RunState.APPROVED
        locked.approved_by, locked.approved_at = user, timezone.now()
        locked.save(update_fields=["state", "approved_by", "approved_at"])
        audit_record(
            actor=Actor.for_user(user),
            action="collection.preview_approved",
            tenant=locked.tenant,
            obj=locked,
            after={"to_collect": locked.to_collect, "totals": locked.totals},
        )
    return locked


def _approval_undo(*, preview: CollectionRun, live: CollectionRun, user) -> None:
    """Nothing was submitted (another live run was active, GoCardless not connected): the
    approval did not happen, so the preview may be approved again."""
    newer = CollectionRun.objects.filter(
        tenant=preview.tenant, kind=RunKind.PREVIEW, pk__gt=preview.pk
    ).exists()
    back = RunState.SUPERSEDED if newer else RunState.AWAITING_APPROVAL
    CollectionRun.objects.filter(pk=preview.pk, state=RunState.APPROVED).update(
        state=back, approved_by=None, approved_at=None
    )
    audit_record(
        actor=Actor.for_user(user),
        action="collection.approval_not_run",
        tenant=preview.tenant,
        obj=preview,
        after={"state": back, "live_run": live.pk},
        message=f"Approval not carried out: {live.error or live.get_state_display()}",
    )


def approval_queue(*, preview: CollectionRun, user) -> CollectionRun:
    """Approve the preview and queue the live run that submits it; returns the queued run.
    ``RunRefused``: not awaiting approval (a second click), collection off, or another live
    run queued or running (then nothing is approved)."""
    with transaction.atomic():
        locked = _preview_lock_approved(preview=preview, user=user)
        return live_run_queue(
            tenant=locked.tenant,
            trigger=RunTrigger.APPROVAL,
            user=user,
            preview=locked,
            only_receivables=locked.only_receivables or None,
        )


def approval_carry_out(*, live: CollectionRun, client=None) -> bool:
    """The task's half: carry out the queued live run of an approval (False: it was not
    queued any more); when it sent nothing (GoCardless not connected, Exact's copy stale)
    the preview may be approved again."""
    if not live_run_execute_queued(run=live, client=client):
        return False
    if live.state in (RunState.REFUSED, RunState.FAILED) and not live.attempts.exists():
        _approval_undo(preview=live.preview, live=live, user=live.triggered_by)
    return True


def run_approve(*, preview: CollectionRun, user, client=None) -> CollectionRun:
    """Submit the preview exactly as shown (see the module docstring)."""
    locked = _preview_lock_approved(preview=preview, user=user)
    # The live run evaluates what the preview evaluated (all open invoices, or the preview's
    # own restriction): unchanged lines come out identical, and whatever would be collected
    # now but was not shown is listed as "not in the preview" instead of silently left out.
    live = run_live(
        tenant=locked.tenant,
        trigger=RunTrigger.APPROVAL,
        user=user,
        preview=locked,
        only_receivables=locked.only_receivables or None,
        client=client,
    )
    if live.state in (RunState.REFUSED, RunState.FAILED) and not live.attempts.exists():
        _approval_undo(preview=locked, live=live, user=user)
    return live
