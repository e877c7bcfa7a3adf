"""Writes to Exact accounts for the customer/mandate reflection (issue 5).

Everything goes through ``ExactClient`` (rate limiter, auth, error mapping).
"""

from __future__ import annotations

from datetime import date

from exact.client import ExactClient
from exact.odata import guid_literal, string_literal

MANDATE_SELECT = ("ID", "Account", "BankAccount", "Reference", "CancellationDate", "Type")


def _date(value: date | None) -> str | None:
    return None if value is None else f"{value.isoformat()}T00:00:00"


def account_payment_condition_set(*, api: ExactClient, account_id: str, condition: str) -> None:
    """PUT crm/Accounts(ID) {PaymentConditionSales}."""
    api.put("crm/Accounts", guid_literal(account_id), {"PaymentConditionSales": condition})


def account_bank_account_id(*, api: ExactClient, account_id: str) -> str | None:
    """The ``crm/BankAccounts`` ID a direct debit mandate record of the account goes on
    (DirectDebitMandates require one): its main bank account, else another one.

    None when the account has no bank account that is not blocked.
    """
    # No try/except: crm/BankAccounts is a documented Exact endpoint (the simulator serves
    # it too), so a 404 or 400 here means something is wrong — a path or field Exact does not
    # know, the division — not "no bank account". Let it raise: the reflection then fails
    # with Exact's own error, is audited and retried, instead of claiming the account has
    # no bank account.
    rows = api.iter_rows(
        "crm/BankAccounts",
        select=("ID", "Main", "Blocked"),
        filter=f"Account eq {guid_literal(account_id)}",
    )
    # A blocked bank account must not be collected from: never attach a mandate to one.
    usable = sorted((r for r in rows if not r.get("Blocked")), key=lambda r: not r.get("Main"))
    return str(usable[0]["ID"]) if usable else None


def direct_debit_mandate_find(*, api: ExactClient, reference: str) -> dict | None:
    rows = list(
        api.iter_rows(
            "cashflow/DirectDebitMandates",
            select=MANDATE_SELECT,
            filter=f"Reference eq {string_literal(reference)}",
        )
    )
    return rows[0] if rows else None


def direct_debit_mandate_create(
    *,
    api: ExactClient,
    account_id: str,
    bank_account_id: str,
    reference: str,
    description: str,
    signature_date: date | None,
    mandate_type: int = 0,
    payment_type: int = 1,
) -> dict:
    """POST cashflow/DirectDebitMandates (Type 0 Core / 1 B2B; PaymentType 1 recurrent)."""
    return api.post(
        "cashflow/DirectDebitMandates",
        {
            "Account": account_id,
            "BankAccount": bank_account_id,
            "Reference": reference,
            "Description": description[:100],
            "SignatureDate": _date(signature_date),
            "Type": mandate_type,
            "PaymentType": payment_type,
        },
    )


def direct_debit_mandate_cancellation_set(
    *, api: ExactClient, mandate_id: str, cancelled_on: date | None
) -> None:
    """PUT CancellationDate (None reopens a mandate that was reinstated)."""
    api.put(
        "cashflow/DirectDebitMandates",
        guid_literal(mandate_id),
        {"CancellationDate": _date(cancelled_on)},
    )
