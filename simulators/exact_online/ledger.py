"""Posting bank and general journal entries, and how their lines settle open items.

Exact has no REST matching endpoint (API-NOTES §6.3); the simulator models the automatic
matching integrators rely on: a line naming the customer ``Account`` and the invoice number
``OurRef`` on the receivables G/L account settles that invoice's open item by the line amount
(partial amounts allowed, a line in the other direction reopens it).
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ApiError
from .models import JOURNAL_BANK, JOURNAL_GENERAL, Entry, EntryLine
from .odata import parse_datetime
from .state import Division, State

AR_GL_TYPE = 20

KINDS = {
    # kind: (journal type, lines property, journal type name, receipt sign)
    # Bank lines are signed as money into the bank, so +100 on the customer is a receipt.
    # General journal lines are debit-positive, so a receipt credits the debtor: -100.
    "BankEntry": (JOURNAL_BANK, "BankEntryLines", "bank", Decimal(1)),
    "GeneralJournalEntry": (JOURNAL_GENERAL, "GeneralJournalEntryLines", "general", Decimal(-1)),
}


def post_entry(state: State, div: Division, kind: str, body: dict[str, Any]) -> Entry:
    journal_type, lines_prop, type_name, receipt_sign = KINDS[kind]
    code = body.get("JournalCode")
    if not code:
        raise ApiError(400, "Mandatory: JournalCode")
    journal = div.journals.get(str(code))
    if journal is None:
        # Exact answers several validation failures with 500 (API-NOTES §8).
        raise ApiError(500, f"Invalid journal: {code}")
    if journal.type != journal_type:
        raise ApiError(500, f"Invalid journal. The journal must be a {type_name} journal.")
    raw_lines = body.get(lines_prop)
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ApiError(400, f"Mandatory: {lines_prop}")

    now = state.clock.now()
    entry = Entry(
        id=str(uuid.uuid4()),
        division=div.code,
        kind=kind,
        journal_code=journal.code,
        entry_number=div.next_entry_number,
        currency=body.get("Currency") or journal.currency,
        created=now,
        financial_year=0,
        financial_period=0,
        opening_balance=_decimal(body, "OpeningBalanceFC", required=False),
        closing_balance=_decimal(body, "ClosingBalanceFC", required=False),
    )
    lines = [_line(div, entry, n, raw, now) for n, raw in enumerate(raw_lines, start=1)]
    first_date = lines[0].date
    entry.financial_year = int(body.get("FinancialYear") or first_date.year)
    entry.financial_period = int(body.get("FinancialPeriod") or first_date.month)
    entry.lines = lines

    # Everything validated: only now change the world.
    div.next_entry_number += 1
    div.entries.put(entry.id, entry)
    for line in lines:
        div.entry_lines.put(line.id, line)
        _settle(state, div, entry, line, receipt_sign)
    topic = "BankEntries" if kind == "BankEntry" else "GeneralJournalEntries"
    path = ("financialtransaction/BankEntries" if kind == "BankEntry"
            else "generaljournalentry/GeneralJournalEntries")
    state.on_change(div.code, topic, "Create", entry.id, path)
    return entry


def _line(div: Division, entry: Entry, number: int, raw: Any, now) -> EntryLine:
    if not isinstance(raw, dict):
        raise ApiError(400, "Invalid line")
    gl = str(raw.get("GLAccount") or "").lower()
    if not gl:
        raise ApiError(400, "Mandatory: GLAccount")
    if gl not in div.gl_accounts:
        raise ApiError(500, f"Invalid G/L account: {gl}")
    account = raw.get("Account")
    if account and str(account).lower() not in div.accounts.rows:
        raise ApiError(500, f"Invalid account: {account}")
    our_ref = raw.get("OurRef")
    if our_ref is not None and not (isinstance(our_ref, int) or str(our_ref).isdigit()):
        raise ApiError(400, f"Cannot convert '{our_ref}' to Edm.Int32 (OurRef).")
    date = raw.get("Date")
    try:
        parsed_date = parse_datetime(date) if date else now
    except (TypeError, ValueError):
        raise ApiError(400, f"Cannot convert '{date}' to Edm.DateTime (Date).") from None
    return EntryLine(
        id=str(uuid.uuid4()),
        entry_id=entry.id,
        line_number=number,
        gl_account=gl,
        amount=_decimal(raw, "AmountFC", required=entry.kind == "BankEntry") or Decimal(0),
        date=parsed_date,
        account=str(account).lower() if account else None,
        description=raw.get("Description"),
        our_ref=int(our_ref) if our_ref is not None else None,
        notes=raw.get("Notes"),
        vat_code=raw.get("VATCode"),
        amount_vat=_decimal(raw, "AmountVATFC", required=False),
    )


def _settle(state: State, div: Division, entry: Entry, line: EntryLine, sign: Decimal) -> None:
    if not (line.account and line.our_ref is not None):
        return
    if div.gl_accounts[line.gl_account].type != AR_GL_TYPE:
        return
    invoice_id = div.invoice_by_number.get(line.our_ref)
    invoice = div.invoices.get(invoice_id) if invoice_id else None
    if invoice is None or invoice.account_id != line.account or invoice.currency != entry.currency:
        return
    receipt = line.amount * sign
    state.settle(div.code, invoice, receipt, line.date)
    line.applied_invoice = invoice.id
    line.applied_amount = receipt


def _decimal(body: dict, name: str, *, required: bool) -> Decimal | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"Mandatory: {name}")
        return None
    if isinstance(value, bool):
        raise ApiError(400, f"Cannot convert '{value}' to Edm.Double ({name}).")
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ApiError(400, f"Cannot convert '{value}' to Edm.Double ({name}).") from None


def describe(div: Division) -> list[dict]:
    """The control API's ledger view: every posted entry with its lines and settlements."""
    out = []
    for entry in sorted(div.entries.values(), key=lambda e: e.entry_number):
        out.append({
            "EntryID": entry.id,
            "EntryNumber": entry.entry_number,
            "Type": entry.kind,
            "JournalCode": entry.journal_code,
            "Currency": entry.currency,
            "Created": entry.created.isoformat(),
            "Lines": [{
                "LineNumber": ln.line_number,
                "GLAccount": ln.gl_account,
                "GLAccountCode": div.gl_accounts[ln.gl_account].code,
                "Account": ln.account,
                "AmountFC": str(ln.amount),
                "Date": ln.date.date().isoformat(),
                "Description": ln.description,
                "Notes": ln.notes,
                "OurRef": ln.our_ref,
                "VATCode": ln.vat_code,
                "AmountVATFC": None if ln.amount_vat is None else str(ln.amount_vat),
                "AppliedInvoice": ln.applied_invoice,
                "AppliedAmount": str(ln.applied_amount),
            } for ln in entry.lines],
        })
    return out
