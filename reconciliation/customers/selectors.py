"""Read-only questions about customer links (the collection engine uses these)."""

from __future__ import annotations

from django.db.models import QuerySet

from reconciliation.customers.models import CustomerLink, LinkState

# The metadata key under which GoCardless customers, mandates and billing requests carry our
# Exact account id (written by invitations, read by matching and by mandate events).
METADATA_KEY = "exact_account"

# Mandate statuses GoCardless accepts payments on (API notes §5.4).
USABLE_MANDATE_STATUSES = ("pending_customer_approval", "pending_submission", "submitted", "active")
STOPPED_MANDATE_STATUSES = ("cancelled", "failed", "expired", "blocked", "consumed")


def customer_collectable(*, link: CustomerLink) -> bool:
    """May the collection engine create a payment for this customer now?

    Matched, a usable mandate, no recorded stop, and the Exact account still exists and is
    not blocked. The engine calls this right before creating each payment.
    """
    if link.state != LinkState.MATCHED or link.stop_reason:
        return False
    if link.mandate_id is None or link.mandate.status not in USABLE_MANDATE_STATUSES:
        return False
    account = link.exact_account
    return account is not None and not account.blocked


def links_collectable(*, tenant) -> QuerySet[CustomerLink]:
    """The same rule as ``customer_collectable``, as a queryset (for selecting a run)."""
    return CustomerLink.objects.filter(
        tenant=tenant,
        state=LinkState.MATCHED,
        stop_reason="",
        mandate__status__in=USABLE_MANDATE_STATUSES,
        exact_account__isnull=False,
        exact_account__blocked=False,
    ).select_related("exact_account", "mandate", "gocardless_customer")


def link_for_account(*, tenant, account) -> CustomerLink | None:
    # One row per Exact account (services keep it so); the newest wins if history differs.
    return (
        CustomerLink.objects.filter(tenant=tenant, exact_account_guid=account.exact_id)
        .order_by("-pk")
        .first()
    )
