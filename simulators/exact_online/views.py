"""The REST collections the simulator serves: their fields (names and Edm types as in Exact's
reference docs), keys, page sizes and query rules (API-NOTES §4-§7)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .odata import BOOLEAN, DATETIME, DOUBLE, GUID, INT16, INT32, INT64, STRING, Field
from .state import Division
from .table import Table

STANDARD_PAGE = 60
BULK_PAGE = 1000

# The fields Exact names in its mandatory-filtering 400 for crm/Accounts (API-NOTES §4.3;
# the notes quote the list with elisions, the gaps are filled from the Account entity).
ACCOUNTS_MANDATORY_FILTER = (
    "Accountant", "AccountManager", "ActivitySector", "ActivitySubSector", "BusinessType",
    "ChamberOfCommerce", "Classification", "Code", "CodeAtSupplier", "Country", "Created",
    "Email", "ID", "IsSales", "IsSupplier", "Modified", "Name", "Parent", "Phone", "Postcode",
    "Status", "Type", "VATNumber",
)
# bulk/Cashflow/Receivables filter whitelist [doc] (API-NOTES §4.3).
BULK_RECEIVABLES_FILTER = frozenset({
    "Account", "Document", "EndDate", "EndToEndID", "EntryDate", "EntryID", "GLAccount", "ID",
    "InvoiceDate", "InvoiceNumber", "Source", "Status", "TransactionID", "TransactionType",
})

FieldSpec = list[tuple[str, str, Callable[[Any], Any]]]


@dataclass
class View:
    path: str  # canonical spelling, e.g. "crm/Accounts"
    entity_type: str
    key: str
    specs: Callable[[Division, Any], FieldSpec]  # (division, context) -> field specs
    source: Callable[[Division, Any], Table]
    include: Callable[[Any], bool] | None = None
    page_size: int = STANDARD_PAGE
    select_required: bool = False
    mandatory_filter: tuple[str, ...] | None = None
    filterable: frozenset[str] | None = None
    sync: bool = False
    methods: frozenset[str] = frozenset({"GET"})
    # navigation property -> (view path of the lines, row -> line rows)
    nav: dict[str, tuple[str, Callable[[Any], list]]] = field(default_factory=dict)

    @property
    def skip_supported(self) -> bool:
        """Exact: "The $skip option is no longer supported for new endpoints that are released
        after March 1st 2017" (KB "OData | Query string options"). Of the endpoints served
        here the bulk and sync ones are the post-2017 ones; they refuse ``$skip``."""
        return not (self.sync or self.path.startswith("bulk/"))

    def fields(self, div: Division, ctx: Any) -> dict[str, Field]:
        return {name: Field(name, typ, get) for name, typ, get in self.specs(div, ctx)}


def _padded(code: str) -> str:
    """Exact right-aligns account codes in an 18-character field (API-NOTES §4.4)."""
    return code.rjust(18)


def _account_of(div: Division, account_id: str | None):
    return div.accounts.get(account_id) if account_id else None


# --- accounts ---------------------------------------------------------------------------


def account_specs(div: Division, ctx: Any) -> FieldSpec:
    return [
        ("ID", GUID, lambda a: a.id),
        ("Code", STRING, lambda a: _padded(a.code)),
        ("Name", STRING, lambda a: a.name),
        ("Email", STRING, lambda a: a.email),
        ("Phone", STRING, lambda a: a.phone),
        ("AddressLine1", STRING, lambda a: a.address_line1),
        ("AddressLine2", STRING, lambda a: a.address_line2),
        ("AddressLine3", STRING, lambda a: a.address_line3),
        ("Postcode", STRING, lambda a: a.postcode),
        ("City", STRING, lambda a: a.city),
        ("Country", STRING, lambda a: a.country),
        ("VATNumber", STRING, lambda a: a.vat_number),
        ("Status", STRING, lambda a: a.status),
        ("IsSales", BOOLEAN, lambda a: a.is_sales),
        ("IsSupplier", BOOLEAN, lambda a: a.is_supplier),
        ("Blocked", BOOLEAN, lambda a: a.blocked),
        ("PaymentConditionSales", STRING, lambda a: a.payment_condition_sales),
        ("SalesCurrency", STRING, lambda a: a.sales_currency),
        ("Language", STRING, lambda a: a.language),
        ("GLAR", GUID, lambda a: a.gl_ar),
        ("Created", DATETIME, lambda a: a.created),
        ("Modified", DATETIME, lambda a: a.modified),
        ("Division", INT32, lambda a: a.division),
    ]


# --- bank accounts ----------------------------------------------------------------------

# crm/BankAccounts Type -> TypeDescription; the API only creates "A" ones.
BANK_ACCOUNT_TYPES = {"A": "Account", "E": "Employee", "K": "Cash", "P": "Payment service",
                      "R": "Bank", "S": "Student", "U": "Unknown"}


def bank_account_specs(div: Division, ctx: Any) -> FieldSpec:
    def account_name(b):
        account = _account_of(div, b.account)
        return account.name if account else None

    return [
        ("ID", GUID, lambda b: b.id),
        ("Account", GUID, lambda b: b.account),
        ("AccountName", STRING, account_name),
        ("BankAccount", STRING, lambda b: b.number),
        ("BankAccountHolderName", STRING, lambda b: b.holder_name),
        ("BICCode", STRING, lambda b: b.bic),
        ("Description", STRING, lambda b: b.description),
        ("Main", BOOLEAN, lambda b: b.main),
        ("Type", STRING, lambda b: b.type),
        ("TypeDescription", STRING, lambda b: BANK_ACCOUNT_TYPES.get(b.type)),
        ("Blocked", BOOLEAN, lambda b: b.blocked),
        ("Created", DATETIME, lambda b: b.created),
        ("Modified", DATETIME, lambda b: b.modified),
        ("Division", INT32, lambda b: b.division),
    ]


def _with_timestamp(specs: Callable[[Division, Any], FieldSpec], attr: str = "timestamp"):
    def build(div: Division, ctx: Any) -> FieldSpec:
        return [*specs(div, ctx), ("Timestamp", INT64, lambda r: getattr(r, attr))]

    return build


# --- sales invoices ---------------------------------------------------------------------


def invoice_specs(div: Division, ctx: Any) -> FieldSpec:
    def name(inv):
        account = _account_of(div, inv.account_id)
        return account.name if account else None

    return [
        ("InvoiceID", GUID, lambda i: i.id),
        ("InvoiceNumber", INT32, lambda i: i.number),
        ("Type", INT32, lambda i: i.type),
        ("InvoiceTo", GUID, lambda i: i.account_id),
        ("InvoiceToName", STRING, name),
        ("OrderedBy", GUID, lambda i: i.account_id),
        ("OrderedByName", STRING, name),
        ("Currency", STRING, lambda i: i.currency),
        ("AmountFC", DOUBLE, lambda i: i.amount),
        ("AmountDC", DOUBLE, lambda i: i.amount),
        ("InvoiceDate", DATETIME, lambda i: i.invoice_date),
        ("DueDate", DATETIME, lambda i: i.due_date),
        ("Status", INT32, lambda i: i.status),
        ("Description", STRING, lambda i: i.description),
        ("YourRef", STRING, lambda i: i.your_ref),
        ("PaymentCondition", STRING, lambda i: i.payment_condition),
        ("PaymentReference", STRING, lambda i: i.payment_reference),
        ("Journal", STRING, lambda i: i.journal),
        ("Created", DATETIME, lambda i: i.created),
        ("Modified", DATETIME, lambda i: i.modified),
        ("Division", INT32, lambda i: i.division),
    ]


def sync_invoice_specs(div: Division, ctx: Any) -> FieldSpec:
    # Sync returns header and lines together; the header row has LineNumber 0.
    return [*invoice_specs(div, ctx), ("LineNumber", INT32, lambda i: 0),
            ("Timestamp", INT64, lambda i: i.timestamp)]


def sales_entry_specs(div: Division, ctx: Any) -> FieldSpec:
    """``salesentry/SalesEntries``: the financial entry behind each invoice (Exact reference
    SalesEntrySalesEntries). Invoices carry no VAT split here: ``VATAmount*`` is 0."""
    def name(inv):
        account = _account_of(div, inv.account_id)
        return account.name if account else None

    def journal_description(inv):
        journal = div.journals.get(inv.journal)
        return journal.description if journal else None

    return [
        ("EntryID", GUID, lambda i: i.entry_id),
        ("EntryNumber", INT32, lambda i: i.entry_number),
        ("InvoiceNumber", INT32, lambda i: i.number),
        ("Customer", GUID, lambda i: i.account_id),
        ("CustomerName", STRING, name),
        ("Journal", STRING, lambda i: i.journal),
        ("JournalDescription", STRING, journal_description),
        ("EntryDate", DATETIME, lambda i: i.invoice_date),
        ("DueDate", DATETIME, lambda i: i.due_date),
        ("Currency", STRING, lambda i: i.currency),
        ("AmountDC", DOUBLE, lambda i: i.amount),
        ("AmountFC", DOUBLE, lambda i: i.amount),
        ("VATAmountDC", DOUBLE, lambda i: 0),
        ("VATAmountFC", DOUBLE, lambda i: 0),
        ("Description", STRING, lambda i: i.description),
        ("YourRef", STRING, lambda i: i.your_ref),
        ("PaymentCondition", STRING, lambda i: i.payment_condition),
        ("PaymentReference", STRING, lambda i: i.payment_reference),
        ("ReportingYear", INT16, lambda i: i.invoice_date.year),
        ("ReportingPeriod", INT16, lambda i: i.invoice_date.month),
        ("Status", INT16, lambda i: 50),
        # Exact's sales entry types: 20 sales entry, 21 sales credit note.
        ("Type", INT32, lambda i: 21 if i.type == 8021 else 20),
        ("Created", DATETIME, lambda i: i.created),
        ("Modified", DATETIME, lambda i: i.modified),
        ("Division", INT32, lambda i: i.division),
    ]


# --- receivables (one payment term per invoice) -----------------------------------------


def receivable_specs(div: Division, ctx: Any) -> FieldSpec:
    gl_ar = div.gl_by_code("1300").id

    def account(inv):
        return _account_of(div, inv.account_id)

    return [
        ("ID", GUID, lambda i: i.term_id),
        ("Account", GUID, lambda i: i.account_id),
        ("AccountCode", STRING, lambda i: _padded(account(i).code) if account(i) else None),
        ("AccountName", STRING, lambda i: account(i).name if account(i) else None),
        ("AmountDC", DOUBLE, lambda i: i.open),
        ("AmountFC", DOUBLE, lambda i: i.open),
        ("TransactionAmountDC", DOUBLE, lambda i: i.amount),
        ("TransactionAmountFC", DOUBLE, lambda i: i.amount),
        ("Currency", STRING, lambda i: i.currency),
        ("Description", STRING, lambda i: i.description),
        ("Document", GUID, lambda i: None),
        ("DueDate", DATETIME, lambda i: i.due_date),
        ("EndDate", DATETIME, lambda i: i.last_payment_date if i.open == 0 else None),
        ("EndToEndID", STRING, lambda i: None),
        ("EntryDate", DATETIME, lambda i: i.invoice_date),
        ("EntryID", GUID, lambda i: i.entry_id),
        ("EntryNumber", INT32, lambda i: i.entry_number),
        ("GLAccount", GUID, lambda i: gl_ar),
        ("InvoiceDate", DATETIME, lambda i: i.invoice_date),
        ("InvoiceNumber", INT32, lambda i: i.number),
        ("IsFullyPaid", BOOLEAN, lambda i: i.open == 0),
        ("Journal", STRING, lambda i: i.journal),
        ("LastPaymentDate", DATETIME, lambda i: i.last_payment_date),
        ("PaymentCondition", STRING, lambda i: i.payment_condition),
        ("PaymentMethod", STRING, lambda i: i.payment_method),
        ("PaymentReference", STRING, lambda i: i.payment_reference),
        ("Source", INT32, lambda i: 1),
        ("Status", INT32, lambda i: 50 if i.open == 0 else 20),
        ("TransactionDueDate", DATETIME, lambda i: i.due_date),
        ("TransactionEntryID", GUID, lambda i: i.entry_id),
        ("TransactionID", GUID, lambda i: i.id),
        # Exact's transaction types: 20 sales entry, 21 sales credit note.
        ("TransactionType", INT32, lambda i: 21 if i.type == 8021 else 20),
        ("YourRef", STRING, lambda i: i.your_ref),
        ("Division", INT32, lambda i: i.division),
    ]


def payment_term_specs(div: Division, ctx: Any) -> FieldSpec:
    return [*receivable_specs(div, ctx), ("LineType", INT32, lambda i: 20),
            ("Timestamp", INT64, lambda i: i.term_timestamp)]


def receivables_list_specs(div: Division, ctx: Any) -> FieldSpec:
    journal = div.journals.get("70")

    def account(inv):
        return _account_of(div, inv.account_id)

    return [
        ("HID", INT64, lambda i: i.hid),
        ("AccountCode", STRING, lambda i: _padded(account(i).code) if account(i) else None),
        ("AccountId", GUID, lambda i: i.account_id),
        ("AccountName", STRING, lambda i: account(i).name if account(i) else None),
        ("Amount", DOUBLE, lambda i: i.open),
        ("AmountInTransit", DOUBLE, lambda i: 0),
        ("CurrencyCode", STRING, lambda i: i.currency),
        ("Description", STRING, lambda i: i.description),
        ("DueDate", DATETIME, lambda i: i.due_date),
        ("EntryNumber", INT32, lambda i: i.entry_number),
        ("InvoiceDate", DATETIME, lambda i: i.invoice_date),
        ("InvoiceNumber", INT32, lambda i: i.number),
        ("JournalCode", STRING, lambda i: i.journal),
        ("JournalDescription", STRING, lambda i: journal.description if journal else None),
        ("Notes", STRING, lambda i: None),
        ("YourRef", STRING, lambda i: i.your_ref),
    ]


# --- ledger -----------------------------------------------------------------------------


def journal_specs(div: Division, ctx: Any) -> FieldSpec:
    return [
        ("ID", GUID, lambda j: j.id),
        ("Code", STRING, lambda j: j.code),
        ("Description", STRING, lambda j: j.description),
        ("Type", INT32, lambda j: j.type),
        ("GLAccount", GUID, lambda j: j.gl_account),
        ("Currency", STRING, lambda j: j.currency),
        ("AllowVariableCurrency", BOOLEAN, lambda j: False),
        ("IsBlocked", BOOLEAN, lambda j: False),
        ("PaymentServiceProvider", INT32, lambda j: None),
        ("Division", INT32, lambda j: div.code),
    ]


def gl_specs(div: Division, ctx: Any) -> FieldSpec:
    return [
        ("ID", GUID, lambda g: g.id),
        ("Code", STRING, lambda g: g.code),
        ("Description", STRING, lambda g: g.description),
        ("Type", INT32, lambda g: g.type),
        ("BalanceSide", STRING, lambda g: g.balance_side),
        ("BalanceType", STRING, lambda g: g.balance_type),
        ("Division", INT32, lambda g: div.code),
    ]


def entry_specs(div: Division, ctx: Any) -> FieldSpec:
    def journal_description(e):
        journal = div.journals.get(e.journal_code)
        return journal.description if journal else None

    return [
        ("EntryID", GUID, lambda e: e.id),
        ("EntryNumber", INT32, lambda e: e.entry_number),
        ("JournalCode", STRING, lambda e: e.journal_code),
        ("JournalDescription", STRING, journal_description),
        ("Currency", STRING, lambda e: e.currency),
        ("FinancialYear", INT32, lambda e: e.financial_year),
        ("FinancialPeriod", INT32, lambda e: e.financial_period),
        ("OpeningBalanceFC", DOUBLE, lambda e: e.opening_balance),
        ("ClosingBalanceFC", DOUBLE, lambda e: e.closing_balance),
        ("Status", INT32, lambda e: e.status),
        ("Created", DATETIME, lambda e: e.created),
        ("Modified", DATETIME, lambda e: e.created),
        ("Division", INT32, lambda e: e.division),
    ]


def entry_line_specs(div: Division, ctx: Any) -> FieldSpec:
    def gl_code(line):
        gl = div.gl_accounts.get(line.gl_account)
        return gl.code if gl else None

    def entry_number(line):
        entry = div.entries.get(line.entry_id)
        return entry.entry_number if entry else None

    return [
        ("ID", GUID, lambda ln: ln.id),
        ("EntryID", GUID, lambda ln: ln.entry_id),
        ("EntryNumber", INT32, entry_number),
        ("LineNumber", INT32, lambda ln: ln.line_number),
        ("Account", GUID, lambda ln: ln.account),
        ("AmountFC", DOUBLE, lambda ln: ln.amount),
        ("AmountDC", DOUBLE, lambda ln: ln.amount),
        ("AmountVATFC", DOUBLE, lambda ln: ln.amount_vat),
        ("Date", DATETIME, lambda ln: ln.date),
        ("Description", STRING, lambda ln: ln.description),
        ("GLAccount", GUID, lambda ln: ln.gl_account),
        ("GLAccountCode", STRING, gl_code),
        ("Notes", STRING, lambda ln: ln.notes),
        ("OurRef", INT32, lambda ln: ln.our_ref),
        ("VATCode", STRING, lambda ln: ln.vat_code),
        ("Division", INT32, lambda ln: div.code),
    ]


# --- mandates, subscriptions, deletions, divisions, me -----------------------------------


def mandate_specs(div: Division, ctx: Any) -> FieldSpec:
    return [
        ("ID", GUID, lambda m: m.id),
        ("Account", GUID, lambda m: m.account),
        ("BankAccount", GUID, lambda m: m.bank_account),
        ("Reference", STRING, lambda m: m.reference),
        ("Description", STRING, lambda m: m.description),
        ("SignatureDate", DATETIME, lambda m: m.signature_date),
        ("CancellationDate", DATETIME, lambda m: m.cancellation_date),
        ("Type", INT32, lambda m: m.type),
        ("PaymentType", INT32, lambda m: m.payment_type),
        ("Main", BOOLEAN, lambda m: m.main),
        ("FirstSend", BOOLEAN, lambda m: m.first_send),
        ("Created", DATETIME, lambda m: m.created),
        ("Modified", DATETIME, lambda m: m.modified),
        ("Division", INT32, lambda m: m.division),
    ]


def subscription_specs(div: Division, ctx: Any) -> FieldSpec:
    return [
        ("ID", GUID, lambda s: s.id),
        ("CallbackURL", STRING, lambda s: s.callback_url),
        ("Topic", STRING, lambda s: s.topic),
        ("ClientID", GUID, lambda s: s.client_id),
        ("Division", INT32, lambda s: s.division),
        ("UserID", GUID, lambda s: s.user_id),
        ("Description", STRING, lambda s: s.description),
        ("IsInstant", BOOLEAN, lambda s: False),
        ("Created", DATETIME, lambda s: s.created),
        ("Creator", GUID, lambda s: s.user_id),
    ]


def deleted_specs(div: Division, ctx: Any) -> FieldSpec:
    return [
        ("ID", GUID, lambda d: d.id),
        ("EntityKey", GUID, lambda d: d.entity_key),
        ("EntityType", INT32, lambda d: d.entity_type),
        ("DeletedBy", GUID, lambda d: d.deleted_by),
        ("DeletedDate", DATETIME, lambda d: d.deleted_on),
        ("Division", INT32, lambda d: d.division),
        ("Timestamp", INT64, lambda d: d.timestamp),
    ]


def _division_common(ctx: Any) -> FieldSpec:
    """Fields ``system/Divisions`` and ``hrm/Divisions`` share (Exact's reference pages
    SystemSystemDivisions and HRMDivisions). The simulator keeps no address, registration or
    classification data for a division: those fields are null."""
    return [
        ("Code", INT32, lambda d: d.code),
        ("ArchiveDate", DATETIME, lambda d: None),
        ("BlockingStatus", INT32, lambda d: 0),
        ("Country", STRING, lambda d: d.country),
        ("Created", DATETIME, lambda d: d.created),
        ("Creator", GUID, lambda d: None),
        ("CreatorFullName", STRING, lambda d: None),
        ("Currency", STRING, lambda d: d.currency),
        ("Customer", GUID, lambda d: DIVISION_CUSTOMER),
        ("CustomerCode", STRING, lambda d: DIVISION_CUSTOMER_CODE),
        ("CustomerName", STRING, lambda d: DIVISION_CUSTOMER_NAME),
        ("Description", STRING, lambda d: d.name),
        ("Modified", DATETIME, lambda d: d.created),
        ("Modifier", GUID, lambda d: None),
        ("ModifierFullName", STRING, lambda d: None),
        ("OBNumber", STRING, lambda d: None),
        ("SiretNumber", STRING, lambda d: None),
        ("StartDate", DATETIME, lambda d: d.created),
        ("TaxOfficeNumber", STRING, lambda d: None),
        ("TaxReferenceNumber", STRING, lambda d: None),
        ("TemplateCode", STRING, lambda d: None),
        ("VATNumber", STRING, lambda d: None),
        ("Website", STRING, lambda d: None),
    ]


def division_specs(div: Division, ctx: Any) -> FieldSpec:
    """``system/Divisions``: lower-case ``Hid``; ``Status`` 0 inactive, 1 active, 2 archived."""
    return [
        *_division_common(ctx),
        ("AddressLine1", STRING, lambda d: None),
        ("AddressLine2", STRING, lambda d: None),
        ("AddressLine3", STRING, lambda d: None),
        ("BusinessTypeCode", STRING, lambda d: None),
        ("BusinessTypeDescription", STRING, lambda d: None),
        ("ChamberOfCommerceEstablishment", STRING, lambda d: None),
        ("ChamberOfCommerceNumber", STRING, lambda d: None),
        ("City", STRING, lambda d: None),
        ("CompanySizeCode", STRING, lambda d: None),
        ("CompanySizeDescription", STRING, lambda d: None),
        ("Current", BOOLEAN, lambda d: d.code == ctx.user.current_division),
        ("DatevAccountantNumber", STRING, lambda d: None),
        ("DatevClientNumber", STRING, lambda d: None),
        ("DivisionHRLinkUnlinkDate", DATETIME, lambda d: None),
        ("DivisionMoveDate", DATETIME, lambda d: None),
        ("Email", STRING, lambda d: None),
        ("Fax", STRING, lambda d: None),
        ("Hid", INT64, lambda d: d.code),
        ("IsDossierDivision", BOOLEAN, lambda d: False),
        ("IsHRDivision", BOOLEAN, lambda d: False),
        ("IsMainDivision", BOOLEAN, lambda d: d.code == ctx.user.current_division),
        ("IsPracticeDivision", BOOLEAN, lambda d: False),
        ("Legislation", STRING, lambda d: d.country),
        ("Phone", STRING, lambda d: None),
        ("Postcode", STRING, lambda d: None),
        ("SbiCode", STRING, lambda d: None),
        ("SbiDescription", STRING, lambda d: None),
        ("SectorCode", STRING, lambda d: None),
        ("SectorDescription", STRING, lambda d: None),
        ("ShareCapital", DOUBLE, lambda d: None),
        ("State", STRING, lambda d: None),
        ("Status", INT32, lambda d: 1),
        ("SubsectorCode", STRING, lambda d: None),
        ("SubsectorDescription", STRING, lambda d: None),
    ]


def hrm_division_specs(div: Division, ctx: Any) -> FieldSpec:
    """``hrm/Divisions``: upper-case ``HID``; ``Status`` (Int16) 0 regular, 1 archived."""
    return [
        *_division_common(ctx),
        ("CountryDescription", STRING, lambda d: COUNTRY_NAMES.get(d.country)),
        ("CurrencyDescription", STRING, lambda d: CURRENCY_NAMES.get(d.currency)),
        ("HID", INT64, lambda d: d.code),
        ("Main", BOOLEAN, lambda d: d.code == ctx.user.current_division),
        ("Status", INT16, lambda d: 0),
    ]


COUNTRY_NAMES = {"NL": "Nederland", "BE": "België", "GB": "United Kingdom", "DE": "Deutschland",
                 "FR": "France", "ES": "España"}
CURRENCY_NAMES = {"EUR": "Euro", "GBP": "Pound sterling", "USD": "US dollar"}


# The licence holder behind every simulated division.
DIVISION_CUSTOMER = "5e1f0c2a-0000-4000-8000-0000000000c1"
DIVISION_CUSTOMER_CODE = "1"
DIVISION_CUSTOMER_NAME = "Sim Customer"


def me_specs(div: Division | None, ctx: Any) -> FieldSpec:
    return [
        ("UserID", GUID, lambda u: u.id),
        ("UserName", STRING, lambda u: u.user_name),
        ("FullName", STRING, lambda u: u.full_name),
        ("Email", STRING, lambda u: u.email),
        ("CurrentDivision", INT32, lambda u: u.current_division),
        ("AccountingDivision", INT32, lambda u: u.current_division),
        ("DivisionCustomer", GUID, lambda u: DIVISION_CUSTOMER),
        ("DivisionCustomerCode", STRING, lambda u: DIVISION_CUSTOMER_CODE),
        ("DivisionCustomerName", STRING, lambda u: DIVISION_CUSTOMER_NAME),
        ("DivisionCustomerVatNumber", STRING, lambda u: None),
        ("Language", STRING, lambda u: u.language_code.split("-")[0].upper()),
        ("LanguageCode", STRING, lambda u: u.language_code),
        ("PackageCode", STRING, lambda u: "SIM"),
        ("Legislation", INT32, lambda u: 1),
        ("ServerTime", DATETIME, lambda u: ctx.now),
        # The simulator keeps every time in UTC.
        ("ServerUtcOffset", INT32, lambda u: 0),
        ("IsClientUser", BOOLEAN, lambda u: False),
        ("IsStarterUser", BOOLEAN, lambda u: False),
    ]


# --- the registry -----------------------------------------------------------------------


def _table(attr: str) -> Callable[[Division, Any], Table]:
    return lambda div, ctx: getattr(div, attr)


def _rows_table(rows, key: Callable[[Any], str]) -> Table:
    table = Table()
    for row in rows:
        table.put(key(row), row)
    return table


def _open(inv) -> bool:
    return inv.open != 0


_accounts = dict(entity_type="Exact.Web.Api.Models.Account", key="ID", specs=account_specs,
                 source=_table("accounts"))
_invoices = dict(entity_type="Exact.Web.Api.Models.SalesInvoice", key="InvoiceID",
                 specs=invoice_specs, source=_table("invoices"))
_receivables = dict(entity_type="Exact.Web.Api.Models.Receivable", key="ID",
                    specs=receivable_specs, source=_table("invoices"))
_bank_lines = ("financialtransaction/BankEntryLines",
               lambda e: e.lines)
_gj_lines = ("generaljournalentry/GeneralJournalEntryLines",
             lambda e: e.lines)


def _entries_of(kind: str):
    return lambda div, ctx: _rows_table((e for e in div.entries.values() if e.kind == kind),
                                        lambda e: e.id)


def _lines_of(kind: str):
    def source(div: Division, ctx: Any) -> Table:
        lines = (ln for ln in div.entry_lines.values()
                 if div.entries.get(ln.entry_id).kind == kind)
        return _rows_table(lines, lambda ln: ln.id)

    return source


VIEWS = [
    View("crm/Accounts", **_accounts, mandatory_filter=ACCOUNTS_MANDATORY_FILTER,
         methods=frozenset({"GET", "PUT"})),
    View("crm/BankAccounts", entity_type="Exact.Web.Api.Models.BankAccount", key="ID",
         specs=bank_account_specs, source=_table("bank_accounts"),
         methods=frozenset({"GET", "POST"})),
    View("bulk/CRM/Accounts", **_accounts, page_size=BULK_PAGE, select_required=True),
    View("sync/CRM/Accounts", entity_type="Exact.Web.Api.Models.Sync.Account", key="ID",
         specs=_with_timestamp(account_specs), source=_table("accounts"), page_size=BULK_PAGE,
         select_required=True, sync=True),
    View("salesinvoice/SalesInvoices", **_invoices),
    View("bulk/SalesInvoice/SalesInvoices", **_invoices, page_size=BULK_PAGE,
         select_required=True),
    View("sync/SalesInvoice/SalesInvoices", entity_type="Exact.Web.Api.Models.Sync.SalesInvoice",
         key="InvoiceID", specs=sync_invoice_specs, source=_table("invoices"),
         page_size=BULK_PAGE, select_required=True, sync=True),
    View("salesentry/SalesEntries", entity_type="Exact.Web.Api.Models.SalesEntry",
         key="EntryID", specs=sales_entry_specs, source=_table("invoices"),
         methods=frozenset({"GET", "POST"})),
    View("cashflow/Receivables", **_receivables),
    View("bulk/Cashflow/Receivables", **_receivables, page_size=BULK_PAGE, select_required=True,
         filterable=BULK_RECEIVABLES_FILTER),
    View("sync/Cashflow/PaymentTerms", entity_type="Exact.Web.Api.Models.Sync.PaymentTerm",
         key="ID", specs=payment_term_specs, source=_table("invoices"), page_size=BULK_PAGE,
         select_required=True, sync=True),
    View("read/financial/ReceivablesList", entity_type="Exact.Web.Api.Models.ReceivablesList",
         key="HID", specs=receivables_list_specs, source=_table("invoices"), include=_open,
         page_size=BULK_PAGE),
    View("sync/Deleted", entity_type="Exact.Web.Api.Models.Sync.Deleted", key="ID",
         specs=deleted_specs, source=lambda div, ctx: _rows_table(ctx.deleted, lambda d: d.id),
         page_size=BULK_PAGE, select_required=True, sync=True),
    View("financial/Journals", entity_type="Exact.Web.Api.Models.Journal", key="ID",
         specs=journal_specs,
         source=lambda div, ctx: _rows_table(div.journals.values(), lambda j: j.id)),
    View("financial/GLAccounts", entity_type="Exact.Web.Api.Models.GLAccount", key="ID",
         specs=gl_specs,
         source=lambda div, ctx: _rows_table(div.gl_accounts.values(), lambda g: g.id)),
    View("financialtransaction/BankEntries", entity_type="Exact.Web.Api.Models.BankEntry",
         key="EntryID", specs=entry_specs, source=_entries_of("BankEntry"),
         methods=frozenset({"GET", "POST"}), nav={"BankEntryLines": _bank_lines}),
    View("financialtransaction/BankEntryLines", entity_type="Exact.Web.Api.Models.BankEntryLine",
         key="ID", specs=entry_line_specs, source=_lines_of("BankEntry")),
    View("generaljournalentry/GeneralJournalEntries",
         entity_type="Exact.Web.Api.Models.GeneralJournalEntry", key="EntryID",
         specs=entry_specs, source=_entries_of("GeneralJournalEntry"), select_required=True,
         methods=frozenset({"GET", "POST"}), nav={"GeneralJournalEntryLines": _gj_lines}),
    View("generaljournalentry/GeneralJournalEntryLines",
         entity_type="Exact.Web.Api.Models.GeneralJournalEntryLine", key="ID",
         specs=entry_line_specs, source=_lines_of("GeneralJournalEntry"), select_required=True),
    View("cashflow/DirectDebitMandates", entity_type="Exact.Web.Api.Models.DirectDebitMandate",
         key="ID", specs=mandate_specs, source=_table("mandates"), select_required=True,
         methods=frozenset({"GET", "POST", "PUT"})),
    View("webhooks/WebhookSubscriptions",
         entity_type="Exact.Web.Api.Models.WebhookSubscription", key="ID",
         specs=subscription_specs, source=lambda div, ctx: _rows_table(ctx.subscriptions,
                                                                        lambda s: s.id),
         methods=frozenset({"GET", "POST", "DELETE"})),
    View("system/Divisions", entity_type="Exact.Web.Api.System.Division", key="Code",
         specs=division_specs,
         source=lambda div, ctx: _rows_table(ctx.divisions, lambda d: str(d.code))),
    View("hrm/Divisions", entity_type="Exact.Web.Api.Models.HRM.Division", key="Code",
         specs=hrm_division_specs,
         source=lambda div, ctx: _rows_table(ctx.divisions, lambda d: str(d.code))),
]

BY_PATH = {v.path.lower(): v for v in VIEWS}

ME = View("current/Me", entity_type="Exact.Web.Api.System.Me", key="UserID", specs=me_specs,
          source=lambda div, ctx: _rows_table([ctx.user], lambda u: u.id))
