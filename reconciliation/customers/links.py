"""State changes of a CustomerLink. Every change is audited; nothing here calls a provider.

Provider work that follows a change (writing the mandate state into Exact, fetching a new
customer's details) is queued with ``enqueue_on_commit``.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.queue import enqueue_on_commit
from gocardless.models import Customer, Mandate
from reconciliation.customers.models import CustomerLink, LinkState, ReflectionState
from reconciliation.customers.selectors import USABLE_MANDATE_STATUSES
from reconciliation.customers.signals import collection_resumed, collection_stopped

SNAPSHOT_FIELDS = (
    "state",
    "matched_by",
    "gocardless_customer_id",
    "mandate_id",
    "candidates",
    "stop_reason",
)

_STATUS_RANK = {
    "active": 0,
    "submitted": 1,
    "pending_submission": 2,
    "pending_customer_approval": 3,
}


class LinkError(ValueError):
    """A request a person made that cannot be done (shown as an admin message)."""


def link_snapshot(link: CustomerLink) -> dict:
    data = {name: getattr(link, name) for name in SNAPSHOT_FIELDS}
    data["gocardless_customer"] = (
        link.gocardless_customer.gocardless_id if link.gocardless_customer_id else ""
    )
    data["mandate"] = link.mandate.gocardless_id if link.mandate_id else ""
    data.pop("gocardless_customer_id")
    data.pop("mandate_id")
    return data


def _audit(link: CustomerLink, *, actor: Actor, action: str, before: dict | None, message: str):
    after = link_snapshot(link)
    if before is not None:
        keys = [k for k in after if before.get(k) != after.get(k)]
        before, after = {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
    return audit_record(
        actor=actor,
        action=f"customerlink.{action}",
        tenant=link.tenant,
        obj=link,
        before=before,
        after=after,
        message=message,
    )


def exact_snapshot(account) -> dict:
    """The Exact fields we keep aligned at GoCardless (compared after every accounts sync)."""
    return {
        "name": account.name,
        "email": account.email,
        "address_line1": account.address_line1,
        "postcode": account.postcode,
        "city": account.city,
        "country": account.country,
    }


def link_ensure(*, tenant, account) -> CustomerLink:
    """The account's link, created as 'unmatched' when it has none."""
    link = (
        CustomerLink.objects.filter(tenant=tenant, exact_account_guid=account.exact_id)
        .order_by("-pk")
        .first()
    )
    if link is not None:
        if link.exact_account_id != account.pk:
            link.exact_account = account
            link.save(update_fields=["exact_account", "updated_at"])
        return link
    return CustomerLink.objects.create(
        tenant=tenant,
        exact_account=account,
        exact_account_guid=account.exact_id,
        exact_code=account.code,
        exact_name=account.name,
    )


def mandate_best(*, tenant, customer_gocardless_id: str) -> Mandate | None:
    """The customer's mandate to collect with: usable ones first (active best), newest first."""
    mandates = [
        m
        for m in Mandate.objects.filter(tenant=tenant, customer_id=customer_gocardless_id)
        if m.status in USABLE_MANDATE_STATUSES
    ]
    mandates.sort(
        key=lambda m: (
            _STATUS_RANK.get(m.status, 9),
            -(m.gocardless_created_at.timestamp() if m.gocardless_created_at else 0),
        )
    )
    return mandates[0] if mandates else None


def reflection_request(*, link: CustomerLink) -> None:
    """Ask for the mandate state to be written into Exact (after commit, as a task)."""
    CustomerLink.objects.filter(pk=link.pk).update(
        reflection_state=ReflectionState.PENDING, reflection_due_at=timezone.now()
    )
    link.reflection_state = ReflectionState.PENDING
    enqueue_on_commit(
        "reconciliation.customers.tasks.link_reflect_task", link.pk, group="customers"
    )


def link_set_customer(
    *,
    link: CustomerLink,
    customer: Customer,
    matched_by: str,
    actor: Actor,
    mandate: Mandate | None = None,
    confirmed: bool = False,
    message: str = "",
) -> CustomerLink:
    """Link to a GoCardless customer (and its best mandate); refuses a customer linked elsewhere."""
    if customer.tenant_id != link.tenant_id:
        raise LinkError("That GoCardless customer belongs to another company.")
    other = (
        CustomerLink.objects.filter(tenant=link.tenant, gocardless_customer=customer)
        .exclude(state=LinkState.UNLINKED)
        .exclude(pk=link.pk)
        .first()
    )
    if other is not None:
        raise LinkError(
            f"GoCardless customer {customer.gocardless_id} is already linked to {other}."
        )
    before = link_snapshot(link)
    was_collectable_mandate = link.mandate_id
    link.gocardless_customer = customer
    link.mandate = mandate or mandate_best(
        tenant=link.tenant, customer_gocardless_id=customer.gocardless_id
    )
    link.state = LinkState.MATCHED
    link.matched_by = matched_by
    link.candidates = []
    if confirmed and actor.user is not None:
        link.confirmed_by = actor.user
        link.confirmed_at = timezone.now()
    if link.exact_account_id:
        # Baseline for Exact → GoCardless: later Exact changes are pushed, not today's values.
        link.pushed_snapshot = exact_snapshot(link.exact_account)
    if link.stop_reason and link.mandate and link.mandate.status in USABLE_MANDATE_STATUSES:
        link.stop_reason, link.stopped_at = "", None
    link.save()
    _audit(
        link,
        actor=actor,
        action="confirmed" if confirmed else "matched",
        before=before,
        message=message or f"linked to {customer.gocardless_id} by {matched_by}",
    )
    if link.mandate_id or was_collectable_mandate:
        reflection_request(link=link)
    return link


def link_mark_ambiguous(
    *, link: CustomerLink, candidates: list[str], level: str, actor: Actor
) -> bool:
    candidates = sorted(candidates)
    if link.state == LinkState.AMBIGUOUS and link.candidates == candidates:
        return False
    before = link_snapshot(link)
    link.state = LinkState.AMBIGUOUS
    link.matched_by = level
    link.candidates = candidates
    link.save(update_fields=["state", "matched_by", "candidates", "updated_at"])
    _audit(
        link,
        actor=actor,
        action="ambiguous",
        before=before,
        message=f"{len(candidates)} GoCardless customers match by {level}: "
        f"{', '.join(candidates)}; waiting for a person to confirm",
    )
    return True


def link_confirm(*, link: CustomerLink, customer_gocardless_id: str, actor: Actor) -> CustomerLink:
    """A person picks one of the candidates of an ambiguous match."""
    if link.state != LinkState.AMBIGUOUS:
        raise LinkError(f"{link} is not waiting for a confirmation.")
    if customer_gocardless_id not in link.candidates:
        raise LinkError(f"{customer_gocardless_id} is not one of the candidates of {link}.")
    customer = Customer.objects.filter(
        tenant=link.tenant, gocardless_id=customer_gocardless_id
    ).first()
    if customer is None:
        raise LinkError(f"GoCardless customer {customer_gocardless_id} is no longer mirrored.")
    with transaction.atomic():
        return link_set_customer(
            link=link,
            customer=customer,
            matched_by=link.matched_by or "manual",
            actor=actor,
            confirmed=True,
            message=f"confirmed {customer_gocardless_id} out of {', '.join(link.candidates)}",
        )


def link_relink(*, link: CustomerLink, customer: Customer, actor: Actor) -> CustomerLink:
    """A person links the account to another GoCardless customer."""
    with transaction.atomic():
        previous = link.gocardless_customer.gocardless_id if link.gocardless_customer_id else ""
        return link_set_customer(
            link=link,
            customer=customer,
            matched_by="manual",
            actor=actor,
            confirmed=True,
            message=f"re-linked from {previous or 'nothing'} to {customer.gocardless_id}",
        )


def link_unlink(*, link: CustomerLink, actor: Actor) -> CustomerLink:
    """A person removes the link: no collection, and matching will not re-link it."""
    if link.state == LinkState.UNLINKED:
        raise LinkError(f"{link} is already unlinked.")
    with transaction.atomic():
        before = link_snapshot(link)
        had_mandate = link.mandate_id is not None
        link.state = LinkState.UNLINKED
        link.gocardless_customer = None
        link.mandate = None
        link.candidates = []
        link.matched_by = "manual"
        link.confirmed_by = actor.user if actor.user is not None else None
        link.confirmed_at = timezone.now()
        link.save()
        _audit(link, actor=actor, action="unlinked", before=before, message="unlinked")
        collection_stopped.send(
            sender=CustomerLink,
            tenant=link.tenant,
            link=link,
            reason="unlinked",
            message="the link was removed by a person",
        )
        if had_mandate:
            reflection_request(link=link)
    return link


def link_stop(*, link: CustomerLink, reason: str, message: str, actor: Actor) -> bool:
    """Stop collecting for this customer (idempotent per reason); tells the collection engine."""
    if link.stop_reason == reason:
        return False
    before = link_snapshot(link)
    link.stop_reason = reason
    link.stopped_at = timezone.now()
    link.save(update_fields=["stop_reason", "stopped_at", "mandate", "updated_at"])
    _audit(link, actor=actor, action="collection_stopped", before=before, message=message)
    collection_stopped.send(
        sender=CustomerLink, tenant=link.tenant, link=link, reason=reason, message=message
    )
    reflection_request(link=link)
    return True


def link_resume(*, link: CustomerLink, message: str, actor: Actor) -> bool:
    if not link.stop_reason:
        return False
    before = link_snapshot(link)
    link.stop_reason, link.stopped_at = "", None
    link.save(update_fields=["stop_reason", "stopped_at", "mandate", "updated_at"])
    _audit(link, actor=actor, action="collection_resumed", before=before, message=message)
    collection_resumed.send(sender=CustomerLink, tenant=link.tenant, link=link, message=message)
    reflection_request(link=link)
    return True
