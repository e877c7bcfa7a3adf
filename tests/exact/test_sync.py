"""Sync services against the simulator: full (bulk) then incremental (sync/…), deletions,
idempotency, targeted re-syncs, and what each SyncRun records."""

from decimal import Decimal

import pytest

from exact.errors import ExactNeedsReauth
from exact.models import (
    ConnectionStatus,
    ExactAccount,
    ExactReceivable,
    ExactSyncCursor,
    ReceivableKind,
    SyncEntity,
    SyncMode,
    SyncRun,
)
from exact.sync import (
    account_resync,
    accounts_sync,
    deletions_sync,
    exact_sync,
    invoice_receivables_resync,
    receivables_sync,
)
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(sim):
    a = sim.seed_account(DIVISION, name="Alpha Trading", code="1068", email="ar@alpha.example")
    b = sim.seed_account(DIVISION, name="Bravo", code="2000")
    c = sim.seed_account(DIVISION, name="Charlie (no invoices)", code="3000")
    inv1 = sim.seed_invoice(DIVISION, a["ID"], "121.00", invoice_date="2025-09-01")
    inv2 = sim.seed_invoice(DIVISION, b["ID"], "99.99")
    paid = sim.seed_invoice(DIVISION, b["ID"], "50.00", open="0")
    credit = sim.seed_credit_note(DIVISION, a["ID"], "21.00")
    return {"a": a, "b": b, "c": c, "inv1": inv1, "inv2": inv2, "paid": paid, "credit": credit}


def _counts(run):
    return (run.created, run.updated, run.deleted)


def test_full_then_incremental(sim, connection, api, world):
    runs = exact_sync(connection=connection, api=api)
    accounts, receivables, _deleted = runs
    assert (accounts.mode, receivables.mode) == (SyncMode.FULL, SyncMode.FULL)
    assert _counts(accounts) == (3, 0, 0) and _counts(receivables) == (3, 0, 0)
    assert accounts.pages == 1 and accounts.calls == 2  # the watermark probe + one bulk page
    assert all(r.finished_at and not r.error for r in runs)

    alpha = ExactAccount.objects.get(exact_id=world["a"]["ID"])
    assert alpha.code == "1068"  # Exact pads codes to 18 characters; we strip
    assert alpha.name == "Alpha Trading" and alpha.email == "ar@alpha.example"
    assert alpha.raw["Name"] == "Alpha Trading" and "__metadata" not in alpha.raw
    open_items = ExactReceivable.objects.filter(tenant=connection.tenant)
    assert {r.invoice_number for r in open_items} == {
        world["inv1"]["InvoiceNumber"],
        world["inv2"]["InvoiceNumber"],
        world["credit"]["InvoiceNumber"],
    }
    first = open_items.get(invoice_number=world["inv1"]["InvoiceNumber"])
    assert first.amount == Decimal("121.00") and first.outstanding == Decimal("121.00")
    assert first.account == alpha and first.invoice_date.isoformat() == "2025-09-01"
    assert first.kind == ReceivableKind.INVOICE and not first.is_fully_paid
    credit = open_items.get(invoice_number=world["credit"]["InvoiceNumber"])
    assert credit.kind == ReceivableKind.CREDIT_NOTE and credit.amount == Decimal("-21.00")

    # changes in Exact
    sim.update_account(DIVISION, world["b"]["ID"], name="Bravo Holding")
    new = sim.seed_invoice(DIVISION, world["c"]["ID"], "10.10")
    sim.update_invoice(DIVISION, world["inv2"]["InvoiceID"], open=Decimal("0"))  # paid

    accounts, receivables, _deleted = exact_sync(connection=connection, api=api)
    assert (accounts.mode, receivables.mode) == (SyncMode.INCREMENTAL, SyncMode.INCREMENTAL)
    assert _counts(accounts) == (0, 1, 0)
    assert _counts(receivables) == (1, 1, 0)
    assert ExactAccount.objects.get(exact_id=world["b"]["ID"]).name == "Bravo Holding"
    assert ExactReceivable.objects.get(invoice_number=new["InvoiceNumber"]).outstanding == (
        Decimal("10.10")
    )
    paid = ExactReceivable.objects.get(invoice_number=world["inv2"]["InvoiceNumber"])
    assert paid.is_fully_paid and paid.outstanding == Decimal("0.00")
    cursor = ExactSyncCursor.objects.get(tenant=connection.tenant, entity=SyncEntity.ACCOUNTS)
    assert cursor.timestamp == ExactAccount.objects.get(exact_id=world["b"]["ID"]).timestamp


def test_unchanged_rerun_changes_nothing_and_costs_one_call_per_entity(sim, connection, api, world):
    exact_sync(connection=connection, api=api)
    exact_sync(connection=connection, api=api)
    snapshot = sorted(ExactAccount.objects.values_list("exact_id", "raw", "name"))
    runs = exact_sync(connection=connection, api=api)
    assert [_counts(r) for r in runs] == [(0, 0, 0)] * 3
    assert [r.calls for r in runs] == [1, 1, 1]
    assert sorted(ExactAccount.objects.values_list("exact_id", "raw", "name")) == snapshot


def test_full_sync_twice_is_idempotent(sim, connection, api, world):
    accounts_sync(connection=connection, api=api, full=True)
    receivables_sync(connection=connection, api=api, full=True)
    rows = sorted(ExactReceivable.objects.values_list("exact_id", "outstanding", "raw"))
    again = [
        accounts_sync(connection=connection, api=api, full=True),
        receivables_sync(connection=connection, api=api, full=True),
    ]
    assert [_counts(r) for r in again] == [(0, 0, 0), (0, 0, 0)]
    assert sorted(ExactReceivable.objects.values_list("exact_id", "outstanding", "raw")) == rows


def test_deletions_come_from_sync_deleted(sim, connection, api, world):
    exact_sync(connection=connection, api=api)
    sim.delete_account(DIVISION, world["c"]["ID"])
    sim.delete_invoice(DIVISION, world["inv1"]["InvoiceID"])
    run = deletions_sync(connection=connection, api=api)
    assert run.deleted == 2 and run.mode == SyncMode.INCREMENTAL
    assert not ExactAccount.objects.filter(exact_id=world["c"]["ID"]).exists()
    assert not ExactReceivable.objects.filter(
        invoice_number=world["inv1"]["InvoiceNumber"]
    ).exists()
    assert deletions_sync(connection=connection, api=api).deleted == 0


def test_full_resync_removes_what_exact_no_longer_has(sim, connection, api, world):
    exact_sync(connection=connection, api=api)
    sim.delete_account(DIVISION, world["c"]["ID"])
    run = accounts_sync(connection=connection, api=api, full=True)
    assert run.deleted == 1


def test_changes_during_a_full_run_are_caught_next_time(sim, connection, api, world):
    accounts_sync(connection=connection, api=api)  # watermark read before the bulk pages
    sim.update_account(DIVISION, world["a"]["ID"], name="Alpha Renamed")
    run = accounts_sync(connection=connection, api=api)
    assert run.mode == SyncMode.INCREMENTAL and run.updated == 1


def test_many_pages_stream_through(sim, connection, api):
    sim.seed_bulk(DIVISION, accounts=2500, invoices=2100, open_invoices=1500)
    accounts, receivables, _ = exact_sync(connection=connection, api=api)
    assert (accounts.pages, accounts.created) == (3, 2500)
    assert (receivables.pages, receivables.created) == (2, 1500)
    assert accounts.calls == 4 and receivables.calls == 3
    assert ExactReceivable.objects.filter(account__isnull=True).count() == 0


def test_targeted_resyncs(sim, connection, api, world):
    exact_sync(connection=connection, api=api)
    sim.update_account(DIVISION, world["a"]["ID"], email="new@alpha.example")
    run = account_resync(connection=connection, api=api, key=world["a"]["ID"])
    assert (run.mode, run.updated, run.calls) == (SyncMode.TARGETED, 1, 1)
    assert ExactAccount.objects.get(exact_id=world["a"]["ID"]).email == "new@alpha.example"

    sim.update_invoice(DIVISION, world["inv1"]["InvoiceID"], open=Decimal("21.00"))
    run = invoice_receivables_resync(connection=connection, api=api, key=world["inv1"]["InvoiceID"])
    assert run.updated == 1
    item = ExactReceivable.objects.get(invoice_number=world["inv1"]["InvoiceNumber"])
    assert item.outstanding == Decimal("21.00")

    sim.delete_account(DIVISION, world["c"]["ID"])
    assert account_resync(connection=connection, api=api, key=world["c"]["ID"]).deleted == 1


def test_a_failed_run_is_recorded(sim, connection, api, world):
    sim.inject("status", status=500, count=10, path="/bulk/CRM/Accounts")
    with pytest.raises(Exception):  # noqa: B017 - the run row is what we check
        accounts_sync(connection=connection, api=api)
    run = SyncRun.objects.get(entity=SyncEntity.ACCOUNTS)
    assert run.finished_at and "HTTP 500" in run.error and run.calls >= 2


def test_sync_refuses_a_connection_that_needs_reauth(sim, connection, api):
    connection.status = ConnectionStatus.NEEDS_REAUTH
    connection.save()
    with pytest.raises(ExactNeedsReauth):
        exact_sync(connection=connection, api=api)
    assert sim.call_counts() == {} or all("api/v1" not in k for k in sim.call_counts())


def test_address_and_postcode_are_mirrored_full_and_incremental(sim, connection, api):
    # Name + postcode matching and invitation prefill (issue 5) read these columns.
    account = sim.seed_account(
        DIVISION,
        name="Bakkerij Jansen",
        address_line1="Dorpsstraat 1",
        address_line2="Achterom",
        postcode="1234 AB",
        city="Utrecht",
    )
    accounts_sync(connection=connection, api=api)
    mirror = ExactAccount.objects.get(exact_id=account["ID"])
    assert (mirror.address_line1, mirror.postcode, mirror.city) == (
        "Dorpsstraat 1",
        "1234 AB",
        "Utrecht",
    )
    assert mirror.raw["AddressLine2"] == "Achterom"

    sim.update_account(DIVISION, account["ID"], postcode="3511 AA")
    accounts_sync(connection=connection, api=api)
    mirror.refresh_from_db()
    assert mirror.postcode == "3511 AA"
