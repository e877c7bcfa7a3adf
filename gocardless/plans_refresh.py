"""Refresh the mirrors of a tenant's subscriptions and instalment schedules from GoCardless'
lists, without waiting for an event: after connecting an account that already had plans, or
when events were lost beyond the polling look-back (``manage.py gocardless_plans_refresh``).

Events keep the mirrors current (event_processing.py); this is the catch-up. Each plan is
written under its mirror's row lock, as event processing writes it, and never over a state
fetched later than the list began (``fetched_at`` on the database's clock). Status changes
are audited like those made by events. Payments are not touched here: their status changes
send the signals bookings and collection act on, so only their events write them.
"""

from __future__ import annotations

import logging

from django.db import transaction

from core.audit import Actor, audit_record
from gocardless.client import GoCardlessClient
from gocardless.event_processing import database_now
from gocardless.mirrors import instalment_schedules_upcoming, mirror_lock, mirror_set
from gocardless.models import GoCardlessConnection

logger = logging.getLogger(__name__)

ACTOR_LABEL = "gocardless.plans_refresh"
PAGE = 500


def plans_refresh(*, connection: GoCardlessConnection, client: GoCardlessClient | None = None
                  ) -> dict[str, int]:
    """Fetch every subscription and instalment schedule of the connection's account and
    apply each to its mirror; returns counts ("subscriptions", "instalment_schedules",
    "changed": status changes, "skipped": mirrors fetched more recently by an event)."""
    client = client or GoCardlessClient.for_connection(connection)
    tenant = connection.tenant
    counts = {"subscriptions": 0, "instalment_schedules": 0, "changed": 0, "skipped": 0}
    with transaction.atomic():
        started = database_now()
    listings = (("subscriptions", client.subscriptions_iter({"limit": PAGE})),
                ("instalment_schedules", client.instalment_schedules_iter({"limit": PAGE})))
    schedule_ids: set[str] = set()
    for resource_type, records in listings:
        for data in records:
            counts[resource_type] += 1
            with transaction.atomic():
                obj = mirror_lock(tenant=tenant, resource_type=resource_type,
                                  gocardless_id=data["id"])
                if obj.fetched_at is not None and obj.fetched_at > started:
                    counts["skipped"] += 1
                    continue
                previous = mirror_set(obj=obj, resource_type=resource_type, data=data)
                obj.fetched_at = started
                obj.save()
                if previous != obj.status:
                    counts["changed"] += 1
                    audit_record(
                        actor=Actor.system(ACTOR_LABEL),
                        action=f"{obj._meta.model_name}.status_changed",
                        tenant=tenant, obj=obj,
                        before={"status": previous}, after={"status": obj.status},
                        message=f"GoCardless {obj.gocardless_id}: refreshed from the list",
                    )
            if resource_type == "instalment_schedules":
                schedule_ids.add(data["id"])
    with transaction.atomic():
        instalment_schedules_upcoming(tenant_id=tenant.pk, schedule_ids=schedule_ids)
    logger.info("gocardless plans refresh tenant %s: %s", tenant.pk, counts)
    return counts
