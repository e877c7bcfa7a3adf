"""Exact account changes → GoCardless, and Exact-side reasons to stop collecting.

Run after every finished accounts sync (a ``post_save`` receiver on the Exact app's
``SyncRun`` queues it; webhooks trigger targeted re-syncs, which are SyncRuns too) and on
demand. For each matched link it compares the mirror's current name, e-mail and address
with the snapshot last pushed and PUTs only what changed to the GoCardless customer. A
blocked or deleted Exact account stops collection (the collection engine is told); an
account that is unblocked again resumes it.
"""

from __future__ import annotations

import logging

from django.db import transaction

from core.audit import Actor, audit_record
from gocardless import errors
from gocardless.mirrors import mirror_upsert
from gocardless.onboarding import customer_update
from reconciliation.customers.config import gocardless_client_for
from reconciliation.customers.links import exact_snapshot, link_resume, link_stop
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.customers.normalise import country_code

logger = logging.getLogger(__name__)

EXACT_STOP_REASONS = ("exact_account_blocked", "exact_account_deleted")
# Exact snapshot field → GoCardless customer field.
FIELD_MAP = {
    "name": "company_name",
    "email": "email",
    "address_line1": "address_line1",
    "postcode": "postal_code",
    "city": "city",
    "country": "country_code",
}


def customer_changes(*, before: dict, after: dict) -> dict:
    """GoCardless fields for what changed in Exact (empty values are not pushed)."""
    changes = {}
    for name, target in FIELD_MAP.items():
        value = after.get(name) or ""
        if value == (before.get(name) or "") or not value:
            continue
        value = country_code(value) if name == "country" else value.strip()
        if value:  # a country that is not an ISO code is not pushed (GoCardless refuses it)
            changes[target] = value
    return changes


def link_push(*, link: CustomerLink, actor: Actor, client) -> str:
    account = link.exact_account
    if _exact_stop_or_resume(link, actor=actor):
        return "stopped"
    snapshot = exact_snapshot(account)
    if not link.pushed_snapshot:
        CustomerLink.objects.filter(pk=link.pk).update(pushed_snapshot=snapshot)
        return "baseline"
    if snapshot == link.pushed_snapshot or link.gocardless_customer_id is None:
        return "unchanged"
    changes = customer_changes(before=link.pushed_snapshot, after=snapshot)
    customer_id = link.gocardless_customer.gocardless_id
    if changes:
        if client is None:
            return "gocardless not connected"
        try:
            data = customer_update(client=client, customer_id=customer_id, fields=changes)
        except errors.GoCardlessError as exc:
            audit_record(
                actor=actor,
                action="customerlink.push_failed",
                tenant=link.tenant,
                obj=link,
                after=changes,
                message=f"updating GoCardless customer {customer_id} failed: {exc}",
            )
            return "failed"
        with transaction.atomic():
            mirror_upsert(tenant=link.tenant, resource_type="customers", data=data)
    before = {
        k: link.pushed_snapshot.get(k)
        for k in snapshot
        if snapshot[k] != link.pushed_snapshot.get(k)
    }
    CustomerLink.objects.filter(pk=link.pk).update(pushed_snapshot=snapshot)
    audit_record(
        actor=actor,
        action="customerlink.pushed_to_gocardless",
        tenant=link.tenant,
        obj=link,
        before=before,
        after=changes,
        message=f"Exact account changes sent to GoCardless customer {customer_id}"
        if changes
        else "Exact account changed (nothing GoCardless keeps)",
    )
    return "pushed"


def _exact_stop_or_resume(link: CustomerLink, *, actor: Actor) -> bool:
    """Stop collecting for a deleted or blocked account, resume for an unblocked one.
    True when the account is gone (nothing left to push)."""
    account = link.exact_account
    if account is None:
        link_stop(
            link=link,
            reason="exact_account_deleted",
            message="the account was deleted in Exact; collection stopped",
            actor=actor,
        )
        return True
    if account.blocked:
        link_stop(
            link=link,
            reason="exact_account_blocked",
            message="the account is blocked in Exact; collection stopped",
            actor=actor,
        )
    elif link.stop_reason in EXACT_STOP_REASONS:
        link_resume(link=link, actor=actor, message="the account is no longer blocked in Exact")
    return False


def links_push_exact_changes(*, tenant, actor: Actor, client=None) -> dict:
    counts: dict[str, int] = {}
    links = CustomerLink.objects.filter(tenant=tenant, state=LinkState.MATCHED).select_related(
        "tenant", "exact_account", "gocardless_customer", "mandate"
    )
    client_made = False
    for link in links:
        needs_client = (
            link.exact_account is not None
            and link.pushed_snapshot
            and exact_snapshot(link.exact_account) != link.pushed_snapshot
        )
        if needs_client and client is None and not client_made:
            client, client_made = gocardless_client_for(tenant=tenant), True
        try:
            result = link_push(link=link, actor=actor, client=client)
        except Exception:  # one link's trouble must not stop the others
            logger.exception("pushing Exact changes of link %s failed", link.pk)
            result = "error"
        counts[result] = counts.get(result, 0) + 1
    return counts
