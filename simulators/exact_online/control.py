"""The control API: seeding, clock, faults, inspection. Every method of ``ControlMixin`` is
callable in-process on the Simulator and over HTTP as ``/_control/<method>`` (JSON object
in the body or query-string arguments; JSON out). No auth; loopback clients only."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from simulators.webhook_chaos import WebhookChaosControl

from . import ledger
from .consent import CONSENT_MODES
from .models import CREDIT_NOTE, INVOICE, Account, BankAccount, Invoice
from .odata import parse_datetime
from .seed import seed_bulk

if TYPE_CHECKING:
    from . import Simulator

LOOPBACK = {"127.0.0.1", "::1", "localhost"}

# Methods reachable over HTTP, and the integer arguments query strings must be cast to.
METHODS = {
    "reset", "settings", "seed_user", "seed_division", "seed_account", "seed_bank_account",
    "update_account", "delete_account", "seed_invoice", "seed_credit_note", "update_invoice",
    "delete_invoice", "invoice", "seed_bulk", "advance", "set_time", "now", "inject",
    "call_counts", "ledger", "deliver_webhooks", "webhook_log", "token_chains",
    "chaos", "chaos_off", "chaos_counts", "chaos_log", "webhook_chaos", "webhook_chaos_off",
    "flush_webhooks", "webhook_chaos_counts",
}
INT_ARGS = {"division", "accounts", "invoices", "open_invoices", "credit_notes", "seed",
            "number", "count", "status", "ms", "type", "minutely_limit", "daily_limit", "burst"}
FLOAT_ARGS = {"seconds", "webhook_interval", "rate", "timeout_seconds", "duplicate", "drop",
              "delay", "max_delay_seconds"}
BOOL_ARGS = {"reset", "process", "main", "blocked", "ticking", "by_path"}
# Lists in a JSON body that the Python API takes as tuples.
TUPLE_ARGS = {"kinds", "paths"}


def _query_arg(name: str, value: str) -> Any:
    if name in INT_ARGS:
        return int(value)
    if name in FLOAT_ARGS:
        return float(value)
    if name in BOOL_ARGS:
        return value.lower() in ("1", "true", "yes")
    return value


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return parse_datetime(str(value))


def account_dict(a: Account) -> dict:
    return {"ID": a.id, "Code": a.code, "Name": a.name, "Email": a.email,
            "Status": a.status, "Blocked": a.blocked,
            "PaymentConditionSales": a.payment_condition_sales, "Timestamp": a.timestamp,
            "Division": a.division}


def bank_account_dict(b: BankAccount) -> dict:
    return {"ID": b.id, "Account": b.account, "BankAccount": b.number,
            "BankAccountHolderName": b.holder_name, "BICCode": b.bic, "Main": b.main,
            "Type": b.type, "Blocked": b.blocked, "Division": b.division}


def invoice_dict(i: Invoice) -> dict:
    return {"InvoiceID": i.id, "InvoiceNumber": i.number, "Type": i.type,
            "Account": i.account_id, "Currency": i.currency, "AmountFC": str(i.amount),
            "Open": str(i.open), "IsFullyPaid": i.open == 0,
            "InvoiceDate": i.invoice_date.date().isoformat(),
            "DueDate": i.due_date.date().isoformat(), "TermID": i.term_id,
            "Timestamp": i.timestamp, "TermTimestamp": i.term_timestamp, "Division": i.division}


_INVOICE_DATES = ("invoice_date", "due_date", "last_payment_date")


class ControlMixin(WebhookChaosControl):
    """Mixed into Simulator; relies on its state, clock, faults, webhooks, app, settings."""

    # --- world ------------------------------------------------------------------------

    def seed_user(self, user_name: str, full_name: str | None = None, email: str | None = None,
                  user_id: str | None = None, divisions: list[int] | None = None) -> dict:
        u = self.state.add_user(user_id=user_id, user_name=user_name, full_name=full_name,
                                email=email, divisions=divisions)
        return {"UserID": u.id, "UserName": u.user_name, "Divisions": u.divisions}

    def seed_division(self, division: int | None = None, name: str | None = None,
                      currency: str = "EUR", country: str = "NL",
                      users: list[str] | None = None) -> dict:
        div = self.state.add_division(code=division, name=name, currency=currency,
                                      country=country, users=users)
        return {
            "division": div.code, "name": div.name, "currency": div.currency,
            "journals": {j.code: {"ID": j.id, "Type": j.type, "Description": j.description}
                         for j in div.journals.values()},
            "gl_accounts": {g.code: g.id for g in div.gl_accounts.values()},
        }

    def seed_account(self, division: int, name: str, iban: str | None = None,
                     bic: str | None = None, holder_name: str | None = None,
                     **fields: Any) -> dict:
        """With ``iban`` the account also gets its main bank account (crm/BankAccounts)."""
        with self.state.lock:
            account = self.state.add_account(division, name=name, **fields)
            bank_accounts = []
            if iban:
                bank_accounts.append(self.seed_bank_account(
                    division, account.id, iban, bic=bic, holder_name=holder_name))
            return {**account_dict(account), "BankAccounts": bank_accounts}

    def seed_bank_account(self, division: int, account: str, iban: str, bic: str | None = None,
                          holder_name: str | None = None, main: bool | None = None,
                          **fields: Any) -> dict:
        """``iban``: the number (Exact's ``BankAccount`` text). The holder defaults to the
        account's name; the account's first bank account is its main one."""
        with self.state.lock:
            owner = self.state.account(division, account)
            return bank_account_dict(self.state.add_bank_account(
                division, account=owner.id, number=iban, main=main, bic=bic,
                holder_name=holder_name or owner.name, **fields))

    def update_account(self, division: int, account_id: str, **fields: Any) -> dict:
        return account_dict(self.state.update_account(division, account_id, **fields))

    def delete_account(self, division: int, account_id: str) -> dict:
        self.state.delete_account(division, account_id)
        return {"deleted": account_id}

    def seed_invoice(self, division: int, account: str, amount: float | str | Decimal,
                     type: int = INVOICE, **fields: Any) -> dict:
        for name in _INVOICE_DATES:
            if name in fields:
                fields[name] = _when(fields[name])
        return invoice_dict(self.state.add_invoice(division, account=account, amount=amount,
                                                   type=type, **fields))

    def seed_credit_note(self, division: int, account: str, amount: float | str | Decimal,
                         **fields: Any) -> dict:
        return self.seed_invoice(division, account, amount, type=CREDIT_NOTE, **fields)

    def update_invoice(self, division: int, invoice_id: str, **fields: Any) -> dict:
        for name in _INVOICE_DATES:
            if name in fields:
                fields[name] = _when(fields[name])
        return invoice_dict(self.state.update_invoice(division, invoice_id, **fields))

    def delete_invoice(self, division: int, invoice_id: str) -> dict:
        self.state.delete_invoice(division, invoice_id)
        return {"deleted": invoice_id}

    def invoice(self, division: int, invoice_id: str | None = None,
                number: int | None = None) -> dict:
        with self.state.lock:
            div = self.state.division(division)
            if invoice_id is None:
                invoice_id = div.invoice_by_number.get(int(number or 0))
                if invoice_id is None:
                    raise KeyError(f"unknown invoice number {number}")
            return invoice_dict(self.state.invoice(division, invoice_id))

    def seed_bulk(self, division: int, accounts: int = 0, invoices: int = 0,
                  open_invoices: int = 0, credit_notes: int = 0, seed: int = 1) -> dict:
        return seed_bulk(self.state, division, accounts=accounts, invoices=invoices,
                         open_invoices=open_invoices, credit_notes=credit_notes, seed=seed)

    # --- clock, settings, faults --------------------------------------------------------

    def advance(self, seconds: float) -> dict:
        return {"now": self.clock.advance(float(seconds)).isoformat()}

    def set_time(self, now: str | datetime, ticking: bool = False) -> dict:
        """Move the clock to ``now``; ``ticking``: let it run on with real time from there."""
        return {"now": self.clock.set(_when(now), ticking=bool(ticking)).isoformat()}

    def now(self) -> dict:
        return {"now": self.clock.now().isoformat()}

    def settings(self, **changes: Any) -> dict:
        """consent ("interactive"|"allow"|"deny"), consent_user, consent_divisions,
        redirect_uris, minutely_limit, daily_limit, webhook_interval (seconds; 0 = off)."""
        with self.state.lock:
            for name, value in changes.items():
                if name == "consent" and value not in CONSENT_MODES:
                    raise ValueError(f"consent must be one of {CONSENT_MODES}")
                if name in ("minutely_limit", "daily_limit"):
                    setattr(self.ratelimiter, name, int(value))
                elif name == "webhook_interval":
                    self.webhooks.stop_background()
                    if value:
                        self.webhooks.start_background(float(value))
                elif name not in self.oauth_settings:
                    raise ValueError(f"unknown setting {name!r}")
                else:
                    self.oauth_settings[name] = value
            return {**self.oauth_settings, "minutely_limit": self.ratelimiter.minutely_limit,
                    "daily_limit": self.ratelimiter.daily_limit}

    def inject(self, fault: str, **options: Any) -> dict:
        """fault: "latency" (ms), "status" (status, count, path), "timeout" (count, seconds,
        process, path), "lose_token_response" (count, seconds), "clear"."""
        return self.faults.inject(fault, **options)

    # --- random faults (chaos.py; webhook_chaos(), ...: simulators/webhook_chaos.py) ----

    def chaos(self, seed: int, rate: float, **options: Any) -> dict:
        """Random faults on /api/v1/ calls: ``faults.chaos`` (kinds, timeout_seconds, burst,
        paths)."""
        for name in TUPLE_ARGS & options.keys():
            if options[name] is not None:
                options[name] = tuple(options[name])
        return self.faults.chaos(seed=seed, rate=rate, **options)

    def chaos_off(self) -> dict:
        return self.faults.chaos_off()

    def chaos_counts(self, by_path: bool = False) -> dict:
        return self.faults.chaos_counts(by_path=bool(by_path))

    def chaos_log(self) -> list[dict]:
        return self.faults.chaos_log()

    # --- inspection -------------------------------------------------------------------

    def call_counts(self, reset: bool = False) -> dict:
        """{"GET /api/v1/{division}/crm/Accounts": {"total": n, "200": n, ...}, ...}"""
        return self.app.calls.snapshot(reset=bool(reset))

    def token_chains(self, user_id: str | None = None) -> list[dict]:
        """The refresh-token chains of one user (default: the consenting user), oldest first:
        ``[{id, used, obsolete, created_at}]``."""
        with self.state.lock:
            return self.oauth.chains_of(user_id or self.oauth_settings["consent_user"])

    def ledger(self, division: int) -> list[dict]:
        with self.state.lock:
            return ledger.describe(self.state.division(division))

    def deliver_webhooks(self) -> list[tuple[str, int | None]]:
        return self.webhooks.deliver()

    def webhook_log(self) -> list[dict]:
        return list(self.webhooks.log)


def handle(sim: Simulator, request: Request) -> Response:
    if request.remote_addr not in LOOPBACK:
        return _json(403, {"error": "control API is loopback-only"})
    name = request.path.removeprefix("/_control/").strip("/")
    if name not in METHODS:
        return _json(404, {"error": f"unknown control method {name!r}"})
    if request.method == "POST" and request.content_length:
        kwargs = request.get_json(force=True, silent=True)
        if not isinstance(kwargs, dict):
            return _json(400, {"error": "body must be a JSON object"})
    else:
        try:
            kwargs = {k: _query_arg(k, v) for k, v in request.args.items()}
        except ValueError as exc:
            return _json(400, {"error": f"ValueError: {exc}"})
    try:
        result = getattr(sim, name)(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        return _json(400, {"error": f"{type(exc).__name__}: {exc}"})
    return _json(200, result)


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body, default=str), status=status,
                    content_type="application/json; charset=utf-8")
