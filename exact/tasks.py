"""django-q2 tasks: thin wrappers that load the connection, check it, and call a service.

Every task starts with ``connection_require_usable`` (inside the services): a connection
that needs re-authorisation, is disconnected, is paused for the day or belongs to an inactive
tenant does nothing (logged at INFO, nothing changes, no retry).
"""

from __future__ import annotations

import logging

from exact.errors import ExactConnectionUnavailable, ExactDailyBudgetExhausted
from exact.models import ExactConnection, ExactWebhookDelivery

logger = logging.getLogger(__name__)


def _connection(tenant_id: int) -> ExactConnection | None:
    return ExactConnection.objects.select_related("tenant").filter(tenant_id=tenant_id).first()


def exact_sync_task(tenant_id: int, full: bool = False) -> str:
    from exact.sync import exact_sync

    connection = _connection(tenant_id)
    if connection is None:
        return "no connection"
    try:
        runs = exact_sync(connection=connection, full=full, trigger="schedule")
    except ExactConnectionUnavailable as exc:
        logger.info("exact: sync skipped for tenant %s: %s", tenant_id, exc)
        return f"skipped: {exc}"
    except ExactDailyBudgetExhausted as exc:
        # The connection is paused until Exact's reset; the next scheduled run resumes.
        return f"paused until {exc.reset_at}"
    return "; ".join(f"{r.entity}: +{r.created} ~{r.updated} -{r.deleted}" for r in runs)


def exact_sync_due_task() -> list[int]:
    """Every minute (schedule ``exact.sync_due``): queue the sync of every tenant that is due."""
    from exact.schedules import sync_sweep

    return sync_sweep()


def exact_keepalive_task() -> int:
    """Daily: refresh every grant a connected company uses, not refreshed for a day (30-day
    expiry)."""
    from exact.keepalive import tokens_keep_alive

    return tokens_keep_alive()


def exact_deliveries_prune_task() -> int:
    """Daily (schedule ``exact.deliveries_prune``): forget webhook deliveries older than
    EXACT_DELIVERY_RETENTION_DAYS."""
    from exact.webhooks import deliveries_prune

    return deliveries_prune()


def exact_webhook_resync_task(delivery_id: int) -> str:
    """Queued by the webhook receiver for each new (not duplicate) valid delivery."""
    from exact.topics import topic_resync

    delivery = ExactWebhookDelivery.objects.filter(pk=delivery_id, valid=True).first()
    if delivery is None or delivery.tenant_id is None:
        return "no delivery"
    connection = _connection(delivery.tenant_id)
    if connection is None:
        return "no connection"
    try:
        run = topic_resync(
            connection=connection,
            topic=delivery.topic,
            key=delivery.key,
            trigger=f"webhook:{delivery.pk}",
        )
    except ExactConnectionUnavailable as exc:
        logger.info("exact: webhook resync skipped for tenant %s: %s", delivery.tenant_id, exc)
        return f"skipped: {exc}"
    except ExactDailyBudgetExhausted as exc:
        return f"paused until {exc.reset_at}"  # the next incremental sync catches up
    if run is None:
        return f"ignored topic {delivery.topic}"
    return f"{run.entity}: +{run.created} ~{run.updated} -{run.deleted}"
