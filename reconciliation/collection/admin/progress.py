"""What the run page shows while a run is queued or running, and the JSON the shared script
``mlc/progress.js`` polls for it (its header has the contract)."""

from __future__ import annotations

from reconciliation.collection.admin.display import money_totals
from reconciliation.collection.models import CollectionRun, RunKind, RunState

UNDER_WAY = (RunState.QUEUED, RunState.RUNNING)


def run_state_words(run: CollectionRun) -> str:
    """The run's state as a person reads it, more exactly than the state's label while it
    is under way."""
    if run.state == RunState.QUEUED:
        if run.kind == RunKind.PREVIEW:
            return "Waiting for the task workers to prepare the preview"
        return "Waiting for the task workers to start sending"
    if run.state == RunState.RUNNING:
        if run.planned == 0 and run.submitted + run.errors == 0:
            return "Checking the open invoices"
        return "Sending payments to GoCardless"
    return run.get_state_display()


def run_progress(run: CollectionRun) -> dict:
    """``{"done": …, "fields": {name: text}, "value": n, "max": m}`` for ``mlc/progress.js``.
    ``value`` is the payments handled so far (sent or refused), ``max`` those the run sends."""
    handled = run.submitted + run.errors
    planned = max(run.planned, handled)
    if run.state == RunState.QUEUED or (run.state == RunState.RUNNING and not planned):
        sent = "Not started yet"
    else:
        sent = f"{run.submitted} of {planned}"
    return {
        "done": run.state not in UNDER_WAY,
        "fields": {
            "state": run_state_words(run),
            "sent": sent,
            "errors": str(run.errors),
            "money": money_totals(run.submitted_totals),
        },
        "value": handled,
        "max": max(planned, 1),
    }


def run_next_step(run: CollectionRun) -> str:
    """For a live run that ended without finishing its work: what a person does next (an
    approval's run puts its preview back to awaiting approval when it sent nothing)."""
    if run.kind != RunKind.LIVE or run.state not in (
        RunState.FAILED,
        RunState.REFUSED,
        RunState.ABANDONED,
    ):
        return ""
    preview = run.preview if run.preview_id else None
    if preview is not None and preview.state == RunState.AWAITING_APPROVAL:
        return "Nothing was sent; the preview can be approved again."
    if preview is not None and preview.state == RunState.SUPERSEDED:
        return "Nothing was sent; approve the newer preview."
    if run.state == RunState.ABANDONED:
        return "The next run resends what this one left unconfirmed, with the same keys."
    return "Use Collect now for a fresh run once the cause is fixed."
