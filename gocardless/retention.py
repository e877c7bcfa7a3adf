"""Retention of the webhook intake log: deliveries older than
GOCARDLESS_DELIVERY_RETENTION_DAYS are deleted (installation-wide, every hour, schedules.py),
with the hourly intake budgets older than two days.

The events a delivery brought are kept (they are the record; their ``delivery`` link is
cleared first). Deleted in batches of pks, by plain DELETE statements that never load a
body: a delivery may hold up to 1 MiB, and the ORM's delete would fetch each row to clear
the events' links itself.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from gocardless.conf import gocardless_setting
from gocardless.intake_budget import budgets_prune
from gocardless.models import GoCardlessEvent, WebhookDelivery

logger = logging.getLogger(__name__)

BATCH = 1000


def deliveries_prune(*, now=None, batch: int = BATCH) -> dict[str, int]:
    """Delete deliveries received before now - GOCARDLESS_DELIVERY_RETENTION_DAYS; returns
    {"deliveries": n, "budgets": n}."""
    now = now or timezone.now()
    days = int(gocardless_setting("GOCARDLESS_DELIVERY_RETENTION_DAYS"))
    cutoff = now - timedelta(days=max(days, 1))
    old = WebhookDelivery.objects.filter(received_at__lt=cutoff).order_by("pk")
    table = db_connection.ops.quote_name(WebhookDelivery._meta.db_table)
    deleted = 0
    while True:
        pks = list(old.values_list("pk", flat=True)[:batch])
        if not pks:
            break
        with transaction.atomic():
            GoCardlessEvent.objects.filter(delivery_id__in=pks).update(delivery=None)
            with db_connection.cursor() as cursor:
                marks = ", ".join(["%s"] * len(pks))
                cursor.execute(f"DELETE FROM {table} WHERE id IN ({marks})", pks)  # noqa: S608 - our table, bound pks
                deleted += cursor.rowcount
    budgets = budgets_prune()
    if deleted:
        logger.info("gocardless: deleted %d webhook deliveries received before %s",
                    deleted, cutoff.isoformat())
    return {"deliveries": deleted, "budgets": budgets}
