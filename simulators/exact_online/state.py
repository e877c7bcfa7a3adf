"""The simulator's in-memory world: users, divisions and their records, behind one lock.

Every mutation goes through a method here so that the side effects Exact has — a new
``Timestamp`` (rowversion), a ``sync/Deleted`` record, a webhook notification — can never
be forgotten by a caller.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .models import (
    CREDIT_NOTE,
    DELETED_ACCOUNT,
    DELETED_BANK_ACCOUNT,
    DELETED_PAYMENT_TERM,
    DELETED_SALES_INVOICE,
    INVOICE,
    JOURNAL_BANK,
    JOURNAL_CASH,
    JOURNAL_GENERAL,
    JOURNAL_SALES,
    Account,
    BankAccount,
    Deleted,
    GLAccount,
    Invoice,
    Journal,
    Subscription,
    User,
)
from .table import Table

# sync/Deleted keeps deletions for two months (API-NOTES §5.8).
DELETED_RETENTION = timedelta(days=61)

DEFAULT_USER_ID = "5e1f0c2a-0000-4000-8000-000000000001"

# (code, description, type, balance side, balance type); type numbers as in Exact.
DEFAULT_GL_ACCOUNTS = [
    ("1000", "Kas", 10, "D", "B"),
    ("1100", "Bank", 12, "D", "B"),
    ("1150", "GoCardless clearing", 12, "D", "B"),
    # In-transit (kruisposten) and suspense (vraagposten) accounts, as Dutch charts of
    # accounts have them; the type number is ours (0 = none of Exact's special types).
    ("1190", "Kruisposten", 0, "D", "B"),
    ("2390", "Vraagposten", 0, "C", "B"),
    ("1300", "Debiteuren", 20, "D", "B"),
    ("1600", "Crediteuren", 22, "C", "B"),
    ("1520", "Voorbelasting", 24, "D", "B"),
    ("8000", "Omzet", 110, "C", "W"),
    ("4600", "Bankkosten", 121, "D", "W"),
]
# (code, description, type, GL code)
DEFAULT_JOURNALS = [
    ("10", "Kas", JOURNAL_CASH, "1000"),
    ("20", "Bank", JOURNAL_BANK, "1100"),
    ("21", "GoCardless", JOURNAL_BANK, "1150"),
    ("70", "Verkoopboek", JOURNAL_SALES, "1300"),
    ("90", "Memoriaal", JOURNAL_GENERAL, None),
]


def stable_id(*parts: object) -> str:
    """Deterministic guid so seeded ids are the same on every run (handy in the demo)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "exact-sim:" + ":".join(map(str, parts))))


class Division:
    def __init__(self, code: int, name: str, currency: str, country: str, created: datetime):
        self.code = code
        self.name = name
        self.currency = currency
        self.country = country
        self.created = created
        self.gl_accounts: dict[str, GLAccount] = {}
        self.journals: dict[str, Journal] = {}
        self.accounts = Table()
        self.bank_accounts = Table()
        self.invoices = Table()
        self.mandates = Table()
        self.entries = Table()
        self.entry_lines = Table()
        self.deleted: list[Deleted] = []
        self.invoice_by_number: dict[int, str] = {}
        self.account_codes: set[str] = set()
        # rowversion: one counter per division, strictly increasing across all entities.
        self._ts = 1_000_000
        self.next_invoice_number = 25_000_001
        self.next_entry_number = 1
        self.next_hid = 1

    def next_ts(self) -> int:
        self._ts += 1
        return self._ts

    def gl_by_code(self, code: str) -> GLAccount | None:
        return next((g for g in self.gl_accounts.values() if g.code == code), None)

    def bank_accounts_of(self, account_id: str) -> list[BankAccount]:
        return [b for b in self.bank_accounts.values() if b.account == account_id]


class State:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.divisions: dict[int, Division] = {}
        self.subscriptions: dict[str, Subscription] = {}
        # Called with (division, topic, action, key, path) after each change; set by the app.
        self.on_change: Callable[[int, str, str, str, str], None] = lambda *a: None
        self.add_user(user_id=DEFAULT_USER_ID, user_name="sim.user", full_name="Sim User")

    # --- users and divisions --------------------------------------------------------

    def add_user(
        self,
        *,
        user_id: str | None = None,
        user_name: str,
        full_name: str | None = None,
        email: str | None = None,
        divisions: list[int] | None = None,
    ) -> User:
        with self.lock:
            uid = (user_id or str(uuid.uuid4())).lower()
            user = User(
                id=uid,
                user_name=user_name,
                full_name=full_name or user_name,
                email=email or f"{user_name}@example.test",
                divisions=list(divisions or []),
            )
            for code in user.divisions:
                self.division(code)  # must exist
            user.current_division = user.divisions[0] if user.divisions else None
            self.users[uid] = user
            return user

    def user(self, user_id: str) -> User:
        user = self.users.get(user_id.lower())
        if user is None:
            raise KeyError(f"unknown user {user_id}")
        return user

    def add_division(
        self,
        *,
        code: int | None = None,
        name: str | None = None,
        currency: str = "EUR",
        country: str = "NL",
        users: list[str] | None = None,
    ) -> Division:
        with self.lock:
            code = code or (max(self.divisions, default=100_000) + 1)
            if code in self.divisions:
                raise ValueError(f"division {code} already exists")
            div = Division(code, name or f"Sim Administration {code}", currency, country,
                           self.clock.now())
            for gl_code, desc, gl_type, side, kind in DEFAULT_GL_ACCOUNTS:
                gl = GLAccount(stable_id(code, "gl", gl_code), gl_code, desc, gl_type, side, kind,
                               div.next_ts())
                div.gl_accounts[gl.id] = gl
            for j_code, desc, j_type, gl_code in DEFAULT_JOURNALS:
                gl = div.gl_by_code(gl_code) if gl_code else None
                div.journals[j_code] = Journal(stable_id(code, "journal", j_code), j_code, desc,
                                               j_type, gl.id if gl else None, currency)
            self.divisions[code] = div
            for uid in users if users is not None else [DEFAULT_USER_ID]:
                user = self.user(uid)
                user.divisions.append(code)
                if user.current_division is None:
                    user.current_division = code
            return div

    def division(self, code: int) -> Division:
        div = self.divisions.get(int(code))
        if div is None:
            raise KeyError(f"unknown division {code}")
        return div

    # --- accounts -------------------------------------------------------------------

    def add_account(self, division: int, *, notify: bool = True, **fields: Any) -> Account:
        with self.lock:
            div = self.division(division)
            now = self.clock.now()
            code = str(fields.pop("code", None) or self._next_account_code(div)).strip()
            if code in div.account_codes:
                raise ValueError(f"account code {code!r} already exists")
            account = Account(
                id=str(fields.pop("id", None) or uuid.uuid4()).lower(),
                division=div.code,
                code=code,
                name=fields.pop("name"),
                created=now,
                modified=now,
                timestamp=div.next_ts(),
                gl_ar=div.gl_by_code("1300").id,
                sales_currency=div.currency,
            )
            _assign(account, fields)
            div.accounts.put(account.id, account)
            div.account_codes.add(code)
            if notify:
                self.on_change(div.code, "Accounts", "Create", account.id, "crm/Accounts")
            return account

    def _next_account_code(self, div: Division) -> str:
        n = len(div.account_codes) + 1
        while str(n) in div.account_codes:
            n += 1
        return str(n)

    def account(self, division: int, account_id: str) -> Account:
        account = self.division(division).accounts.get(account_id.lower())
        if account is None:
            raise KeyError(f"unknown account {account_id}")
        return account

    def update_account(self, division: int, account_id: str, **fields: Any) -> Account:
        with self.lock:
            div = self.division(division)
            account = self.account(division, account_id)
            if "code" in fields:
                raise ValueError("an account code cannot be changed")
            _assign(account, fields)
            account.modified = self.clock.now()
            account.timestamp = div.next_ts()
            div.accounts.touch()
            self.on_change(div.code, "Accounts", "Update", account.id, "crm/Accounts")
            return account

    def delete_account(self, division: int, account_id: str) -> None:
        with self.lock:
            div = self.division(division)
            account = self.account(division, account_id)
            if any(inv.account_id == account.id for inv in div.invoices.values()):
                # Exact refuses to delete an account that has transactions.
                raise ValueError("account has invoices and cannot be deleted")
            for bank_account in div.bank_accounts_of(account.id):
                # An account's bank accounts go with it.
                div.bank_accounts.remove(bank_account.id)
                self._record_deleted(div, DELETED_BANK_ACCOUNT, bank_account.id)
            div.accounts.remove(account.id)
            div.account_codes.discard(account.code)
            self._record_deleted(div, DELETED_ACCOUNT, account.id)
            self.on_change(div.code, "Accounts", "Delete", account.id, "crm/Accounts")

    # --- bank accounts (crm/BankAccounts) -----------------------------------------------

    def add_bank_account(self, division: int, *, account: str, number: str,
                         main: bool | None = None, notify: bool = True,
                         **fields: Any) -> BankAccount:
        """Add a bank account to an account. The account's first bank account is its main
        one whatever ``main`` says; ``main=True`` on a later one moves Main to it."""
        with self.lock:
            div = self.division(division)
            owner = self.account(division, account)
            number = "".join(str(number or "").split()).upper()
            if not number:
                raise ValueError("a bank account needs its number (IBAN)")
            others = div.bank_accounts_of(owner.id)
            now = self.clock.now()
            bank_account = BankAccount(
                id=str(fields.pop("id", None) or uuid.uuid4()).lower(),
                division=div.code,
                account=owner.id,
                number=number,
                created=now,
                modified=now,
                main=not others or bool(main),
            )
            _assign(bank_account, fields)
            if bank_account.main:
                for other in others:
                    if other.main:
                        other.main, other.modified = False, now
            div.bank_accounts.put(bank_account.id, bank_account)
            if notify:
                self.on_change(div.code, "BankAccounts", "Create", bank_account.id,
                               "crm/BankAccounts")
            return bank_account

    # --- invoices and their open items ------------------------------------------------

    def add_invoice(
        self,
        division: int,
        *,
        account: str,
        amount: Decimal | float | str,
        type: int = INVOICE,
        notify: bool = True,
        **fields: Any,
    ) -> Invoice:
        with self.lock:
            div = self.division(division)
            self.account(division, account)
            if type not in (INVOICE, CREDIT_NOTE):
                raise ValueError("type must be 8020 (invoice) or 8021 (credit note)")
            value = Decimal(str(amount)).quantize(Decimal("0.01"))
            # Credit notes are negative however the caller spells the amount.
            value = -abs(value) if type == CREDIT_NOTE else value
            number = int(fields.pop("number", None) or div.next_invoice_number)
            if number in div.invoice_by_number:
                raise ValueError(f"invoice number {number} already exists")
            div.next_invoice_number = max(div.next_invoice_number, number + 1)
            now = self.clock.now()
            invoice_date = fields.pop("invoice_date", None) or _midnight(now)
            due_date = fields.pop("due_date", None) or invoice_date + timedelta(days=30)
            open_amount = fields.pop("open", None)
            ts = div.next_ts()
            invoice = Invoice(
                id=str(fields.pop("id", None) or uuid.uuid4()).lower(),
                division=div.code,
                number=number,
                type=type,
                account_id=account.lower(),
                currency=fields.pop("currency", None) or div.currency,
                amount=value,
                invoice_date=invoice_date,
                due_date=due_date,
                created=now,
                modified=now,
                timestamp=ts,
                term_id=str(fields.pop("term_id", None) or uuid.uuid4()).lower(),
                term_timestamp=ts,
                hid=div.next_hid,
                entry_id=str(uuid.uuid4()),
                entry_number=number,
                open=value if open_amount is None else Decimal(str(open_amount)),
            )
            div.next_hid += 1
            _assign(invoice, fields)
            div.invoices.put(invoice.id, invoice)
            div.invoice_by_number[number] = invoice.id
            if notify:
                self.on_change(div.code, "SalesInvoices", "Create", invoice.id,
                               "salesinvoice/SalesInvoices")
            return invoice

    def invoice(self, division: int, invoice_id: str) -> Invoice:
        invoice = self.division(division).invoices.get(invoice_id.lower())
        if invoice is None:
            raise KeyError(f"unknown invoice {invoice_id}")
        return invoice

    def update_invoice(self, division: int, invoice_id: str, **fields: Any) -> Invoice:
        with self.lock:
            div = self.division(division)
            invoice = self.invoice(division, invoice_id)
            if "number" in fields or "type" in fields:
                raise ValueError("invoice number and type cannot be changed")
            if "amount" in fields:
                new = Decimal(str(fields.pop("amount"))).quantize(Decimal("0.01"))
                new = -abs(new) if invoice.type == CREDIT_NOTE else new
                invoice.open += new - invoice.amount
                invoice.amount = new
            if "open" in fields:
                # Over HTTP amounts arrive as strings or numbers; the open item is Decimal.
                fields["open"] = Decimal(str(fields["open"])).quantize(Decimal("0.01"))
            _assign(invoice, fields)
            invoice.modified = self.clock.now()
            invoice.timestamp = invoice.term_timestamp = div.next_ts()
            div.invoices.touch()
            self.on_change(div.code, "SalesInvoices", "Update", invoice.id,
                           "salesinvoice/SalesInvoices")
            return invoice

    def delete_invoice(self, division: int, invoice_id: str) -> None:
        with self.lock:
            div = self.division(division)
            invoice = self.invoice(division, invoice_id)
            div.invoices.remove(invoice.id)
            del div.invoice_by_number[invoice.number]
            self._record_deleted(div, DELETED_SALES_INVOICE, invoice.id)
            self._record_deleted(div, DELETED_PAYMENT_TERM, invoice.term_id)
            self.on_change(div.code, "SalesInvoices", "Delete", invoice.id,
                           "salesinvoice/SalesInvoices")

    def settle(self, division: int, invoice: Invoice, amount: Decimal, date: datetime) -> None:
        """Reduce (or, with a negative amount, reopen) an open item."""
        div = self.division(division)
        before = invoice.open
        invoice.open -= amount
        if abs(invoice.open) < abs(before):
            invoice.last_payment_date = date
        invoice.term_timestamp = div.next_ts()
        div.invoices.touch()

    # --- sync/Deleted ---------------------------------------------------------------

    def _record_deleted(self, div: Division, entity_type: int, key: str) -> None:
        div.deleted.append(Deleted(str(uuid.uuid4()), div.code, entity_type, key, div.next_ts(),
                                   self.clock.now(), DEFAULT_USER_ID))

    def live_deleted(self, division: int) -> list[Deleted]:
        div = self.division(division)
        cutoff = self.clock.now() - DELETED_RETENTION
        div.deleted = [d for d in div.deleted if d.deleted_on >= cutoff]
        return div.deleted


def _assign(record: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if not hasattr(record, name):
            raise ValueError(f"unknown field {name!r}")
        setattr(record, name, value)


def _midnight(dt: datetime) -> datetime:
    return dt.replace(hour=0, minute=0, second=0, microsecond=0)
