"""Mandate state → the link, the collection engine and Exact.

Event side (called by the signal receivers, inside GoCardless event processing): find the
link the mandate belongs to, move it to the newest usable mandate, stop or resume collection,
and *request* the reflection into Exact. No provider call happens here.

Exact side (``link_reflect_into_exact``, run as a task): make Exact agree with the link's
current state, per the tenant's settings — the account's payment condition (direct debit
while a mandate is active, the tenant's default once it stopped) and/or one
``cashflow/DirectDebitMandates`` record per GoCardless mandate reference (CancellationDate
set when it stopped or was replaced). The desired state is recomputed from the link every
run, so runs are idempotent and order does not matter; a failure is stored on the link and
retried with backoff by ``reflections_retry_due``. Audited either way.

Nothing is written for an inactive tenant (tenants/activity.py): the link keeps its
reflection state, attempts and due time, and the sweep after reactivation writes it once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.queue import enqueue_on_commit
from gocardless.actors import actor_for_event
from gocardless.models import BillingRequest, Customer, Mandate
from reconciliation.customers.config import customer_settings_for, exact_client_for
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
    ReflectionState,
)
from tenants.activity import inactive_tenants_log, of_active_tenants, tenant_skip

logger = logging.getLogger(__name__)

METADATA_KEY = "exact_account"
STOP_REASONS = {
    "cancelled": "mandate_cancelled",
    "failed": "mandate_failed",
    "expired": "mandate_expired",
    "blocked": "mandate_blocked",
}
REFLECTION_BACKOFF = (60, 300, 1800, 3600, 6 * 3600)


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
    # Every open invitation on this billing request (re-issued flows share it) is done.
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
    if link.state == LinkState.UNLINKED:
        return invitation
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
    # Fetch the new customer's details and tag it with our Exact id (a provider call: task).
    enqueue_on_commit(
        "reconciliation.customers.tasks.link_customer_refresh_task", link.pk, group="customers"
    )
    return invitation


def link_customer_refresh(*, link: CustomerLink, client=None) -> str:
    """Fill the customer mirror from GoCardless and put our Exact id in its metadata."""
    from gocardless import errors
    from gocardless.mirrors import mirror_upsert
    from gocardless.onboarding import customer_get, customer_metadata_set
    from reconciliation.customers.config import gocardless_client_for

    if link.gocardless_customer_id is None:
        return "no customer"
    if tenant_skip(link.tenant, job="customer refresh", what=f"link {link.pk}"):
        return "tenant inactive"
    client = client or gocardless_client_for(tenant=link.tenant)
    if client is None:
        return "gocardless not connected"
    customer_id = link.gocardless_customer.gocardless_id
    try:
        data = customer_get(client=client, customer_id=customer_id)
        metadata = dict(data.get("metadata") or {})
        wanted = str(link.exact_account_guid)
        if metadata.get(METADATA_KEY) != wanted and (METADATA_KEY in metadata or len(metadata) < 3):
            metadata[METADATA_KEY] = wanted
            data = customer_metadata_set(client=client, customer_id=customer_id, metadata=metadata)
    except errors.GoCardlessError as exc:
        logger.warning("customer refresh for link %s failed: %s", link.pk, exc)
        return f"failed: {exc}"
    with transaction.atomic():
        mirror_upsert(tenant=link.tenant, resource_type="customers", data=data)
    return "refreshed"


# --- Exact reflection ---------------------------------------------------------------------
def _desired_active(link: CustomerLink) -> bool:
    return (
        link.state == LinkState.MATCHED
        and not link.stop_reason
        and link.mandate_id is not None
        and link.mandate.status == "active"
    )


def _mandate_reference(link: CustomerLink) -> str:
    mandate = link.mandate
    if mandate.reference:
        return mandate.reference
    from gocardless.onboarding import mandate_get
    from reconciliation.customers.config import gocardless_client_for

    client = gocardless_client_for(tenant=link.tenant)
    if client is None:
        raise RuntimeError("GoCardless is not connected: cannot read the mandate reference")
    return mandate_get(client=client, mandate_id=mandate.gocardless_id).get("reference") or ""


def _reflect(link: CustomerLink, settings, api) -> list[str]:
    """Bring Exact in line; returns what was written. Updates ``link.reflected`` as it goes."""
    from exact import account_writes

    account_id = str(link.exact_account_guid)
    reflected = dict(link.reflected or {})
    records: dict = dict(reflected.get("mandates") or {})
    done: list[str] = []
    active = _desired_active(link)
    today = timezone.localdate()

    if settings.reflect_payment_condition:
        current = reflected.get("payment_condition") or (
            link.exact_account.payment_condition if link.exact_account_id else ""
        )
        target = ""
        if active and settings.direct_debit_condition:
            target = settings.direct_debit_condition
        elif (
            not active
            and settings.default_payment_condition
            and (current == settings.direct_debit_condition)
        ):
            target = settings.default_payment_condition
        mirrored = link.exact_account.payment_condition if link.exact_account_id else ""
        # Write when we have not, or when Exact (as last synced) shows something else —
        # someone may have changed it by hand. A stale mirror costs one idempotent PUT.
        if target and (target != reflected.get("payment_condition") or mirrored != target):
            account_writes.account_payment_condition_set(
                api=api, account_id=account_id, condition=target
            )
            reflected["payment_condition"] = target
            link.reflected = {**reflected, "mandates": records}
            done.append(f"payment condition {target}")

    if settings.reflect_mandate_record:
        keep = _mandate_reference(link) if active else ""
        if keep:
            record = records.get(keep)
            if record is None:
                found = account_writes.direct_debit_mandate_find(api=api, reference=keep)
                if found is None:
                    bank_account = account_writes.account_bank_account_id(
                        api=api, account_id=account_id
                    )
                    if bank_account is None:
                        raise RuntimeError(
                            "the Exact account has no bank account (crm/BankAccounts) to "
                            "attach the direct debit mandate to"
                        )
                    created_at = link.mandate.gocardless_created_at
                    found = account_writes.direct_debit_mandate_create(
                        api=api,
                        account_id=account_id,
                        bank_account_id=bank_account,
                        reference=keep,
                        description=f"GoCardless {link.mandate.gocardless_id} "
                        f"({link.mandate.scheme})",
                        signature_date=created_at.date() if created_at else today,
                    )
                    done.append(f"mandate record {keep} created")
                record = {"id": str(found["ID"]), "cancelled": bool(found.get("CancellationDate"))}
                records[keep] = record
            if record.get("cancelled"):
                account_writes.direct_debit_mandate_cancellation_set(
                    api=api, mandate_id=record["id"], cancelled_on=None
                )
                record["cancelled"] = False
                done.append(f"mandate record {keep} reopened")
            link.reflected = {**reflected, "mandates": records}
        for reference, record in records.items():
            if reference == keep or record.get("cancelled"):
                continue
            account_writes.direct_debit_mandate_cancellation_set(
                api=api, mandate_id=record["id"], cancelled_on=today
            )
            record["cancelled"] = True
            link.reflected = {**reflected, "mandates": records}
            done.append(f"mandate record {reference} cancelled")
    link.reflected = {**reflected, "mandates": records}
    return done


def link_reflect_into_exact(*, link: CustomerLink, api=None) -> str:
    """Make Exact show the link's mandate state. Never raises for a provider failure."""
    if tenant_skip(link.tenant, job="exact reflection", what=f"link {link.pk}"):
        return "tenant inactive"  # state, attempts and due time unchanged: the sweep retries
    settings = customer_settings_for(tenant=link.tenant)
    if not (settings.reflect_payment_condition or settings.reflect_mandate_record):
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.NONE, reflection_due_at=None
        )
        return "nothing configured"
    if link.exact_account_id is None:
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.NONE, reflection_due_at=None
        )
        return "exact account deleted"
    before = dict(link.reflected or {})
    actor = Actor.system("customers.exact_reflection")
    state = "active" if _desired_active(link) else "stopped"
    try:
        api = api or exact_client_for(tenant=link.tenant)
        if api is None:
            raise RuntimeError("Exact Online is not connected (or paused)")
        done = _reflect(link, settings, api)
    except Exception as exc:  # stored and retried; the cause is in the audit entry
        attempts = link.reflection_attempts + 1
        delay = REFLECTION_BACKOFF[min(attempts - 1, len(REFLECTION_BACKOFF) - 1)]
        with transaction.atomic():
            CustomerLink.objects.filter(pk=link.pk).update(
                reflection_state=ReflectionState.FAILED,
                reflection_error=f"{type(exc).__name__}: {exc}"[:2000],
                reflection_attempts=attempts,
                reflection_due_at=timezone.now() + timedelta(seconds=delay),
                reflected=link.reflected,  # what did get written stays known
            )
            audit_record(
                actor=actor,
                action="customerlink.exact_reflection_failed",
                tenant=link.tenant,
                obj=link,
                before=before,
                after=link.reflected,
                message=f"writing mandate state '{state}' into Exact failed (attempt "
                f"{attempts}, retry in {delay} s): {type(exc).__name__}: {exc}"[:2000],
            )
        return "failed"
    with transaction.atomic():
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.DONE,
            reflection_error="",
            reflection_attempts=0,
            reflection_due_at=None,
            reflected=link.reflected,
        )
        if done:
            audit_record(
                actor=actor,
                action="customerlink.exact_reflected",
                tenant=link.tenant,
                obj=link,
                before=before,
                after=link.reflected,
                message=f"Exact shows mandate state '{state}': {'; '.join(done)}",
            )
    return "done: " + ("; ".join(done) or "already in line")


def reflections_retry_due(*, now=None, limit: int = 200) -> int:
    """Periodic: reflections that are due, of active tenants (the others wait as they are)."""
    now = now or timezone.now()
    due = CustomerLink.objects.filter(
        reflection_state__in=[ReflectionState.PENDING, ReflectionState.FAILED],
        reflection_due_at__lte=now,
    )
    inactive_tenants_log(due, job="exact reflections sweep")
    links = (
        of_active_tenants(due)
        .select_related("tenant", "exact_account", "mandate")
        .order_by("reflection_due_at")[:limit]
    )
    count = 0
    for link in links:
        link_reflect_into_exact(link=link)
        count += 1
    return count
