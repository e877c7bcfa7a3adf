"""Mirroring Exact accounts and open receivables per tenant.

- First run (``full``): bulk endpoints, 1,000 rows a page — ``bulk/CRM/Accounts`` and the open
  items of ``bulk/Cashflow/Receivables`` (``Status ne 50``: not yet matched). Before it starts,
  one call reads the highest ``Timestamp`` of the matching sync endpoint; the next run continues
  from there, so a change made *during* the bulk pull is caught by the next incremental run.
- Later runs (``incremental``): ``sync/CRM/Accounts`` and ``sync/Cashflow/PaymentTerms`` with
  ``Timestamp gt <n>L`` (the highest Timestamp seen, persisted per entity after every page);
  deletions through ``sync/Deleted`` (its own cursor). An unchanged division costs one call
  per entity.
- Writes: streamed page by page (memory stays flat), compared against what we hold (only rows
  whose raw JSON changed are written), upserted with ``bulk_create(update_conflicts=True)`` on
  the (tenant, exact id) unique constraint — so running twice changes nothing (the row mapping
  and the writes are in exact/mirrors.py).
- A ``SyncRun`` row records every run: pages, calls, created / updated / deleted, error
  (exact/sync_runs.py, with the cursors and the watermark).
- ``account_resync`` / ``invoice_receivables_resync``: one key, for webhooks (exact/topics.py
  says which topic calls which).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from exact.client import ExactClient
from exact.connections import connection_require_usable
from exact.errors import ExactError
from exact.mirrors import (
    ACCOUNT_SELECT,
    ACCOUNT_UPDATE_FIELDS,
    RECEIVABLE_SELECT,
    RECEIVABLE_UPDATE_FIELDS,
    account_from_row,
    receivable_from_row,
    receivables_attach_accounts,
    receivables_link_accounts,
    rows_upsert,
)
from exact.models import (
    ExactAccount,
    ExactConnection,
    ExactReceivable,
    SyncEntity,
    SyncMode,
    SyncRun,
)
from exact.odata import guid_literal, int64_literal
from exact.sync_runs import RunRecord, pages_counted, sync_cursor, watermark_read

logger = logging.getLogger(__name__)

DELETED_SELECT = ("ID", "EntityKey", "EntityType", "Timestamp")
OPEN_FILTER = "Status ne 50"  # 50 = matched (paid); 20 open, 30 selected, 40 processed
RECEIPT_LINE_TYPE = 20  # sync/Cashflow/PaymentTerms also returns payments (22)
DELETED_ACCOUNT = 2
DELETED_PAYMENT_TERM = 10


@dataclass(frozen=True)
class _Entity:
    """What differs between mirroring accounts and open receivables; the loop is shared."""

    entity: str
    model: type
    bulk_path: str
    bulk_filter: str | None
    sync_path: str
    select: tuple[str, ...]
    sync_select: tuple[str, ...]  # extra fields the sync endpoint needs
    from_row: Callable[..., object]
    update_fields: list[str]
    keep_row: Callable[[dict], bool] = lambda row: True
    prepare: Callable[..., None] = lambda objs, *, tenant_id: None
    finish: Callable[..., object] = lambda *, tenant_id: None


def _entity_sync(
    spec: _Entity, *, connection: ExactConnection, api: ExactClient | None, full: bool, trigger: str
) -> SyncRun:
    connection_require_usable(connection=connection)
    api = api or ExactClient(connection)
    cursor = sync_cursor(connection, spec.entity)
    mode = SyncMode.FULL if full or cursor.full_sync_at is None else SyncMode.INCREMENTAL
    tenant_id = connection.tenant_id
    with RunRecord(
        connection=connection, api=api, entity=spec.entity, mode=mode, trigger=trigger
    ) as ctx:
        started = timezone.now()
        if mode == SyncMode.FULL:
            watermark = watermark_read(api, spec.sync_path)
            pages = api.iter_pages(spec.bulk_path, select=spec.select, filter=spec.bulk_filter)
        else:
            pages = api.iter_pages(
                spec.sync_path,
                select=(*spec.select, *spec.sync_select, "Timestamp"),
                filter=f"Timestamp gt {int64_literal(cursor.timestamp)}",
            )
        for page in pages_counted(pages, ctx):
            now = timezone.now()
            # The page's highest Timestamp, rows we skip included: they are behind us too.
            top = max((int(r.get("Timestamp") or 0) for r in page), default=0)
            objs = [
                spec.from_row(r, tenant_id=tenant_id, now=now) for r in page if spec.keep_row(r)
            ]
            spec.prepare(objs, tenant_id=tenant_id)
            created, updated = rows_upsert(
                spec.model,
                objs,
                tenant_id=tenant_id,
                update_fields=spec.update_fields,
                now=now,
            )
            ctx.counts.created += created
            ctx.counts.updated += updated
            if mode == SyncMode.INCREMENTAL and top > cursor.timestamp:
                cursor.timestamp = top
                cursor.save(update_fields=["timestamp", "updated_at"])
        if mode == SyncMode.FULL:
            # What the bulk pull did not return no longer exists (or is no longer open).
            gone, _ = spec.model.objects.filter(tenant_id=tenant_id, synced_at__lt=started).delete()
            ctx.counts.deleted += gone
            cursor.timestamp = watermark
            cursor.full_sync_at = timezone.now()
            cursor.save()
        spec.finish(tenant_id=tenant_id)
    return ctx.run


def _is_open_item_row(row: dict) -> bool:
    # Payments (LineType 22) share the PaymentTerms feed; Exact allows no filter on it.
    return row.get("LineType", RECEIPT_LINE_TYPE) == RECEIPT_LINE_TYPE


ACCOUNTS = _Entity(
    entity=SyncEntity.ACCOUNTS,
    model=ExactAccount,
    bulk_path="bulk/CRM/Accounts",
    bulk_filter=None,
    sync_path="sync/CRM/Accounts",
    select=ACCOUNT_SELECT,
    sync_select=(),
    from_row=account_from_row,
    update_fields=ACCOUNT_UPDATE_FIELDS,
    finish=receivables_link_accounts,
)
RECEIVABLES = _Entity(
    entity=SyncEntity.RECEIVABLES,
    model=ExactReceivable,
    bulk_path="bulk/Cashflow/Receivables",
    bulk_filter=OPEN_FILTER,
    sync_path="sync/Cashflow/PaymentTerms",
    select=RECEIVABLE_SELECT,
    sync_select=("LineType",),
    from_row=receivable_from_row,
    update_fields=RECEIVABLE_UPDATE_FIELDS,
    keep_row=_is_open_item_row,
    prepare=receivables_attach_accounts,
)


def accounts_sync(
    *,
    connection: ExactConnection,
    api: ExactClient | None = None,
    full: bool = False,
    trigger: str = "",
) -> SyncRun:
    return _entity_sync(ACCOUNTS, connection=connection, api=api, full=full, trigger=trigger)


def receivables_sync(
    *,
    connection: ExactConnection,
    api: ExactClient | None = None,
    full: bool = False,
    trigger: str = "",
) -> SyncRun:
    return _entity_sync(RECEIVABLES, connection=connection, api=api, full=full, trigger=trigger)


def deletions_sync(
    *, connection: ExactConnection, api: ExactClient | None = None, trigger: str = ""
) -> SyncRun:
    """Apply ``sync/Deleted`` (accounts and payment terms) since the last run."""
    connection_require_usable(connection=connection)
    api = api or ExactClient(connection)
    cursor = sync_cursor(connection, SyncEntity.DELETED)
    tenant_id = connection.tenant_id
    first = cursor.full_sync_at is None
    mode = SyncMode.FULL if first else SyncMode.INCREMENTAL
    with RunRecord(
        connection=connection, api=api, entity=SyncEntity.DELETED, mode=mode, trigger=trigger
    ) as ctx:
        if first:
            # A full mirror reflects every deletion so far: start from the present.
            cursor.timestamp = watermark_read(api, "sync/Deleted")
            cursor.full_sync_at = timezone.now()
            cursor.save()
            return ctx.run
        pages = api.iter_pages(
            "sync/Deleted",
            select=DELETED_SELECT,
            filter=f"Timestamp gt {int64_literal(cursor.timestamp)}",
        )
        for page in pages_counted(pages, ctx):
            accounts = [r["EntityKey"] for r in page if r.get("EntityType") == DELETED_ACCOUNT]
            terms = [r["EntityKey"] for r in page if r.get("EntityType") == DELETED_PAYMENT_TERM]
            if accounts:
                ctx.counts.deleted += ExactAccount.objects.filter(
                    tenant_id=tenant_id, exact_id__in=accounts
                ).delete()[0]
            if terms:
                ctx.counts.deleted += ExactReceivable.objects.filter(
                    tenant_id=tenant_id, exact_id__in=terms
                ).delete()[0]
            top = max((int(r.get("Timestamp") or 0) for r in page), default=0)
            if top > cursor.timestamp:
                cursor.timestamp = top
                cursor.save(update_fields=["timestamp", "updated_at"])
    return ctx.run


def exact_sync(
    *,
    connection: ExactConnection,
    full: bool = False,
    trigger: str = "",
    api: ExactClient | None = None,
) -> list[SyncRun]:
    """Accounts, then receivables (they link to accounts), then deletions."""
    api = api or ExactClient(connection)
    runs = [
        accounts_sync(connection=connection, api=api, full=full, trigger=trigger),
        receivables_sync(connection=connection, api=api, full=full, trigger=trigger),
        deletions_sync(connection=connection, api=api, trigger=trigger),
    ]
    return runs


# --- one key (webhooks) -------------------------------------------------------------------
def account_resync(
    *,
    connection: ExactConnection,
    key: str,
    api: ExactClient | None = None,
    trigger: str = "webhook",
) -> SyncRun:
    connection_require_usable(connection=connection)
    api = api or ExactClient(connection)
    tenant_id = connection.tenant_id
    with RunRecord(
        connection=connection,
        api=api,
        entity=SyncEntity.ACCOUNTS,
        mode=SyncMode.TARGETED,
        trigger=trigger,
    ) as ctx:
        row = api.get_entity("crm/Accounts", guid_literal(key), select=ACCOUNT_SELECT)
        ctx.counts.pages = 1
        if row is None:
            ctx.counts.deleted = ExactAccount.objects.filter(
                tenant_id=tenant_id, exact_id=uuid.UUID(str(key))
            ).delete()[0]
        else:
            now = timezone.now()
            obj = account_from_row(row, tenant_id=tenant_id, now=now)
            ctx.counts.created, ctx.counts.updated = rows_upsert(
                ExactAccount,
                [obj],
                tenant_id=tenant_id,
                update_fields=ACCOUNT_UPDATE_FIELDS,
                now=now,
            )
            receivables_link_accounts(tenant_id=tenant_id)
    return ctx.run


def invoice_receivables_resync(
    *,
    connection: ExactConnection,
    key: str,
    api: ExactClient | None = None,
    trigger: str = "webhook",
) -> SyncRun:
    """Re-read the open items of one sales invoice (webhooks name the InvoiceID)."""
    connection_require_usable(connection=connection)
    api = api or ExactClient(connection)
    tenant_id = connection.tenant_id
    with RunRecord(
        connection=connection,
        api=api,
        entity=SyncEntity.RECEIVABLES,
        mode=SyncMode.TARGETED,
        trigger=trigger,
    ) as ctx:
        invoice = api.get_entity(
            "salesinvoice/SalesInvoices", guid_literal(key), select=("InvoiceID", "InvoiceNumber")
        )
        ctx.counts.pages = 1
        if invoice is not None and invoice.get("InvoiceNumber") is not None:
            now = timezone.now()
            rows = list(
                api.iter_rows(
                    "cashflow/Receivables",
                    select=RECEIVABLE_SELECT,
                    filter=f"InvoiceNumber eq {int(invoice['InvoiceNumber'])}",
                )
            )
            ctx.counts.pages += 1
            objs = [receivable_from_row(r, tenant_id=tenant_id, now=now) for r in rows]
            receivables_attach_accounts(objs, tenant_id=tenant_id)
            ctx.counts.created, ctx.counts.updated = rows_upsert(
                ExactReceivable,
                objs,
                tenant_id=tenant_id,
                update_fields=RECEIVABLE_UPDATE_FIELDS,
                now=now,
            )
    if invoice is None:
        # Deleted in Exact: its payment term is in sync/Deleted.
        return deletions_sync(connection=connection, api=api, trigger=trigger)
    return ctx.run


__all__ = [
    "ExactError",
    "account_resync",
    "accounts_sync",
    "deletions_sync",
    "exact_sync",
    "invoice_receivables_resync",
    "receivables_sync",
]
