"""The mirror of Exact accounts and open receivables: which fields we select, how one of
Exact's rows becomes one of ours, and how a page of them is written.

Writes compare against what we hold: only rows whose raw JSON changed are written, upserted
with ``bulk_create(update_conflicts=True)`` on the (tenant, exact id) unique constraint, so
running a sync twice changes nothing. Amounts go through ``core.money`` (never a float).
"""

from __future__ import annotations

import uuid

from django.db.models import OuterRef, Subquery

from core.money import from_exact_number
from exact.models import ExactAccount, ExactReceivable, ReceivableKind
from exact.odata import parse_date, parse_datetime

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
def rows_upsert(
    model, objs: list, *, tenant_id: int, update_fields: list[str], now
) -> tuple[int, int]:
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


def receivables_attach_accounts(receivables: list[ExactReceivable], *, tenant_id: int) -> None:
    """Point unsaved receivables at the accounts we already hold (before they are written)."""
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
