"""Bookkeeping of a sync run: the ``SyncRun`` row (pages, calls, counts, error — written even
when the run fails), the per-entity cursor, and the watermark read before a full pull.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from exact.client import ExactClient
from exact.errors import ExactApiError
from exact.models import ExactConnection, ExactSyncCursor, SyncRun
from exact.odata import int64_literal

logger = logging.getLogger(__name__)

# A run's worker records its end even when the run fails; one that was killed (SIGKILL, out of
# memory, a lost machine) never does. A whole copy of 20,000 accounts takes seconds, so a run
# still open after this long has lost its worker.
LOST_AFTER = timedelta(hours=2)
LOST_REASON = (
    "Stopped without finishing: the worker running it was lost (no end recorded within "
    "2 hours). The pages it stored are kept; the next sync starts again from the stored "
    "cursors."
)


@dataclass
class RunCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    pages: int = 0


class RunRecord:
    """Context for one SyncRun: records counts, calls and any error."""

    def __init__(
        self, *, connection: ExactConnection, api: ExactClient, entity: str, mode: str, trigger: str
    ):
        self.api = api
        self.calls_before = api.calls
        self.counts = RunCounts()
        self.run = SyncRun.objects.create(
            tenant_id=connection.tenant_id,
            entity=entity,
            mode=mode,
            trigger=trigger[:100],
            started_at=timezone.now(),
        )

    def __enter__(self) -> RunRecord:
        return self

    def progress_save(self) -> None:
        SyncRun.objects.filter(pk=self.run.pk).update(
            pages=self.counts.pages, calls=self.api.calls - self.calls_before,
            created=self.counts.created, updated=self.counts.updated,
        )

    def __exit__(self, exc_type, exc, tb) -> bool:
        run = self.run
        run.pages = self.counts.pages
        run.calls = self.api.calls - self.calls_before
        run.created, run.updated, run.deleted = (
            self.counts.created,
            self.counts.updated,
            self.counts.deleted,
        )
        run.finished_at = timezone.now()
        if exc is not None:
            run.error = str(exc)[:4000] or type(exc).__name__
        run.save()
        return False


def sync_runs_close_lost(*, now: datetime | None = None) -> int:
    """Close the runs whose worker was lost, so that the sync runs page does not show them
    "Running" forever (found by the chaos month, tests/chaos); returns how many."""
    now = now or timezone.now()
    closed = SyncRun.objects.filter(
        finished_at__isnull=True, started_at__lt=now - LOST_AFTER
    ).update(finished_at=now, error=LOST_REASON)
    if closed:
        logger.warning("exact: closed %s sync run(s) whose worker was lost", closed)
    return closed


def sync_cursor(connection: ExactConnection, entity: str) -> ExactSyncCursor:
    cursor, _ = ExactSyncCursor.objects.get_or_create(
        tenant_id=connection.tenant_id, division=connection.division, entity=entity
    )
    return cursor


def watermark_read(api: ExactClient, path: str) -> int:
    """The highest Timestamp the sync endpoint holds now (one call).

    Exact documents only the Timestamp *filter* for sync endpoints; if ``$orderby`` is
    refused we start the cursor at 1 — the next run then reads the whole feed once.
    """
    try:
        page = next(
            api.iter_pages(
                path,
                select=("Timestamp",),
                filter=f"Timestamp gt {int64_literal(1)}",
                orderby="Timestamp desc",
                top=1,
            ),
            [],
        )
    except ExactApiError as exc:
        if exc.status == 400:
            logger.warning("exact: %s refused the watermark probe (%s); starting at 1", path, exc)
            return 1
        raise
    return max((int(r["Timestamp"]) for r in page if r.get("Timestamp") is not None), default=1)


def pages_counted(pages: Iterable[list[dict]], record: RunRecord) -> Iterator[list[dict]]:
    """The pages, counted; before each next page the run's row gets the numbers so far, so the
    sync run's page shows a long full sync moving (one UPDATE per page of 60 to 1,000 rows)."""
    for page in pages:
        if record.counts.pages:
            record.progress_save()
        record.counts.pages += 1
        yield page
