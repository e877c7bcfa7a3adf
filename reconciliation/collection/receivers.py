"""Signal receivers: thin; local database work only (provider calls are queued as tasks).

Connected in config/wiring.py (the one registry, with the order handlers run in), not here.
GoCardless domain signals run inside the event-processing transaction: an exception here
rolls the event back and the pipeline retries it, which is what we want for a database error.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def on_payment_changed(sender, *, tenant, instance, event=None, **kwargs):
    from reconciliation.collection.reactions import payment_signal_handle

    payment_signal_handle(tenant=tenant, payment=instance, event=event)


def on_mandate_stopped(sender, *, tenant, instance, event=None, **kwargs):
    from reconciliation.collection.reactions import mandate_stopped_handle

    mandate_stopped_handle(tenant=tenant, mandate=instance, event=event)


def on_sync_run_saved(sender, *, instance, created, **kwargs):
    """After a receivables sync: check in-flight payments; maybe collect new invoices.

    Never raises: the sync belongs to the Exact app and must not fail because of us.
    """
    try:
        if created or instance.finished_at is None or instance.error:
            return
        if instance.entity not in ("receivables", "deleted"):
            return
        if not (instance.created or instance.updated or instance.deleted):
            return
        from core.queue import enqueue_on_commit

        enqueue_on_commit(
            "reconciliation.collection.tasks.attempts_check_task",
            instance.tenant_id,
            group="collection",
        )
        if (
            instance.entity == "receivables"
            and instance.created
            and instance.trigger.startswith("webhook")
        ):
            enqueue_on_commit(
                "reconciliation.collection.tasks.new_invoices_task",
                instance.tenant_id,
                group="collection",
            )
    except Exception:
        logger.exception("could not queue collection checks for sync run %s", instance.pk)

