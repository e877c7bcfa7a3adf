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
  the (tenant, exact id) unique constraint — so running twice changes nothing.
- A ``SyncRun`` row records every run: pages, calls, created / updated / deleted, error.
- ``account_resync`` / ``invoice_receivables_resync``: one key, for webhooks.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from core.money import from_exact_number
from exact.client import ExactClient
from exact.connections import connection_require_usable
from exact.errors import ExactApiError, ExactError
from exact.models import (
    ExactAccount,
    ExactConnection,
    ExactReceivable,
    ExactSyncCursor,
    ReceivableKind,
    SyncEntity,
    SyncMode,
    SyncRun,
)
from exact.odata import guid_literal, int64_literal, parse_date, parse_datetime

logger = logging.getLogger(__name__)

# Only what we filter on or hand to GoCardless (address and postcode prefill mandate
# invitations and drive name + postcode matching; AddressLine2 stays in `raw`).
ACCOUNT_SELECT = (
    "ID",
    "Code",
    "Name",
    "Email",
    "AddressLine1",
    "AddressLine2",
    "Postcode",
    "City",
    "Country",
    "Language",
    "Status",
    "Blocked",
    "PaymentConditionSales",
    "SalesCurrency",
    "Modified",
)
RECEIVABLE_SELECT = (
    "ID",
    "Account",
    "AmountFC",
    "TransactionAmountFC",
    "Currency",
    "DueDate",
    "InvoiceDate",
    "InvoiceNumber",
    "IsFullyPaid",
    "Status",
    "TransactionType",
    "EntryNumber",
    "YourRef",
    "Description",
)
DELETED_SELECT = ("ID", "EntityKey", "EntityType", "Timestamp")
OPEN_FILTER = "Status ne 50"  # 50 = matched (paid); 20 open, 30 selected, 40 processed
RECEIPT_LINE_TYPE = 20  # sync/Cashflow/PaymentTerms also returns payments (22)
DELETED_ACCOUNT = 2
DELETED_PAYMENT_TERM = 10
CREDIT_NOTE_TRANSACTION_TYPES = {21}

ACCOUNT_UPDATE_FIELDS = [
    "code",
    "name",
    "email",
    "address_line1",
    "postcode",
    "city",
    "country",
    "language",
    "status",
    "blocked",
    "payment_condition",
    "currency",
    "modified",
    "timestamp",
    "raw",
    "synced_at",
]
RECEIVABLE_UPDATE_FIELDS = [
    "account",
    "account_exact_id",
    "invoice_number",
    "invoice_date",
    "due_date",
    "currency",
    "amount",
    "outstanding",
    "is_fully_paid",
    "status",
    "kind",
    "timestamp",
    "raw",
    "synced_at",
]


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    pages: int = 0


def _clean(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "__metadata"}


def _str(value, limit: int) -> str:
    return ("" if value is None else str(value)).strip()[:limit]


# --- row mapping --------------------------------------------------------------------------
def account_from_row(row: dict, *, tenant_id: int, now) -> ExactAccount:
    raw = _clean(row)
    return ExactAccount(
        tenant_id=tenant_id,
        exact_id=uuid.UUID(str(row["ID"])),
        code=_str(row.get("Code"), 32),  # Exact right-aligns codes in 18 characters
        name=_str(row.get("Name"), 255),
        email=_str(row.get("Email"), 255),
        address_line1=_str(row.get("AddressLine1"), 255),
        postcode=_str(row.get("Postcode"), 32),
        city=_str(row.get("City"), 100),
        country=_str(row.get("Country"), 8),
        language=_str(row.get("Language"), 16),
        status=_str(row.get("Status"), 4),
        blocked=bool(row.get("Blocked")),
        payment_condition=_str(row.get("PaymentConditionSales"), 20),
        currency=_str(row.get("SalesCurrency"), 3),
        modified=parse_datetime(row.get("Modified")),
        timestamp=row.get("Timestamp"),
        raw=raw,
        synced_at=now,
    )


def receivable_from_row(row: dict, *, tenant_id: int, now) -> ExactReceivable:
    raw = _clean(row)
    account = row.get("Account")
    kind = (
        ReceivableKind.CREDIT_NOTE
        if row.get("TransactionType") in CREDIT_NOTE_TRANSACTION_TYPES
        else ReceivableKind.INVOICE
    )
    return ExactReceivable(
        tenant_id=tenant_id,
        exact_id=uuid.UUID(str(row["ID"])),
        account_exact_id=uuid.UUID(str(account)) if account else None,
        invoice_number=row.get("InvoiceNumber"),
        invoice_date=parse_date(row.get("InvoiceDate")),
        due_date=parse_date(row.get("DueDate")),
        currency=_str(row.get("Currency"), 3),
        amount=from_exact_number(row.get("TransactionAmountFC")) or from_exact_number(0),
        outstanding=from_exact_number(row.get("AmountFC")) or from_exact_number(0),
        is_fully_paid=bool(row.get("IsFullyPaid")),
        status=row.get("Status"),
        kind=kind,
        timestamp=row.get("Timestamp"),
        raw=raw,
        synced_at=now,
    )


# --- writing ------------------------------------------------------------------------------
def _upsert(model, objs: list, *, tenant_id: int, update_fields: list[str], now) -> tuple[int, int]:
    """Write only what changed; returns (created, updated). Unchanged rows get ``synced_at``."""
    if not objs:
        return 0, 0
    by_id = {o.exact_id: o for o in objs}  # a page may repeat a key: the last one wins
    existing = dict(
        model.objects.filter(tenant_id=tenant_id, exact_id__in=list(by_id)).values_list(
            "exact_id", "raw"
        )
    )
    changed = [o for key, o in by_id.items() if existing.get(key) != o.raw]
    unchanged = [key for key, o in by_id.items() if key in existing and existing[key] == o.raw]
    if changed:
        model.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["tenant", "exact_id"],
            update_fields=update_fields,
            batch_size=500,
        )
    if unchanged:
        model.objects.filter(tenant_id=tenant_id, exact_id__in=unchanged).update(synced_at=now)
    created = sum(1 for o in changed if o.exact_id not in existing)
    return created, len(changed) - created


def _link_accounts(receivables: list[ExactReceivable], *, tenant_id: int) -> None:
    ids = {r.account_exact_id for r in receivables if r.account_exact_id}
    pks = dict(
        ExactAccount.objects.filter(tenant_id=tenant_id, exact_id__in=ids).values_list(
            "exact_id", "pk"
        )
    )
    for r in receivables:
        r.account_id = pks.get(r.account_exact_id)


def receivables_link_accounts(*, tenant_id: int) -> int:
    """Receivables that arrived before their account: link them now."""
    return ExactReceivable.objects.filter(
        tenant_id=tenant_id, account__isnull=True, account_exact_id__isnull=False
    ).update(
        account=Subquery(
            ExactAccount.objects.filter(
                tenant_id=OuterRef("tenant_id"), exact_id=OuterRef("account_exact_id")
            ).values("pk")[:1]
        )
    )


# --- runs ---------------------------------------------------------------------------------
class _Run:
    """Context for one SyncRun: records counts, calls and any error."""

    def __init__(
        self, *, connection: ExactConnection, api: ExactClient, entity: str, mode: str, trigger: str
    ):
        self.api = api
        self.calls_before = api.calls
        self.counts = _Counts()
        self.run = SyncRun.objects.create(
            tenant_id=connection.tenant_id,
            entity=entity,
            mode=mode,
            trigger=trigger[:100],
            started_at=timezone.now(),
        )

    def __enter__(self) -> _Run:
        return self

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


def _cursor(connection: ExactConnection, entity: str) -> ExactSyncCursor:
    cursor, _ = ExactSyncCursor.objects.get_or_create(
        tenant_id=connection.tenant_id, division=connection.division, entity=entity
    )
    return cursor


def _watermark(api: ExactClient, path: str) -> int:
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


def _stream(pages: Iterable[list[dict]], counts: _Counts) -> Iterator[list[dict]]:
    for page in pages:
        counts.pages += 1
        yield page


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
    cursor = _cursor(connection, spec.entity)
    mode = SyncMode.FULL if full or cursor.full_sync_at is None else SyncMode.INCREMENTAL
    tenant_id = connection.tenant_id
    with _Run(
        connection=connection, api=api, entity=spec.entity, mode=mode, trigger=trigger
    ) as ctx:
        started = timezone.now()
        if mode == SyncMode.FULL:
            watermark = _watermark(api, spec.sync_path)
            pages = api.iter_pages(spec.bulk_path, select=spec.select, filter=spec.bulk_filter)
        else:
            pages = api.iter_pages(
                spec.sync_path,
                select=(*spec.select, *spec.sync_select, "Timestamp"),
                filter=f"Timestamp gt {int64_literal(cursor.timestamp)}",
            )
        for page in _stream(pages, ctx.counts):
            now = timezone.now()
            # The page's highest Timestamp, rows we skip included: they are behind us too.
            top = max((int(r.get("Timestamp") or 0) for r in page), default=0)
            objs = [
                spec.from_row(r, tenant_id=tenant_id, now=now) for r in page if spec.keep_row(r)
            ]
            spec.prepare(objs, tenant_id=tenant_id)
            created, updated = _upsert(
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
    prepare=_link_accounts,
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
    cursor = _cursor(connection, SyncEntity.DELETED)
    tenant_id = connection.tenant_id
    first = cursor.full_sync_at is None
    mode = SyncMode.FULL if first else SyncMode.INCREMENTAL
    with _Run(
        connection=connection, api=api, entity=SyncEntity.DELETED, mode=mode, trigger=trigger
    ) as ctx:
        if first:
            # A full mirror reflects every deletion so far: start from the present.
            cursor.timestamp = _watermark(api, "sync/Deleted")
            cursor.full_sync_at = timezone.now()
            cursor.save()
            return ctx.run
        pages = api.iter_pages(
            "sync/Deleted",
            select=DELETED_SELECT,
            filter=f"Timestamp gt {int64_literal(cursor.timestamp)}",
        )
        for page in _stream(pages, ctx.counts):
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
    with _Run(
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
            ctx.counts.created, ctx.counts.updated = _upsert(
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
    with _Run(
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
            _link_accounts(objs, tenant_id=tenant_id)
            ctx.counts.created, ctx.counts.updated = _upsert(
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
