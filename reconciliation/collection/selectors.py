"""Read-only answers about attempts that several screens ask: one definition each.

**Needs attention** (``attempts_needing_attention``) is the one definition the admin's state
filter (and the count on the runs list), the daily e-mail (``attention.py``), the demo's
summary and any dashboard use. An attempt needs attention when it stopped and nothing will
collect the invoice again without a person's decision: its state is *needs attention*
(charged back, disputed, refused by GoCardless, retries used up, payment cancelled at
GoCardless, mandate stopped with a payment in flight, invoice changed after submission).

Not *needs attention*, though a person may want to know about them:

- *retry scheduled* (``attempts_retry_scheduled``): the payment failed and the policy collects
  the invoice again on ``next_retry_on`` (in review mode: in that day's preview);
- *pending*: written before its payment was sent; the next live run resends it under the same
  key, whatever the last send's error was;
- *submitted* with a flag (GoCardless Success+ retries a failure itself);
- anything a person already cancelled or resolved (the flag stays, for history: the admin's
  *Flagged (any state)* filter lists those).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from reconciliation.collection.models import AttemptState, CollectionAttempt, CollectionItem

NEEDS_ATTENTION_STATES = (AttemptState.NEEDS_ATTENTION,)
# The admin's attempts list filtered to what needs attention (links in e-mails, the runs page).
NEEDS_ATTENTION_QUERY = f"state={AttemptState.NEEDS_ATTENTION}"


def _attempts(tenant, queryset: QuerySet | None) -> QuerySet:
    rows = CollectionAttempt.objects.all() if queryset is None else queryset
    return rows if tenant is None else rows.filter(tenant=tenant)


def attempts_needing_attention(*, tenant=None, queryset: QuerySet | None = None) -> QuerySet:
    """The attempts that need a person's decision (module docstring), of ``tenant`` (all
    tenants when None), narrowed from ``queryset`` when given (the admin's scoped list)."""
    return _attempts(tenant, queryset).filter(state__in=NEEDS_ATTENTION_STATES)


def attempts_retry_scheduled(*, tenant=None, queryset: QuerySet | None = None) -> QuerySet:
    """Failed attempts the policy collects again on their ``next_retry_on``: nothing to do."""
    return _attempts(tenant, queryset).filter(state=AttemptState.RETRY_SCHEDULED)


def open_when_collected(*, tenant, receivable_ids) -> dict[str, tuple[int, Decimal]]:
    """Per receivable guid (as a string): the attempt number of its latest attempt and the
    open amount in Exact that the run which made that attempt saw (its line's
    ``outstanding``). An invoice part-paid before it was collected was open for less than
    its amount: what is expected to be open after collection starts from here, not from
    the invoice amount (the month-end report). Receivables without such a line are left
    out."""
    latest: dict[str, CollectionAttempt] = {}
    for attempt in CollectionAttempt.objects.filter(
        tenant=tenant, receivable_exact_id__in=list(receivable_ids), run__isnull=False
    ).only("receivable_exact_id", "attempt_number", "run_id"):
        key = str(attempt.receivable_exact_id)
        if key not in latest or attempt.attempt_number > latest[key].attempt_number:
            latest[key] = attempt
    if not latest:
        return {}
    lines = CollectionItem.objects.filter(
        tenant=tenant,
        run_id__in={a.run_id for a in latest.values()},
        receivable_exact_id__in=[a.receivable_exact_id for a in latest.values()],
    ).values_list("run_id", "receivable_exact_id", "outstanding")
    seen = {(run_id, str(receivable)): outstanding for run_id, receivable, outstanding in lines}
    return {
        key: (attempt.attempt_number, seen[(attempt.run_id, key)])
        for key, attempt in latest.items()
        if (attempt.run_id, key) in seen
    }
