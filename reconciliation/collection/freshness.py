"""Is our copy of the tenant's Exact open items fresh enough to collect from?

A run decides what to charge from the receivables mirror, not from Exact itself. If Exact
stopped syncing (consent withdrawn, connection removed, sync failing for hours), an invoice
paid by bank transfer or credited in Exact since then still looks open here and would be
charged. So a live run first asks ``exact_copy_problem``; any answer but None refuses the run
with that sentence (shown on the run, in the audit trail and by ``manage.py collection``), and
the 15-minute schedule tries again once the sync has caught up.

A daily API budget that is spent (the connection is *paused*) is not in itself a refusal:
the copy is judged by its age alone, because a sync an hour ago is as good paused or not.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from exact.models import ConnectionStatus, ExactConnection, SyncEntity, SyncMode, SyncRun

# Only syncs that read the whole feed vouch for the whole copy (a targeted re-sync of one
# invoice after a webhook says nothing about the others).
WHOLE_COPY_MODES = (SyncMode.FULL, SyncMode.INCREMENTAL)


def exact_copy_synced_at(*, tenant) -> dt.datetime | None:
    """When the last successful whole-copy sync of the receivables STARTED (the copy reflects
    Exact at least as of then)."""
    return (
        SyncRun.objects.filter(
            tenant=tenant,
            entity=SyncEntity.RECEIVABLES,
            mode__in=WHOLE_COPY_MODES,
            finished_at__isnull=False,
            error="",
        )
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def _age(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def exact_copy_problem(*, tenant, now: dt.datetime | None = None) -> str | None:
    """None when the copy may be collected from; otherwise why not, in one sentence."""
    connection = ExactConnection.objects.filter(tenant=tenant).first()
    if connection is None or connection.status == ConnectionStatus.DISCONNECTED:
        return "Exact Online is not connected: there is no current copy of the open invoices"
    if connection.status == ConnectionStatus.NEEDS_REAUTH:
        return (
            "Exact Online needs to be reconnected; open invoices are not being synced, so "
            "nothing is collected until it is"
        )
    synced_at = exact_copy_synced_at(tenant=tenant)
    if synced_at is None:
        return "the open invoices have not been synced from Exact Online yet"
    now = now or timezone.now()
    limit = dt.timedelta(minutes=settings.COLLECTION_EXACT_MAX_AGE_MINUTES)
    if now - synced_at > limit:
        return (
            f"the copy of the open invoices is {_age(now - synced_at)} old (last successful "
            f"sync from Exact Online started {synced_at:%Y-%m-%d %H:%M} UTC; the limit is "
            f"{settings.COLLECTION_EXACT_MAX_AGE_MINUTES} min): an invoice paid or credited "
            "in Exact since then could be charged"
        )
    return None
