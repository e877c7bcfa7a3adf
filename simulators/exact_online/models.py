"""Plain records the simulator keeps per division. Slots keep 50,000 invoices small."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

INVOICE = 8020
CREDIT_NOTE = 8021

# Journal types (API-NOTES §5.7).
JOURNAL_CASH = 10
JOURNAL_BANK = 12
JOURNAL_SALES = 20
JOURNAL_GENERAL = 90

# sync/Deleted EntityType values (API-NOTES §5.8).
DELETED_ACCOUNT = 2
DELETED_PAYMENT_TERM = 10
DELETED_SALES_INVOICE = 13
DELETED_BANK_ACCOUNT = 48

# crm/BankAccounts Type: "A" (account) is the only type the API can create.
BANK_ACCOUNT_TYPE_ACCOUNT = "A"


@dataclass(slots=True)
class User:
    id: str
    user_name: str
    full_name: str
    email: str
    divisions: list[int]
    current_division: int | None = None
    language_code: str = "nl-NL"


@dataclass(slots=True)
class Journal:
    id: str
    code: str
    description: str
    type: int
    gl_account: str | None
    currency: str


@dataclass(slots=True)
class GLAccount:
    id: str
    code: str
    description: str
    type: int
    balance_side: str
    balance_type: str
    timestamp: int = 0


@dataclass(slots=True)
class Account:
    id: str
    division: int
    code: str
    name: str
    created: datetime
    modified: datetime
    timestamp: int
    email: str | None = None
    phone: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    address_line3: str | None = None
    postcode: str | None = None
    city: str | None = None
    country: str | None = "NL"
    vat_number: str | None = None
    status: str = "C"
    is_sales: bool = True
    is_supplier: bool = False
    blocked: bool = False
    payment_condition_sales: str | None = "30"
    sales_currency: str | None = None
    language: str | None = "NL"
    gl_ar: str | None = None


@dataclass(slots=True)
class BankAccount:
    """A ``crm/BankAccounts`` row: one bank account of an account (customer or supplier).

    ``number`` is Exact's ``BankAccount`` field: the IBAN or local account number as text.
    """

    id: str
    division: int
    account: str
    number: str
    created: datetime
    modified: datetime
    holder_name: str | None = None
    bic: str | None = None
    description: str | None = None
    main: bool = False
    type: str = BANK_ACCOUNT_TYPE_ACCOUNT
    blocked: bool = False


@dataclass(slots=True)
class Invoice:
    """A sales invoice or credit note together with its single payment term (open item).

    ``amount`` is signed the way Exact shows it: invoices positive, credit notes negative.
    ``open`` is what is still outstanding, with the same sign.
    """

    id: str
    division: int
    number: int
    type: int
    account_id: str
    currency: str
    amount: Decimal
    invoice_date: datetime
    due_date: datetime
    created: datetime
    modified: datetime
    timestamp: int
    term_id: str
    term_timestamp: int
    hid: int
    entry_id: str
    entry_number: int
    open: Decimal
    description: str | None = None
    your_ref: str | None = None
    payment_condition: str | None = "30"
    payment_reference: str | None = None
    payment_method: str | None = "B"
    journal: str = "70"
    status: int = 50
    last_payment_date: datetime | None = None


@dataclass(slots=True)
class Mandate:
    id: str
    division: int
    account: str
    bank_account: str
    reference: str
    created: datetime
    modified: datetime
    description: str | None = None
    signature_date: datetime | None = None
    cancellation_date: datetime | None = None
    type: int = 0
    payment_type: int = 1
    main: bool = True
    first_send: bool = False


@dataclass(slots=True)
class EntryLine:
    id: str
    entry_id: str
    line_number: int
    gl_account: str
    amount: Decimal
    date: datetime
    account: str | None = None
    description: str | None = None
    our_ref: int | None = None
    notes: str | None = None
    vat_code: str | None = None
    amount_vat: Decimal | None = None
    # Which invoice this line settled (None: no open item matched) and by how much.
    applied_invoice: str | None = None
    applied_amount: Decimal = Decimal(0)


@dataclass(slots=True)
class Entry:
    id: str
    division: int
    kind: str  # "BankEntry" | "GeneralJournalEntry"
    journal_code: str
    entry_number: int
    currency: str
    created: datetime
    financial_year: int
    financial_period: int
    lines: list[EntryLine] = field(default_factory=list)
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    status: int = 20


@dataclass(slots=True)
class Subscription:
    id: str
    division: int
    client_id: str
    user_id: str
    topic: str
    callback_url: str
    created: datetime
    description: str | None = None


@dataclass(slots=True)
class Deleted:
    id: str
    division: int
    entity_type: int
    entity_key: str
    timestamp: int
    deleted_on: datetime
    deleted_by: str
