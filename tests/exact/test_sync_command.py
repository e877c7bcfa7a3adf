"""`manage.py exact_sync`: the operator's "sync now", incremental or full, against the simulator.

In-process runs go through ``call_command``; a ``CommandError`` is what manage.py prints as one
line ``CommandError: …`` on stderr and exits with its ``returncode`` (not ``run_from_argv``
here: it closes every database connection, the test's included). One test runs the real
manage.py in a subprocess to see exactly that."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from core.models import AuditEntry
from exact.errors import ExactDailyBudgetExhausted
from exact.models import ConnectionStatus, ExactAccount, ExactReceivable, SyncMode, SyncRun
from tests.exact.conftest import grant_for
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SYNC_DELETED_RETENTION = timedelta(days=61)  # Exact keeps sync/Deleted for two months


def cli(*args) -> tuple[int, str, str]:
    """manage.py exact_sync ARGS → (exit status, stdout, stderr) as manage.py shows them."""
    out, err = StringIO(), StringIO()
    try:
        call_command("exact_sync", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + f"CommandError: {exc}\n"
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def world(sim):
    a = sim.seed_account(DIVISION, name="Alpha Trading", code="1068")
    b = sim.seed_account(DIVISION, name="Bravo", code="2000")
    c = sim.seed_account(DIVISION, name="Charlie (no invoices)", code="3000")
    inv1 = sim.seed_invoice(DIVISION, a["ID"], "121.00")
    inv2 = sim.seed_invoice(DIVISION, b["ID"], "99.99")
    return {"a": a, "b": b, "c": c, "inv1": inv1, "inv2": inv2}


def _reconnect(connection, sim) -> None:
    """Fresh tokens at the simulator's (moved) time, as a re-consent would give (into the
    same Exact user's grant)."""
    assert grant_for(sim).pk == connection.grant_id
    connection.refresh_from_db()


def test_incremental_by_default_with_a_summary_and_an_audit_entry(
    sim, connection, world
):
    code, out, err = cli("--tenant", "alpha")
    assert (code, err) == (0, "")
    # The first sync of a connection is a full one whatever was asked (no cursor yet).
    assert out.splitlines() == [
        "Accounts (full): 3 created, 0 updated, 0 deleted (1 pages, 2 API calls)",
        "Receivables (full): 2 created, 0 updated, 0 deleted (1 pages, 2 API calls)",
        "Deletions (full): 0 created, 0 updated, 0 deleted (0 pages, 1 API calls)",
    ]
    sim.update_account(DIVISION, world["b"]["ID"], name="Bravo Holding")

    code, out, _ = cli("--tenant", "alpha", "--json")
    assert code == 0
    runs = json.loads(out)
    assert [(r["entity"], r["mode"], r["trigger"]) for r in runs] == [
        ("accounts", "incremental", "command"),
        ("receivables", "incremental", "command"),
        ("deleted", "incremental", "command"),
    ]
    assert [(r["created"], r["updated"], r["deleted"]) for r in runs] == [
        (0, 1, 0), (0, 0, 0), (0, 0, 0)]
    assert ExactAccount.objects.get(exact_id=world["b"]["ID"]).name == "Bravo Holding"
    assert SyncRun.objects.filter(trigger="command").count() == 6
    requested = AuditEntry.objects.filter(action="exact_sync.requested", tenant=connection.tenant)
    assert [e.message for e in requested.order_by("pk")] == [
        "incremental sync of all (command)", "incremental sync of all (command)"]


def test_one_entity_full(sim, connection, world):
    assert cli("--tenant", "alpha")[0] == 0
    code, out, _ = cli("--tenant", "alpha", "--entity", "accounts", "--full", "--json")
    assert code == 0
    [run] = json.loads(out)
    assert (run["entity"], run["mode"], run["created"], run["updated"]) == (
        "accounts", SyncMode.FULL, 0, 0)
    assert SyncRun.objects.filter(trigger="command").count() == 4  # 3 (all) + accounts only


def test_full_resync_heals_an_outage_longer_than_sync_deleted_keeps(
    sim, connection, world
):
    """Deleted in Exact while we were down for more than two months: sync/Deleted no longer
    lists them, so an incremental sync keeps them forever; --full removes them."""
    assert cli("--tenant", "alpha")[0] == 0
    sim.delete_invoice(DIVISION, world["inv1"]["InvoiceID"])
    sim.delete_account(DIVISION, world["c"]["ID"])
    sim.advance((SYNC_DELETED_RETENTION + timedelta(days=1)).total_seconds())
    _reconnect(connection, sim)

    code, out, _ = cli("--tenant", "alpha", "--json")
    assert code == 0 and sum(r["deleted"] for r in json.loads(out)) == 0
    stale_invoice = ExactReceivable.objects.filter(tenant=connection.tenant,
                                                   invoice_number=world["inv1"]["InvoiceNumber"])
    stale_account = ExactAccount.objects.filter(tenant=connection.tenant,
                                                exact_id=world["c"]["ID"])
    assert stale_invoice.exists() and stale_account.exists()  # the gap an outage leaves

    code, out, _ = cli("--tenant", "alpha", "--full", "--json")
    assert code == 0
    runs = {r["entity"]: r for r in json.loads(out)}
    assert runs["accounts"]["mode"] == runs["receivables"]["mode"] == SyncMode.FULL
    assert (runs["accounts"]["deleted"], runs["receivables"]["deleted"]) == (1, 1)
    assert not stale_invoice.exists() and not stale_account.exists()
    assert set(ExactReceivable.objects.filter(tenant=connection.tenant)
               .values_list("invoice_number", flat=True)) == {world["inv2"]["InvoiceNumber"]}
    assert ExactAccount.objects.filter(tenant=connection.tenant).count() == 2

    # Afterwards the incremental sync continues from the full run's watermark.
    code, out, _ = cli("--tenant", "alpha", "--json")
    assert code == 0 and [r["mode"] for r in json.loads(out)] == ["incremental"] * 3


# --- errors: one line on stderr, exit status != 0, never a traceback ------------------------


def test_manage_py_prints_one_line_and_exits_non_zero(tmp_path):
    """The real command line, on a database that was never migrated: no traceback."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    env = {**keep, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "exact_sync", "--tenant", "alpha"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "Has `migrate` run?" in _one_line_error(result.stderr)


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("CommandError: ")
    return line


def test_unknown_tenant(db):
    code, out, err = cli("--tenant", "nobody")
    assert code == 1 and out == ""
    assert "No tenant with slug 'nobody'" in _one_line_error(err)


def test_tenant_without_an_exact_connection(tenant_b):
    code, _, err = cli("--tenant", "bravo")
    assert code == 1 and "bravo is not connected to Exact Online" in _one_line_error(err)


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (ConnectionStatus.NEEDS_REAUTH, "refresh token expired", "needs to be reconnected"),
        (ConnectionStatus.DISCONNECTED, "", "is not connected"),
    ],
)
def test_a_connection_that_is_not_usable(sim, connection, status, reason, expected):
    connection.status, connection.status_reason = status, reason
    connection.save()
    code, out, err = cli("--tenant", "alpha")
    assert code == 1 and out == ""
    assert expected in _one_line_error(err)
    assert not SyncRun.objects.exists()  # nothing was called


def test_an_inactive_tenant(sim, connection):
    connection.tenant.is_active = False
    connection.tenant.save()
    code, _, err = cli("--tenant", "alpha")
    assert code == 1 and "inactive" in _one_line_error(err)


def test_paused_for_the_day_says_try_later(sim, connection):
    connection.paused_until = timezone.now() + timedelta(hours=3)
    connection.save()
    code, _, err = cli("--tenant", "alpha")
    assert code == 3 and "paused until" in _one_line_error(err)


def test_budget_spent_during_the_run_says_try_later(sim, connection, monkeypatch):
    def spent(**kwargs):
        raise ExactDailyBudgetExhausted("daily limit", reset_at=None, status=429)

    monkeypatch.setattr("exact.management.commands.exact_sync.exact_sync", spent)
    code, _, err = cli("--tenant", "alpha")
    assert code == 3 and "daily API budget" in _one_line_error(err)


def test_an_api_failure_is_one_line_and_recorded(sim, connection, world):
    sim.inject("status", status=400, count=1, path="/bulk/CRM/Accounts")
    code, _, err = cli("--tenant", "alpha", "--full")
    assert code == 1 and "Exact sync of alpha failed" in _one_line_error(err)
    assert SyncRun.objects.get(trigger="command", entity="accounts").error


def test_an_unexpected_failure_is_one_line(sim, connection, monkeypatch):
    def broken(**kwargs):
        raise KeyError("bug")

    monkeypatch.setattr("exact.management.commands.exact_sync.exact_sync", broken)
    code, _, err = cli("--tenant", "alpha")
    assert code == 1 and "KeyError" in _one_line_error(err)
