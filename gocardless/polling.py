"""Polling fallback: catch up on events webhooks missed, through the same processor.

``GET /events`` lists newest first (notes §4.1): "everything since X" is a
``created_at[gte]=X`` filter, paged with ``after`` towards OLDER events until the cursor is
null. We store each page as it arrives (idempotent per event id), then process everything
stored oldest first, then move the connection's cursor to the newest PROCESSED event
(``created_at`` + id). ``gte`` rather than ``gt`` re-reads events with the cursor's exact
timestamp, so two events in the same millisecond are never skipped; the unique constraint
makes the re-read free. Events that failed are retried by the sweeper, not by re-polling.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gocardless.client import GoCardlessClient
from gocardless.event_processing import events_process
from gocardless.events_store import events_store
from gocardless.models import ConnectionStatus, EventSource, GoCardlessConnection, GoCardlessEvent
from tenants.activity import inactive_tenants_log, of_active_tenants

logger = logging.getLogger(__name__)


def _iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def events_poll(*, connection: GoCardlessConnection, client=None, client_factory=None) -> dict:
    """One catch-up run for one connection; returns counts (seen, stored, processed...)."""
    client = client or GoCardlessClient.for_connection(connection)
    params: dict = {"limit": settings.GOCARDLESS_POLL_PAGE_SIZE}
    if connection.events_cursor_created_at is not None:
        params["created_at[gte]"] = _iso(connection.events_cursor_created_at)
    elif settings.GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS:
        since = timezone.now() - timedelta(days=settings.GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS)
        params["created_at[gte]"] = _iso(since)

    seen: list[str] = []
    pending: list[int] = []
    after = None
    while True:
        page_params = {**params, **({"after": after} if after else {})}
        records, after = client.events_page(page_params)
        if records:
            with transaction.atomic():
                pending += events_store(
                    tenant=connection.tenant, events=records, source=EventSource.POLL
                )
            seen += [r["id"] for r in records]
        if not after:
            break

    def factory(_connection):
        return client

    counts = events_process(event_pks=pending, client_factory=client_factory or factory)
    newest = (
        GoCardlessEvent.objects.filter(
            tenant=connection.tenant, event_id__in=seen, processed_at__isnull=False
        )
        .exclude(created_at__isnull=True)
        .order_by("-created_at", "-event_id")
        .values_list("created_at", "event_id")
        .first()
    )
    fields = ["last_polled_at"]
    connection.last_polled_at = timezone.now()
    if newest is not None and (
        connection.events_cursor_created_at is None
        or newest[0] >= connection.events_cursor_created_at
    ):
        connection.events_cursor_created_at, connection.events_cursor_id = newest
        fields += ["events_cursor_created_at", "events_cursor_id"]
    GoCardlessConnection.objects.filter(pk=connection.pk).update(
        **{f: getattr(connection, f) for f in fields}
    )
    result = {"seen": len(seen), "queued": len(pending), **counts}
    logger.info("gocardless poll tenant %s: %s", connection.tenant_id, result)
    return result


def events_poll_all(*, client_factory=None) -> dict[int, dict]:
    """The scheduled job: every connected active tenant, one after the other; one failing
    tenant does not stop the rest. An inactive tenant's cursor stays where it is, so the first
    poll after reactivation catches up on what happened meanwhile."""
    results: dict[int, dict] = {}
    connected = GoCardlessConnection.objects.filter(status=ConnectionStatus.CONNECTED)
    inactive_tenants_log(connected, job="gocardless poll")
    connections = of_active_tenants(connected).select_related("tenant")
    for connection in connections:
        try:
            client = client_factory(connection) if client_factory else None
            results[connection.tenant_id] = events_poll(connection=connection, client=client)
        except Exception as exc:  # logged and retried next run
            logger.warning("gocardless poll tenant %s failed: %s", connection.tenant_id, exc)
            results[connection.tenant_id] = {"error": str(exc)}
    return results
