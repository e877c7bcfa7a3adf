"""POST/PUT/DELETE handlers other than ledger postings: account updates, bank accounts,
direct debit mandates and webhook subscriptions."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from .errors import ApiError
from .models import CREDIT_NOTE, INVOICE, BankAccount, Mandate, Subscription
from .odata import parse_datetime
from .state import Division, State
from .webhooks import TOPICS

# Exact field -> attribute for what PUT crm/Accounts may change. Other known fields are
# read-only and silently ignored, as OData services do.
ACCOUNT_WRITABLE = {
    "Name": "name", "Email": "email", "Phone": "phone", "City": "city", "Country": "country",
    "AddressLine1": "address_line1", "AddressLine2": "address_line2",
    "AddressLine3": "address_line3", "Postcode": "postcode",
    "VATNumber": "vat_number", "Status": "status", "IsSales": "is_sales",
    "IsSupplier": "is_supplier", "Blocked": "blocked",
    "PaymentConditionSales": "payment_condition_sales", "SalesCurrency": "sales_currency",
    "Language": "language",
}
ACCOUNT_READONLY = {"ID", "Code", "GLAR", "Created", "Modified", "Division", "__metadata"}

# What POST crm/BankAccounts takes besides Account and BankAccount (the number). Type is
# read-only: the API only creates "A" (account) bank accounts.
BANK_ACCOUNT_WRITABLE = {
    "BankAccountHolderName": "holder_name", "BICCode": "bic", "Description": "description",
    "Blocked": "blocked",
}

MANDATE_WRITABLE = {
    "Description": "description", "Reference": "reference", "Type": "type",
    "PaymentType": "payment_type", "Main": "main", "FirstSend": "first_send",
    "SignatureDate": "signature_date", "CancellationDate": "cancellation_date",
}
MANDATE_DATES = {"signature_date", "cancellation_date"}


def put_account(state: State, div: Division, account_id: str, body: dict[str, Any]) -> None:
    if div.accounts.get(account_id) is None:
        raise ApiError(404, "Resource not found")
    changes = {}
    for name, value in body.items():
        if name in ACCOUNT_WRITABLE:
            changes[ACCOUNT_WRITABLE[name]] = value
        elif name not in ACCOUNT_READONLY:
            raise ApiError(
                400, f"The property '{name}' does not exist on type "
                     "'Exact.Web.Api.Models.Account'.")
    if "name" in changes and not changes["name"]:
        raise ApiError(400, "Mandatory: Name")
    state.update_account(div.code, account_id, **changes)


def post_bank_account(state: State, div: Division, body: dict[str, Any]) -> BankAccount:
    account = _existing_account(div, body, ("Account", "BankAccount"))
    fields = {attr: body[name] for name, attr in BANK_ACCOUNT_WRITABLE.items() if name in body}
    try:
        return state.add_bank_account(div.code, account=account, number=str(body["BankAccount"]),
                                      main=bool(body.get("Main")), **fields)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def post_mandate(state: State, div: Division, body: dict[str, Any]) -> Mandate:
    account = _existing_account(div, body, ("Account", "BankAccount"))
    now = state.clock.now()
    mandate = Mandate(
        id=str(uuid.uuid4()),
        division=div.code,
        account=account,
        bank_account=_bank_account_of(div, account, body["BankAccount"]),
        reference=body.get("Reference") or f"SIM-{div.code}-{len(div.mandates) + 1}",
        created=now,
        modified=now,
    )
    _apply_mandate(div, mandate, {k: v for k, v in body.items() if k != "Reference"})
    _check_reference_unique(div, mandate.id, mandate.reference)
    div.mandates.put(mandate.id, mandate)
    return mandate


def _existing_account(div: Division, body: dict[str, Any], required: tuple[str, ...]) -> str:
    """The body's ``Account`` (lower-case guid) after the mandatory-field check."""
    for name in required:
        if not body.get(name):
            raise ApiError(400, f"Mandatory: {name}")
    account = _guid(body["Account"], "Account")
    if div.accounts.get(account) is None:
        # Exact answers an unknown reference with a 500 (picqer#452).
        raise ApiError(500, f"Invalid account: {body['Account']}")
    return account


def _bank_account_of(div: Division, account: str, value: Any) -> str:
    """A mandate's ``BankAccount``: a crm/BankAccounts ID of the mandate's own account.
    Exact's wording for these refusals is not documented; the texts are the simulator's."""
    bank_account_id = _guid(value, "BankAccount")
    bank_account = div.bank_accounts.get(bank_account_id)
    if bank_account is None:
        raise ApiError(400, f"Invalid bank account: {value} is not a bank account "
                            "(crm/BankAccounts) of this division.")
    if bank_account.account != account:
        raise ApiError(400, f"Invalid bank account: {value} belongs to another account "
                            f"than {account}.")
    return bank_account_id


def put_mandate(state: State, div: Division, mandate_id: str, body: dict[str, Any]) -> None:
    mandate = div.mandates.get(mandate_id)
    if mandate is None:
        raise ApiError(404, "Resource not found")
    if "Reference" in body:
        _check_reference_unique(div, mandate.id, body["Reference"])
    _apply_mandate(div, mandate, body)
    mandate.modified = state.clock.now()
    div.mandates.touch()


def _apply_mandate(div: Division, mandate: Mandate, body: dict[str, Any]) -> None:
    for name, value in body.items():
        attr = MANDATE_WRITABLE.get(name)
        if attr is None:
            continue
        if attr in MANDATE_DATES and value is not None:
            try:
                value = parse_datetime(str(value))
            except ValueError:
                raise ApiError(400, f"Cannot convert '{value}' to Edm.DateTime ({name}).") from None
        setattr(mandate, attr, value)


def _check_reference_unique(div: Division, mandate_id: str, reference: str) -> None:
    if any(m.reference == reference and m.id != mandate_id for m in div.mandates.values()):
        raise ApiError(400, f"Reference '{reference}' already exists.")


def post_subscription(state: State, div: Division, client_id: str, user_id: str,
                      body: dict[str, Any]) -> Subscription:
    for required in ("CallbackURL", "Topic"):
        if not body.get(required):
            raise ApiError(400, f"Mandatory: {required}")
    if body["Topic"] not in TOPICS:
        raise ApiError(400, f"Invalid topic: {body['Topic']}")
    sub = Subscription(
        id=str(uuid.uuid4()),
        division=div.code,
        client_id=client_id,
        user_id=user_id,
        topic=body["Topic"],
        callback_url=body["CallbackURL"],
        created=state.clock.now(),
        description=body.get("Description"),
    )
    state.subscriptions[sub.id] = sub
    return sub


def delete_subscription(state: State, div: Division, sub_id: str) -> None:
    sub = state.subscriptions.get(sub_id)
    if sub is None or sub.division != div.code:
        raise ApiError(404, "Resource not found")
    del state.subscriptions[sub_id]


def _guid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ApiError(400, f"Cannot convert '{value}' to Edm.Guid ({name}).") from None


# --- salesentry/SalesEntries -------------------------------------------------------------

SALES_JOURNAL_TYPES = {20, 21}  # sales, return invoice


def post_sales_entry(state: State, div: Division, body: dict[str, Any]):
    """POST salesentry/SalesEntries: a financial sales entry with its open item.

    Required (Exact's reference, SalesEntrySalesEntries): ``Journal`` (a sales journal),
    ``Customer`` and ``SalesEntryLines``; each line needs ``GLAccount`` and ``AmountFC``
    (excluding VAT; ``VATAmountFC`` optional). The header amount is the sum of the lines
    including VAT. ``Type`` is read-only in Exact; a negative total is a credit note (21).
    Lines are validated, not kept (invoice lines are not simulated)."""
    code = body.get("Journal")
    if not code:
        raise ApiError(400, "Mandatory: Journal")
    journal = div.journals.get(str(code))
    if journal is None:
        raise ApiError(500, f"Invalid journal: {code}")
    if journal.type not in SALES_JOURNAL_TYPES:
        raise ApiError(500, "Invalid journal. The journal must be a sales journal.")
    customer = str(body.get("Customer") or "").lower()
    if not customer:
        raise ApiError(400, "Mandatory: Customer")
    if div.accounts.get(customer) is None:
        raise ApiError(500, f"Invalid account: {customer}")
    lines = body.get("SalesEntryLines")
    if not isinstance(lines, list) or not lines:
        raise ApiError(400, "Mandatory: SalesEntryLines")
    total = Decimal("0")
    for line in lines:
        if not isinstance(line, dict):
            raise ApiError(400, "Invalid line")
        gl = str(line.get("GLAccount") or "").lower()
        if not gl:
            raise ApiError(400, "Mandatory: GLAccount")
        if gl not in div.gl_accounts:
            raise ApiError(500, f"Invalid G/L account: {gl}")
        if line.get("AmountFC") is None:
            raise ApiError(400, "Mandatory: AmountFC")
        total += _amount(line, "AmountFC") + _amount(line, "VATAmountFC")
    number = body.get("EntryNumber") or body.get("InvoiceNumber")
    if number is not None and int(number) in div.invoice_by_number:
        raise ApiError(400, f"Entry number {number} already exists in journal {journal.code}.")
    fields: dict[str, Any] = {
        "journal": journal.code,
        "description": body.get("Description"),
        "your_ref": body.get("YourRef"),
        "payment_reference": body.get("PaymentReference"),
    }
    if body.get("PaymentCondition"):
        fields["payment_condition"] = body["PaymentCondition"]
    if body.get("Currency"):
        fields["currency"] = body["Currency"]
    for prop, attr in (("EntryDate", "invoice_date"), ("DueDate", "due_date")):
        if body.get(prop):
            try:
                fields[attr] = parse_datetime(str(body[prop]))
            except ValueError:
                raise ApiError(400, f"Invalid date: {prop}") from None
    invoice = state.add_invoice(
        div.code, account=customer, amount=abs(total), notify=False, number=number,
        type=CREDIT_NOTE if total < 0 else INVOICE, **fields)
    state.on_change(div.code, "SalesEntries", "Create", invoice.entry_id,
                    "salesentry/SalesEntries")
    return invoice


def _amount(line: dict[str, Any], name: str) -> Decimal:
    value = line.get(name)
    if value is None:
        return Decimal("0")
    if isinstance(value, bool):
        raise ApiError(400, f"Invalid value for {name}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ApiError(400, f"Invalid value for {name}") from None
