"""Signal receivers: thin, local-database work only (provider calls are queued as tasks).

GoCardless domain signals run inside the event-processing transaction: an exception here
rolls the event back and the pipeline retries it, which is what we want for a database
error. Exact writes are never made here: the receiver records the request on the link and
queues ``link_reflect_task`` after commit. Connected in config/wiring.py (the one registry,
with the order handlers run in), not here.
"""

from __future__ import annotations

import logging

from reconciliation.customers import mandate_sync

logger = logging.getLogger(__name__)


def on_mandate_usable(sender, *, tenant, instance, event=None, **kwargs):
    if instance.status in ("active", "pending_submission", "submitted"):
        mandate_sync.mandate_usable(tenant=tenant, mandate=instance, event=event)


def on_mandate_stopped(sender, *, tenant, instance, event=None, **kwargs):
    mandate_sync.mandate_stopped(tenant=tenant, mandate=instance, event=event)


def on_mandate_replaced(sender, *, tenant, instance, event=None, **kwargs):
    mandate_sync.mandate_replaced_handle(tenant=tenant, mandate=instance, event=event)


def on_mandate_transferred(sender, *, tenant, instance, event=None, **kwargs):
    mandate_sync.mandate_transferred_handle(tenant=tenant, mandate=instance, event=event)


def on_billing_request_fulfilled(sender, *, tenant, instance, event=None, **kwargs):
    mandate_sync.billing_request_fulfilled(tenant=tenant, billing_request=instance, event=event)


def on_sync_run_saved(sender, *, instance, created, **kwargs):
    """After a finished accounts sync (or deletions / a webhook re-sync): push Exact changes.

    Never raises: the sync belongs to the Exact app and must not fail because of us.
    """
    try:
        if created or instance.finished_at is None or instance.error:
            return
        if instance.entity not in ("accounts", "deleted"):
            return
        if instance.created == 0 and instance.updated == 0 and instance.deleted == 0:
            return
        from core.queue import enqueue_on_commit
        from reconciliation.customers.models import CustomerLink, LinkState

        if CustomerLink.objects.filter(
            tenant_id=instance.tenant_id, state=LinkState.MATCHED
        ).exists():
            enqueue_on_commit(
                "reconciliation.customers.tasks.links_push_exact_changes_task",
                instance.tenant_id,
                group="customers",
            )
    except Exception:
        logger.exception("could not queue the Exact → GoCardless push for %s", instance.pk)

