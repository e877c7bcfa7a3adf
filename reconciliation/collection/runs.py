"""Collection runs: where a run starts, and the names callers import.

- ``run_start`` (the schedule, an Exact webhook, *Collect now*): the tenant's mode decides —
  *review* stores a preview, *auto* collects at once.
- ``run_preview`` (``previews.py``) evaluates and stores what a run would do. It never calls
  GoCardless. In *review* mode it waits for approval (and supersedes the previous unapproved
  preview).
- ``run_approve`` (``approval.py``) submits exactly the approved preview: a live run
  restricted to the preview's *collect* lines, each collected only if it still evaluates to
  the same amount, currency, mandate and instalments, on the previewed charge date (or, if
  that date can no longer be met, not at all: "changed since the preview" — a fresh preview
  shows it).
- ``run_live`` (``live.py``; auto mode, *Retry now*, and approval) holds the tenant's
  live-run lock, first resubmits attempts a crashed run left *pending* (same keys), then
  writes each attempt before sending its payment.
"""

from __future__ import annotations

from reconciliation.collection.approval import run_approve
from reconciliation.collection.live import run_live
from reconciliation.collection.previews import run_preview
from reconciliation.collection.run_records import RunRefused
from tenants.models import CollectionMode

__all__ = ["RunRefused", "run_approve", "run_live", "run_preview", "run_start"]


def run_start(*, tenant, trigger: str, user=None, only_receivables=None, client=None):
    """What the schedule, a webhook and *Collect now* call: the tenant's mode decides."""
    if not tenant.is_active or tenant.collection_mode == CollectionMode.OFF:
        raise RunRefused(f"Collection is off for {tenant}")
    if tenant.collection_mode == CollectionMode.REVIEW:
        return run_preview(
            tenant=tenant, trigger=trigger, user=user, only_receivables=only_receivables
        )
    return run_live(
        tenant=tenant,
        trigger=trigger,
        user=user,
        only_receivables=only_receivables,
        client=client,
    )
