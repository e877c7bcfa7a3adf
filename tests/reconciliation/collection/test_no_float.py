"""No float anywhere in the collection path — checked by running it, not by reading it.

What would actually catch a float regression:

- ``decimal.FloatOperation`` trapped for the whole run: constructing a Decimal from a float or
  comparing a Decimal with a float raises (Decimal ± float already raises by itself);
- amounts chosen so that a float detour changes them (``int(float("1.13") * 100) == 112``),
  checked to the cent in the simulator's payments, our attempts and items;
- every JSON body sent to GoCardless parsed with ``parse_float`` that fails: not one float
  literal leaves the process, and ``amount`` is a JSON integer;
- every JSON we store about the run (totals, audit before/after) scanned for floats;
- a Hypothesis property over amounts and currencies: Exact amount → selection → attempts
  (read back from the database) → payment params → ``from_minor_units``, exact for every
  amount, instalment split included.
"""

from __future__ import annotations

import ast
import decimal
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import money
from core.audit import Actor
from core.models import AuditEntry
from core.money import from_minor_units, to_minor_units
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    RunKind,
    SkipReason,
)
from reconciliation.collection.runs import run_start
from reconciliation.collection.schemes import SCHEME_RULES
from reconciliation.collection.selection import selection_evaluate
from reconciliation.collection.submission import attempt_submit, attempts_write
from tests.gocardless.conftest import sim_connection
from tests.reconciliation.collection.selection_fixtures import (
    TODAY,
    customer,
    freeze_today,
    invoice,
    policy,
    sim_customer,
    sim_payments,
)

SCHEME_FOR = {rule.currency: scheme for scheme, rule in SCHEME_RULES.items()}
CURRENCIES = sorted(SCHEME_FOR)
ROOT = Path(__file__).resolve().parents[3]


class FloatFound(AssertionError):
    pass


def _no_float(text: str):
    raise FloatFound(f"float literal {text!r} in JSON")


def floats_in(value, path="$") -> list[str]:
    """Paths of every float inside a JSON-like value."""
    if isinstance(value, float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in floats_in(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in floats_in(v, f"{path}[{i}]")]
    return []


@pytest.fixture
def float_trap():
    """Any implicit float ↔ Decimal mixing in this thread raises decimal.FloatOperation."""
    context = decimal.getcontext()
    before = context.traps[decimal.FloatOperation]
    context.traps[decimal.FloatOperation] = True
    try:
        yield
    finally:
        context.traps[decimal.FloatOperation] = before


def test_the_trap_catches_float_mixing(float_trap):
    with pytest.raises(decimal.FloatOperation):
        Decimal(0.1)  # noqa: RUF032 (the float is the point)
    with pytest.raises(decimal.FloatOperation):
        assert Decimal("1.00") < 1.5
    with pytest.raises(TypeError):
        money.to_minor_units(1.13, "EUR")


@pytest.fixture
def sent_bodies(monkeypatch):
    """The raw JSON of every POST our GoCardless client sends."""
    from gocardless import client as client_module

    bodies: list[tuple[str, str]] = []
    original = client_module._SessionApiClient.post

    def post(self, path, body, headers=None):
        bodies.append((path, json.dumps(body)))
        return original(self, path, body, headers=headers)

    monkeypatch.setattr(client_module._SessionApiClient, "post", post)
    return bodies


@pytest.fixture
def money_calls(monkeypatch):
    """Argument types reaching the money module during the run (it refuses floats itself)."""
    seen: dict[str, set] = defaultdict(set)
    for name in ("to_minor_units", "from_minor_units"):
        original = getattr(money, name)

        def spy(value, currency, _original=original, _name=name):
            seen[_name].add(type(value))
            return _original(value, currency)

        for module in (
            "core.money",
            "reconciliation.collection.selection",
            "reconciliation.collection.selection_rules",
            "reconciliation.collection.submission",
        ):
            target = __import__(module, fromlist=[name])
            if hasattr(target, name):
                monkeypatch.setattr(target, name, spy)
    return seen


# Amounts a float detour would change (int(float(a) * 100) is one cent short for each).
TRICKY = {
    "EUR": ["1.13", "4.35", "1024.09", "-2.01"],  # the negative one: a credit note
    "GBP": ["1.15", "2.03", "8.95"],
    "SEK": ["10.03", "1024.09"],
    "DKK": ["10.03", "2.01"],  # 2.01 DKK is below the scheme minimum
    "AUD": ["4.35", "1024.09"],
    "NZD": ["2.03", "8.95"],
    "CAD": ["4.35", "2.26"],
    "USD": ["1.13", "4.06"],
}
SPLIT_EUR = "10000.03"  # three instalments: 3333.35 + 3333.34 + 3333.34


def test_the_amounts_are_ones_a_float_would_break():
    for amounts in TRICKY.values():
        for text in amounts:
            exact = to_minor_units(abs(Decimal(text)), "EUR")
            assert int(abs(float(text)) * 100) != exact, text


@pytest.mark.django_db(transaction=False)
def test_live_run_end_to_end_has_no_float(
    tenant_a, gocardless_simulator, monkeypatch, float_trap, sent_bodies, money_calls
):
    sim = gocardless_simulator
    freeze_today(monkeypatch)
    sim_connection(sim, tenant=tenant_a)
    tenant = policy(
        tenant_a,
        collection_mode="auto",
        currencies=CURRENCIES,
        minimum_amount=Decimal("0"),
        over_maximum_policy="split",
        lead_days=30,
    )
    expected: dict = {}  # receivable guid -> (Decimal amount, currency)
    seeded: dict = {}
    for currency, amounts in TRICKY.items():
        account, _, _ = sim_customer(sim, tenant, scheme=SCHEME_FOR[currency])
        balance = sum(Decimal(a) for a in amounts)
        left = balance
        for text in amounts:
            amount = Decimal(text)
            r = invoice(tenant, account, text, currency=currency, credit_note=amount < 0)
            if amount < 0:
                continue
            seeded[r.exact_id] = (amount, currency)
            take = min(amount, left)
            minimum = from_minor_units(SCHEME_RULES[SCHEME_FOR[currency]].minimum, currency)
            if take >= minimum:
                expected[r.exact_id] = (take, currency)
                left -= take
    split_account, _, _ = sim_customer(sim, tenant, scheme="sepa_core")
    split = invoice(tenant, split_account, SPLIT_EUR)
    seeded[split.exact_id] = expected[split.exact_id] = (Decimal(SPLIT_EUR), "EUR")

    run = run_start(tenant=tenant, trigger="schedule")

    assert run.kind == RunKind.LIVE and run.errors == 0, run.error
    # 1. Nothing sent to GoCardless carries a float; payment amounts are JSON integers.
    payment_bodies = [json.loads(b, parse_float=_no_float) for p, b in sent_bodies]
    assert payment_bodies, "the run sent nothing"
    for body in payment_bodies:
        assert type(body["payments"]["amount"]) is int
    # 2. The simulator holds exactly the expected amounts, to the minor unit.
    made: dict = defaultdict(int)
    for payment in sim_payments(sim):
        assert type(payment["amount"]) is int
        attempt = CollectionAttempt.objects.get(payment_gocardless_id=payment["id"])
        assert from_minor_units(payment["amount"], payment["currency"]) == attempt.amount
        made[attempt.receivable_exact_id] += payment["amount"]
    assert dict(made) == {
        rid: to_minor_units(amount, currency) for rid, (amount, currency) in expected.items()
    }
    # 3. Read back from the database: Decimal, equal to what was seeded, exactly.
    per_invoice: dict = defaultdict(Decimal)
    for attempt in CollectionAttempt.objects.filter(tenant=tenant):
        assert type(attempt.amount) is Decimal
        assert attempt.amount == attempt.amount.quantize(Decimal("0.01"))
        assert attempt.state == AttemptState.SUBMITTED
        per_invoice[attempt.receivable_exact_id] += attempt.amount
    assert dict(per_invoice) == {rid: amount for rid, (amount, _) in expected.items()}
    split_parts = CollectionAttempt.objects.filter(receivable_exact_id=split.exact_id)
    assert sorted(a.amount for a in split_parts) == [
        Decimal("3333.34"),
        Decimal("3333.34"),
        Decimal("3333.35"),
    ]
    for item in CollectionItem.objects.filter(run=run):
        assert type(item.amount) is Decimal and type(item.outstanding) is Decimal
        assert item.outstanding == seeded[item.receivable_exact_id][0]
        if item.decision == Decision.COLLECT:
            assert item.amount == expected[item.receivable_exact_id][0]
        else:
            assert item.reason in (SkipReason.BELOW_MINIMUM, SkipReason.CREDITED)
    # 4. Stored JSON: totals are Decimal strings summing exactly; no float in any audit entry.
    run.refresh_from_db()
    totals: dict = defaultdict(Decimal)
    for amount, currency in expected.values():
        totals[currency] += amount
    for stored in (run.totals, run.submitted_totals):
        assert all(type(v) is str for v in stored.values())
        assert {c: Decimal(v) for c, v in stored.items()} == dict(totals)
    for entry in AuditEntry.objects.filter(tenant=tenant):
        assert floats_in(entry.before) == [] and floats_in(entry.after) == [], entry.action
    # 5. The money module did the conversions, and only ever saw Decimal and int.
    assert money_calls["to_minor_units"] == {Decimal}
    assert money_calls["from_minor_units"] <= {int}


# --- the property: every amount and currency, through selection and submission ---------------


class RecordingClient:
    """Stands in for GoCardless: keeps the params exactly as they would be JSON-encoded."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def payment_create(self, *, params: dict, idempotency_key: str) -> dict:
        raw = json.dumps(params)
        self.sent.append(json.loads(raw, parse_float=_no_float))
        return {"id": f"PM{len(self.sent):010d}", "status": "pending_submission"}


amounts = st.integers(min_value=1, max_value=50_000_000)  # minor units, up to 500,000.00


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    currency=st.sampled_from(CURRENCIES),
    minor=amounts,
    credit_minor=st.one_of(st.just(0), amounts),
    split=st.booleans(),
)
def test_amounts_survive_the_whole_path_exactly(tenant_a, currency, minor, credit_minor, split):
    rule = SCHEME_RULES[SCHEME_FOR[currency]]
    with decimal.localcontext() as context, transaction.atomic():
        context.traps[decimal.FloatOperation] = True
        tenant = policy(
            tenant_a,
            currencies=CURRENCIES,
            minimum_amount=Decimal("0"),
            over_maximum_policy="split" if split else "skip",
            max_payments_per_run=1_000_000,
        )
        account, _, _ = customer(tenant, scheme=SCHEME_FOR[currency])
        outstanding = from_minor_units(minor, currency)
        r = invoice(tenant, account, outstanding, currency=currency)
        if credit_minor:
            invoice(
                tenant,
                account,
                -from_minor_units(credit_minor, currency),
                currency=currency,
                credit_note=True,
            )
        r.refresh_from_db()
        assert type(r.outstanding) is Decimal and r.outstanding == outstanding

        (plan,) = selection_evaluate(tenant=tenant, today=TODAY)

        owed = minor - credit_minor
        if owed <= 0:
            assert plan.reason == SkipReason.CREDITED
        elif owed < rule.minimum:
            assert plan.reason == SkipReason.BELOW_MINIMUM
        elif owed > rule.maximum and not split:
            assert plan.reason == SkipReason.OVER_SCHEME_MAXIMUM
        else:
            assert plan.decision == Decision.COLLECT, plan.reason
            assert to_minor_units(plan.amount, currency) == owed
            run = CollectionRun.objects.create(
                tenant=tenant, kind=RunKind.LIVE, trigger="schedule", as_of=TODAY, state="completed"
            )
            actor = Actor.schedule("test")
            rows = attempts_write(tenant=tenant, run=run, plan=plan, actor=actor)
            client = RecordingClient()
            for row in rows:
                attempt_submit(attempt=row, client=client, actor=actor)
            sent = [p["amount"] for p in client.sent]
            assert all(type(a) is int for a in sent)
            assert sum(sent) == owed
            assert all(rule.minimum <= a <= rule.maximum for a in sent)
            assert len(sent) == -(-owed // rule.maximum)
            stored = CollectionAttempt.objects.filter(run=run).order_by("part")
            assert [to_minor_units(a.amount, currency) for a in stored] == sent
            assert all(type(a.amount) is Decimal for a in stored)
            assert sum(a.amount for a in stored) == from_minor_units(owed, currency)
            assert [from_minor_units(a, currency) for a in sent] == [a.amount for a in stored]
        transaction.set_rollback(True)


# --- and a guard on the source, so a float cannot come back unnoticed -----------------------

# Every module on a money path: the ground floor's conversions, the collection engine, the
# bookings, and each provider's seam where amounts enter. A listed path that is gone fails
# (a move must update this list, never silently shrink what is guarded).
MONEY_PATHS = [
    "core",
    "reconciliation/collection",
    "reconciliation/bookings",
    "exact/sync.py",
    "exact/mirrors.py",
    "exact/odata.py",
    "gocardless/mirrors.py",
]
# Where the word float may appear: the JSON-number carrier Exact needs (made and checked exact
# in core), the two booking helpers that hand it on untouched, and the guard that refuses a
# float from GoCardless. Nothing else on a money path.
FLOAT_CARRIERS = {
    ("core/money.py", "to_exact_number"),
    ("core/money.py", "minor_units_from_api"),
    ("reconciliation/bookings/rules.py", "exact_amount"),
    ("reconciliation/bookings/rules.py", "_units"),
}


def _money_modules() -> list[str]:
    found = []
    for entry in MONEY_PATHS:
        path = ROOT / entry
        files = [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
        found += [
            str(f.relative_to(ROOT)) for f in files if "migrations" not in f.parts
        ]
    return found


def test_every_money_path_is_there():
    missing = [entry for entry in MONEY_PATHS if not (ROOT / entry).exists()]
    assert missing == [], f"moved or removed: update MONEY_PATHS ({missing})"
    assert len(_money_modules()) > 30


def _floats(tree: ast.AST, module: str) -> list[str]:
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (module, node.name) in FLOAT_CARRIERS:
            allowed |= {id(n) for n in ast.walk(node)}
    return [
        f"{module}:{node.lineno}"
        for node in ast.walk(tree)
        if id(node) not in allowed
        and (
            (isinstance(node, ast.Name) and node.id == "float")
            or (isinstance(node, ast.Constant) and isinstance(node.value, float))
        )
    ]


@pytest.mark.parametrize("module", _money_modules())
def test_no_float_on_a_money_path(module):
    assert _floats(ast.parse((ROOT / module).read_text()), module) == []


def test_the_guard_sees_a_float():
    assert _floats(ast.parse("x = 1.5\ny = float(2)"), "m.py") == ["m.py:1", "m.py:2"]
    carrier = "def to_exact_number(a):\n    return float(a)\n"
    assert _floats(ast.parse(carrier), "core/money.py") == []
