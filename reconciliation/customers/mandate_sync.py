"""Mandate events → the link and the collection engine (called by the signal receivers,
inside GoCardless event processing).

Find the link the mandate belongs to, move it to the newest usable mandate, stop or resume
collection, and *request* the reflection into Exact (exact_reflection.py, run as a task).
A completed hosted page links the customer and mandate and queues the customer's refresh
(customer_refresh.py). No provider call happens here.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from core.audit import Actor, audit_record
from core.queue import enqueue_on_commit
from gocardless.actors import actor_for_event
from gocardless.models import BillingRequest, Customer, Mandate
from reconciliation.customers.links import (
    exact_snapshot,
    link_resume,
    link_snapshot,
    link_stop,
    mandate_best,
    reflection_request,
)
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    CustomerLink,
    InvitationState,
    LinkState,
    MandateInvitation,
    MatchedBy,
)
from reconciliation.customers.selectors import METADATA_KEY

logger = logging.getLogger(__name__)

STOP_REASONS = {
    "cancelled": "mandate_cancelled",
    "failed": "mandate_failed",
    "expired": "mandate_expired",
    "blocked": "mandate_blocked",
}


def _event_ref(event) -> str:
    return f"event {event.event_id} ({event.resource_type}.{event.action})" if event else ""


# --- finding the link ---------------------------------------------------------------------
def link_for_mandate(*, tenant, mandate: Mandate) -> CustomerLink | None:
    """By the mandate itself, then by its customer, then by our metadata on the mandate."""
    links = CustomerLink.objects.filter(tenant=tenant).exclude(state=LinkState.UNLINKED)
    link = links.filter(mandate=mandate).first()
    if link is None and mandate.customer_id:
        link = links.filter(gocardless_customer__gocardless_id=mandate.customer_id).first()
    if link is None and (mandate.metadata or {}).get(METADATA_KEY):
        link = links.filter(
            exact_account_guid=mandate.metadata[METADATA_KEY], state=LinkState.MATCHED
        ).first()
    return link


# --- signal handlers ----------------------------------------------------------------------
def mandate_usable(*, tenant, mandate: Mandate, event=None) -> CustomerLink | None:
    """mandate_active / mandate_reinstated: collect with this mandate; reflect 'active'."""
    link = link_for_mandate(tenant=tenant, mandate=mandate)
    if link is None or link.state != LinkState.MATCHED:
        return None
    actor = actor_for_event(event)
    current = link.mandate
    # Move to this mandate unless we already collect with another *active* one.
    if current is None or (current.pk != mandate.pk and current.status != "active"):
        before = link_snapshot(link)
        link.mandate = mandate
        link.save(update_fields=["mandate", "updated_at"])
        audit_record(
            actor=actor,
            action="customerlink.mandate_active",
            tenant=tenant,
            obj=link,
            before={"mandate": before["mandate"]},
            after={"mandate": mandate.gocardless_id, "status": mandate.status},
            message=f"mandate {mandate.gocardless_id} is {mandate.status}; {_event_ref(event)}",
        )
    if link.stop_reason:
        link_resume(link=link, actor=actor, message=f"mandate {mandate.gocardless_id} usable")
    else:
        reflection_request(link=link)
    return link


def mandate_stopped(*, tenant, mandate: Mandate, event=None) -> CustomerLink | None:
    """cancelled / failed / expired / blocked: switch to another usable mandate, else stop."""
    if event is not None and event.action == "replaced":
        return None  # handled by mandate_replaced_handle (the status signal comes first)
    if ((mandate.raw or {}).get("links") or {}).get("new_mandate"):
        return None
    link = link_for_mandate(tenant=tenant, mandate=mandate)
    if link is None or link.state != LinkState.MATCHED:
        return None
    if link.mandate_id is not None and link.mandate_id != mandate.pk:
        return link  # not the one we collect with; the link is unaffected
    actor = actor_for_event(event)
    other = mandate_best(tenant=tenant, customer_gocardless_id=mandate.customer_id)
    if other is not None and other.pk != mandate.pk:
        before = link_snapshot(link)
        link.mandate = other
        link.save(update_fields=["mandate", "updated_at"])
        audit_record(
            actor=actor,
            action="customerlink.mandate_switched",
            tenant=tenant,
            obj=link,
            before={"mandate": before["mandate"]},
            after={"mandate": other.gocardless_id},
            message=f"mandate {mandate.gocardless_id} {mandate.status}; another usable mandate "
            f"takes over; {_event_ref(event)}",
        )
        reflection_request(link=link)
        return link
    link.mandate = mandate
    link_stop(
        link=link,
        reason=STOP_REASONS.get(mandate.status, f"mandate_{mandate.status}"),
        message=f"mandate {mandate.gocardless_id} is {mandate.status}"
        + (f" ({(event.details or {}).get('cause', '')})" if event is not None else "")
        + f"; collection stopped; {_event_ref(event)}",
        actor=actor,
    )
    return link


def mandate_replaced_handle(*, tenant, mandate: Mandate, event=None) -> CustomerLink | None:
    """The old mandate is replaced by links.new_mandate: collect with the new one."""
    new_id = ((event.links if event else {}) or {}).get("new_mandate") or (
        (mandate.raw or {}).get("links") or {}
    ).get("new_mandate")
    if not new_id:
        return None
    link = link_for_mandate(tenant=tenant, mandate=mandate)
    if link is None or link.state != LinkState.MATCHED:
        return None
    # The new mandate's own events fill this row; a placeholder now keeps the link exact.
    new, _ = Mandate.objects.get_or_create(
        tenant=tenant, gocardless_id=new_id, defaults={"customer_id": mandate.customer_id}
    )
    before = link_snapshot(link)
    link.mandate = new
    link.save(update_fields=["mandate", "updated_at"])
    audit_record(
        actor=actor_for_event(event),
        action="customerlink.mandate_replaced",
        tenant=tenant,
        obj=link,
        before={"mandate": before["mandate"]},
        after={"mandate": new_id},
        message=f"mandate {mandate.gocardless_id} replaced by {new_id}; {_event_ref(event)}",
    )
    reflection_request(link=link)
    return link


def mandate_transferred_handle(*, tenant, mandate: Mandate, event=None) -> CustomerLink | None:
    """The payer's bank moved the mandate to a new account: same mandate, noted on the link."""
    link = link_for_mandate(tenant=tenant, mandate=mandate)
    if link is None or link.mandate_id != mandate.pk:
        return None
    links = (event.links if event else {}) or {}
    audit_record(
        actor=actor_for_event(event),
        action="customerlink.mandate_transferred",
        tenant=tenant,
        obj=link,
        before={"customer_bank_account": links.get("previous_customer_bank_account", "")},
        after={"customer_bank_account": links.get("new_customer_bank_account", "")},
        message=f"mandate {mandate.gocardless_id} moved to a new bank account; collection "
        f"continues; {_event_ref(event)}",
    )
    return link


def billing_request_fulfilled(
    *, tenant, billing_request: BillingRequest, event=None
) -> MandateInvitation | None:
    """The payer completed the hosted page: invitation completed, link → customer/mandate."""
    invitation = (
        MandateInvitation.objects.select_related("link")
        .filter(tenant=tenant, billing_request_id=billing_request.gocardless_id)
        .order_by("-attempt")
        .first()
    )
    if invitation is None:
        return None
    actor = actor_for_event(event)
    link = invitation.link
    mandate = None
    if billing_request.mandate_id:
        mandate, _ = Mandate.objects.get_or_create(
            tenant=tenant,
            gocardless_id=billing_request.mandate_id,
            defaults={"customer_id": billing_request.customer_id},
        )
    _invitations_complete(tenant=tenant, billing_request=billing_request, actor=actor, event=event)
    if link.state == LinkState.UNLINKED:
        return invitation
    _link_from_billing_request(
        link,
        tenant=tenant,
        billing_request=billing_request,
        mandate=mandate,
        invitation=invitation,
        actor=actor,
    )
    # Fetch the new customer's details and tag it with our Exact id (a provider call: task).
    enqueue_on_commit(
        "reconciliation.customers.tasks.link_customer_refresh_task", link.pk, group="customers"
    )
    return invitation


def _invitations_complete(
    *, tenant, billing_request: BillingRequest, actor: Actor, event
) -> None:
    """Every open invitation on this billing request (re-issued flows share it) is done."""
    done = MandateInvitation.objects.filter(
        tenant=tenant,
        billing_request_id=billing_request.gocardless_id,
        state__in=[*OPEN_INVITATION_STATES, InvitationState.EXPIRED],
    )
    now = timezone.now()
    for row in done:
        previous = row.state
        row.state = InvitationState.COMPLETED
        row.completed_at = now
        row.mandate_gocardless_id = billing_request.mandate_id
        row.save(update_fields=["state", "completed_at", "mandate_gocardless_id", "updated_at"])
        audit_record(
            actor=actor,
            action="mandateinvitation.completed",
            tenant=tenant,
            obj=row,
            before={"state": previous},
            after={"state": row.state, "mandate": billing_request.mandate_id},
            message=f"payer completed the hosted page; billing request "
            f"{billing_request.gocardless_id} fulfilled; {_event_ref(event)}",
        )


def _link_from_billing_request(
    link: CustomerLink,
    *,
    tenant,
    billing_request: BillingRequest,
    mandate: Mandate | None,
    invitation: MandateInvitation,
    actor: Actor,
) -> None:
    """The link takes the billing request's customer and mandate (matched by invitation)."""
    customer = None
    if billing_request.customer_id:
        customer, _ = Customer.objects.get_or_create(
            tenant=tenant, gocardless_id=billing_request.customer_id
        )
    before = link_snapshot(link)
    if customer is not None and link.gocardless_customer_id != customer.pk:
        link.gocardless_customer = customer
    if mandate is not None:
        link.mandate = mandate
    if link.state != LinkState.MATCHED:
        link.state = LinkState.MATCHED
        link.matched_by = MatchedBy.INVITATION
        link.candidates = []
    if link.exact_account_id:
        link.pushed_snapshot = exact_snapshot(link.exact_account)
    link.save()
    after = link_snapshot(link)
    keys = [k for k in after if before.get(k) != after.get(k)]
    audit_record(
        actor=actor,
        action="customerlink.matched",
        tenant=tenant,
        obj=link,
        before={k: before.get(k) for k in keys},
        after={k: after[k] for k in keys},
        message=f"linked through invitation {invitation.pk} (billing request "
        f"{billing_request.gocardless_id})",
    )
