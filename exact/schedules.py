"""Exact's periodic jobs: two installation-wide schedules, registered by ``manage.py schedules``
(``exact_schedules_ensure``), never one schedule row per tenant.

- ``exact.sync_due`` (every minute): the sync sweep. It queues the incremental sync of every
  tenant that is due: active, its Exact connection usable (connected, a division chosen, not
  paused for the day), and its last whole-copy sync started more than EXACT_SYNC_EVERY_MINUTES
  ago (read from its ``SyncRun`` rows). An inactive tenant or a disconnected / needs-reauth
  connection is simply not picked, so activating, deactivating, connecting and disconnecting
  change no schedule; a new tenant is picked up within a minute; a changed interval applies at
  the next sweep.
- ``exact-keepalive`` (daily): refreshes every grant (token chain) a connected company uses
  that was not refreshed for a day.
- ``exact.deliveries_prune`` (daily): deletes webhook deliveries older than
  EXACT_DELIVERY_RETENTION_DAYS, so the inbound log cannot grow without end.

A sync waiting in the queue has not started yet, so its tenant still looks due: the sweep
claims the tenant first (``ExactConnection.sync_queued_at``, a conditional UPDATE) and queues
only what it claimed, so a busy queue does not collect one sync per minute per tenant and two
sweeps never queue the same tenant twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone
from django_q.models import Schedule

from core.schedules import schedule_upsert
from exact import queue
from exact.connections import connection_require_usable
from exact.errors import ExactConnectionUnavailable
from exact.models import ConnectionStatus, ExactConnection, SyncMode, SyncRun
from exact.sync_runs import sync_runs_close_lost

logger = logging.getLogger(__name__)

SYNC_DUE_NAME = "exact.sync_due"
KEEPALIVE_NAME = "exact-keepalive"
PRUNE_NAME = "exact.deliveries_prune"
# Before the sweep each tenant had its own row `exact-sync:<tenant id>`.
PER_TENANT_PREFIX = "exact-sync:"
# A targeted re-sync after a webhook reads one record; only these vouch for the whole copy.
WHOLE_COPY_MODES = (SyncMode.FULL, SyncMode.INCREMENTAL)


def exact_schedules_ensure() -> list[str]:
    """Register (or update) the sweep, the keep-alive and the delivery pruning, and remove
    the per-tenant rows of older versions in the same transaction, so an upgraded
    installation never syncs a tenant from both."""
    with transaction.atomic():
        schedule_upsert(
            name=SYNC_DUE_NAME,
            func="exact.tasks.exact_sync_due_task",
            schedule_type=Schedule.MINUTES,
            minutes=1,
        )
        schedule_upsert(
            name=KEEPALIVE_NAME,
            func="exact.tasks.exact_keepalive_task",
            schedule_type=Schedule.DAILY,
        )
        schedule_upsert(
            name=PRUNE_NAME,
            func="exact.tasks.exact_deliveries_prune_task",
            schedule_type=Schedule.DAILY,
        )
        removed, _ = Schedule.objects.filter(name__startswith=PER_TENANT_PREFIX).delete()
    if removed:
        logger.info(
            "exact: removed %d per-tenant sync schedule(s), replaced by %s", removed, SYNC_DUE_NAME
        )
    return [SYNC_DUE_NAME, KEEPALIVE_NAME, PRUNE_NAME]


def _unclaimed(cutoff: dt.datetime) -> Q:
    return Q(sync_queued_at__isnull=True) | Q(sync_queued_at__lt=cutoff)


def connections_due_for_sync(*, now: dt.datetime | None = None) -> list[ExactConnection]:
    """Usable connections of active tenants whose last whole-copy sync started more than
    EXACT_SYNC_EVERY_MINUTES ago (or never), and not queued within that time; the longest
    waiting first."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.EXACT_SYNC_EVERY_MINUTES)
    last_started = (
        SyncRun.objects.filter(tenant_id=OuterRef("tenant_id"), mode__in=WHOLE_COPY_MODES)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    candidates = (
        ExactConnection.objects.select_related("tenant")
        .filter(status=ConnectionStatus.CONNECTED, tenant__is_active=True)
        .filter(_unclaimed(cutoff))
        .annotate(last_sync_started_at=Subquery(last_started))
        .filter(Q(last_sync_started_at__isnull=True) | Q(last_sync_started_at__lt=cutoff))
        .order_by(F("last_sync_started_at").asc(nulls_first=True), "tenant_id")
    )
    due = []
    for connection in candidates:
        try:
            connection_require_usable(connection=connection)  # no division yet, paused
        except ExactConnectionUnavailable as exc:
            logger.debug("exact: sync sweep skips tenant %s: %s", connection.tenant_id, exc)
            continue
        due.append(connection)
    return due


def sync_sweep(*, now: dt.datetime | None = None) -> list[int]:
    """Queue ``exact.tasks.exact_sync_task`` once for every tenant that is due; returns their
    ids. One tenant's failure (say, the broker refusing) is logged and does not stop the
    others; its claim is released, so the next sweep tries it again."""
    now = now or timezone.now()
    sync_runs_close_lost(now=now)
    queued = []
    for connection in connections_due_for_sync(now=now):
        try:
            if _sync_queue(connection=connection, now=now):
                queued.append(connection.tenant_id)
        except Exception:
            logger.exception("exact: could not queue the sync of tenant %s", connection.tenant_id)
    return queued


def _sync_queue(*, connection: ExactConnection, now: dt.datetime) -> bool:
    cutoff = now - dt.timedelta(minutes=settings.EXACT_SYNC_EVERY_MINUTES)
    claimed = (
        ExactConnection.objects.filter(pk=connection.pk)
        .filter(_unclaimed(cutoff))
        .update(sync_queued_at=now)
    )
    if not claimed:  # another sweep was quicker
        return False
    try:
        queue.enqueue("exact.tasks.exact_sync_task", connection.tenant_id)
    except Exception:
        ExactConnection.objects.filter(pk=connection.pk, sync_queued_at=now).update(
            sync_queued_at=connection.sync_queued_at
        )
        raise
    return True
