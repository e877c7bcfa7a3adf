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

from django.db.models import QuerySet

from reconciliation.collection.models import AttemptState, CollectionAttempt

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
