"""Approval submits exactly the previewed set, against the GoCardless simulator.

The mandates exist in the simulator (seeded) and are mirrored into ``gocardless.Mandate``
rows, as the mandate sync would. A preview is made, then approved by a person with
``run_approve``: the payments the simulator holds afterwards must be the preview's *collect*
lines — same invoices, amounts, currencies, mandates and charge dates — and nothing else.
Whatever changed after the preview is not collected; approving twice, or a superseded
preview, is refused.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest

from core.models import AuditEntry
from core.money import from_minor_units
from exact.models import ExactReceivable
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
    RunTrigger,
    SkipReason,
)
from reconciliation.collection.runs import RunRefused, run_approve, run_preview
from reconciliation.customers.models import CustomerLink
from tests.gocardless.conftest import sim_connection
from tests.reconciliation.collection.selection_fixtures import (
    TODAY,
    freeze_today,
    gc_calls,
    invoice,
    mirror_mandate_status,
    policy,
    sim_customer,
    sim_payments,
)


@pytest.fixture
def sim(gocardless_simulator):
    return gocardless_simulator


@pytest.fixture
def tenant(tenant_a, sim, monkeypatch):
    freeze_today(monkeypatch)
    sim_connection(sim, tenant=tenant_a)
    return policy(tenant_a, over_maximum_policy="split")


@pytest.fixture
def user(operator_of_a):
    return operator_of_a


def payments_by_invoice(sim) -> dict[str, list[dict]]:
    found = defaultdict(list)
    for payment in sim_payments(sim):
        found[payment["metadata"]["exact_invoice"]].append(payment)
    return dict(found)


def collect_lines(run: CollectionRun) -> dict:
    return {i.receivable_exact_id: i for i in run.items.filter(decision=Decision.COLLECT)}


def live_items(live: CollectionRun) -> dict:
    return {i.receivable_exact_id: i for i in live.items.all()}


def test_approval_submits_exactly_the_previewed_set(tenant, sim, user):
    a_account, _, a_mandate = sim_customer(sim, tenant)
    b_account, _, _ = sim_customer(sim, tenant)
    c_account, _, _ = sim_customer(sim, tenant)
    g_account, _, g_mandate = sim_customer(sim, tenant, scheme="bacs")
    x_account, _, _ = sim_customer(sim, tenant, status="cancelled")
    a = invoice(tenant, a_account, "121.00")
    b = invoice(tenant, b_account, "50.00", due=TODAY - dt.timedelta(days=9))
    invoice(tenant, b_account, "-20.55", credit_note=True)
    c = invoice(tenant, c_account, "12345.67")  # split into three instalments
    not_due = invoice(tenant, c_account, "10.00", due=TODAY + dt.timedelta(days=30))
    g = invoice(tenant, g_account, "75.50", currency="GBP")
    x = invoice(tenant, x_account, "99.00")

    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    shown = collect_lines(preview)
    assert set(shown) == {a.exact_id, b.exact_id, c.exact_id, g.exact_id}
    assert shown[b.exact_id].amount == Decimal("29.45")
    assert shown[c.exact_id].parts == 3
    assert gc_calls(sim) == {}  # the preview sent nothing

    live = run_approve(preview=preview, user=user)

    preview.refresh_from_db()
    assert (preview.state, preview.approved_by) == (RunState.APPROVED, user)
    assert preview.approved_at is not None
    assert (live.kind, live.trigger, live.preview_id) == (RunKind.LIVE, "approval", preview.pk)
    assert (live.state, live.triggered_by) == (RunState.COMPLETED, user)
    assert (live.submitted, live.errors) == (6, 0)  # 3 single payments + 3 instalments
    assert live.submitted_totals == preview.totals == {"EUR": "12496.12", "GBP": "75.50"}

    made = payments_by_invoice(sim)
    assert set(made) == {str(shown[r].invoice_number) for r in shown}
    for item in shown.values():
        payments = made[str(item.invoice_number)]
        assert len(payments) == item.parts
        total = sum(from_minor_units(p["amount"], p["currency"]) for p in payments)
        assert total == item.amount
        for payment in payments:
            assert payment["currency"] == item.currency
            assert payment["charge_date"] == item.charge_date.isoformat()
            assert payment["links"]["mandate"] == item.mandate_gocardless_id
            assert payment["metadata"]["exact_account"] == str(item.account_exact_id)
    assert made[str(a.invoice_number)][0]["links"]["mandate"] == a_mandate.gocardless_id
    assert made[str(g.invoice_number)][0]["links"]["mandate"] == g_mandate.gocardless_id
    assert str(not_due.invoice_number) not in made and str(x.invoice_number) not in made

    attempts = CollectionAttempt.objects.filter(run=live)
    assert attempts.count() == 6
    assert {t.state for t in attempts} == {AttemptState.SUBMITTED}
    assert {t.payment_gocardless_id for t in attempts} == {p["id"] for p in sim_payments(sim)}
    assert AuditEntry.objects.filter(action="collection.preview_approved").count() == 1


def test_what_changed_after_the_preview_is_not_collected(tenant, sim, user):
    unchanged_account, _, _ = sim_customer(sim, tenant)
    amount_account, _, _ = sim_customer(sim, tenant)
    credit_account, _, _ = sim_customer(sim, tenant)
    new_account, _, _ = sim_customer(sim, tenant)
    cancelled_account, _, cancelled_mandate = sim_customer(sim, tenant)
    replaced_account, replaced_link, _ = sim_customer(sim, tenant)
    due_account, _, _ = sim_customer(sim, tenant)
    paid_account, _, _ = sim_customer(sim, tenant)
    unchanged = invoice(tenant, unchanged_account, "10.00")
    amount_changed = invoice(tenant, amount_account, "20.00")
    credited = invoice(tenant, credit_account, "30.00")
    cancelled = invoice(tenant, cancelled_account, "40.00")
    replaced = invoice(tenant, replaced_account, "50.00")
    moved = invoice(tenant, due_account, "60.00", due=TODAY + dt.timedelta(days=1))
    paid = invoice(tenant, paid_account, "70.00")
    skipped_then = invoice(tenant, new_account, "0.50")  # below the scheme minimum

    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert len(collect_lines(preview)) == 7

    # The world moves on before someone presses Approve.
    ExactReceivable.objects.filter(pk=amount_changed.pk).update(outstanding=Decimal("15.00"))
    invoice(tenant, credit_account, "-5.00", credit_note=True)
    brand_new = invoice(tenant, new_account, "80.00")
    ExactReceivable.objects.filter(pk=skipped_then.pk).update(outstanding=Decimal("5.00"))
    sim.run_scenario("mandate_cancelled", cancelled_mandate.gocardless_id)
    mirror_mandate_status(cancelled_mandate, "cancelled")
    _, _, other_mandate = sim_customer(sim, tenant)
    CustomerLink.objects.filter(pk=replaced_link.pk).update(mandate=other_mandate)
    # The customer got three more days to pay.
    ExactReceivable.objects.filter(pk=moved.pk).update(due_date=TODAY + dt.timedelta(days=4))
    ExactReceivable.objects.filter(pk=paid.pk).update(outstanding=Decimal("0"), is_fully_paid=True)

    live = run_approve(preview=preview, user=user)

    made = payments_by_invoice(sim)
    assert set(made) == {str(unchanged.invoice_number)}
    assert made[str(unchanged.invoice_number)][0]["amount"] == 1000
    assert live.submitted == 1
    items = live_items(live)

    def reason(receivable):
        item = items[receivable.exact_id]
        assert item.decision == Decision.SKIP
        return item.reason, item.detail

    assert reason(amount_changed) == (SkipReason.CHANGED_SINCE_PREVIEW, "amount")
    assert reason(credited) == (SkipReason.CHANGED_SINCE_PREVIEW, "amount")
    assert reason(replaced) == (SkipReason.CHANGED_SINCE_PREVIEW, "mandate")
    assert reason(cancelled)[0] == SkipReason.MANDATE_CANCELLED
    assert reason(moved)[0] == SkipReason.CHANGED_SINCE_PREVIEW
    assert "due date" in reason(moved)[1]
    assert reason(brand_new)[0] == SkipReason.NOT_IN_PREVIEW
    assert reason(skipped_then)[0] == SkipReason.NOT_IN_PREVIEW
    assert paid.exact_id not in items  # closed in Exact: not even evaluated
    # A fresh preview shows the new world, and approving it collects it.
    fresh = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    lines = collect_lines(fresh)
    assert brand_new.exact_id in lines and amount_changed.exact_id in lines
    assert unchanged.exact_id not in lines  # in flight now
    run_approve(preview=fresh, user=user)
    assert payments_by_invoice(sim)[str(amount_changed.invoice_number)][0]["amount"] == 1500


def test_a_new_invoice_does_not_take_an_approved_lines_place_in_the_run(tenant, sim, user):
    policy(tenant, max_payments_per_run=2)
    account, _, _ = sim_customer(sim, tenant)
    first = invoice(tenant, account, "10.00", due=TODAY - dt.timedelta(days=3))
    second = invoice(tenant, account, "20.00", due=TODAY - dt.timedelta(days=2))
    third = invoice(tenant, account, "30.00", due=TODAY)
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert set(collect_lines(preview)) == {first.exact_id, second.exact_id}
    # An older invoice is booked in Exact after the preview (due before all the others).
    older = invoice(tenant, account, "40.00", due=TODAY - dt.timedelta(days=30))

    live = run_approve(preview=preview, user=user)

    made = payments_by_invoice(sim)
    assert set(made) == {str(first.invoice_number), str(second.invoice_number)}
    items = live_items(live)
    assert items[older.exact_id].reason == SkipReason.NOT_IN_PREVIEW
    assert items[third.exact_id].reason in (SkipReason.RUN_LIMIT, SkipReason.NOT_IN_PREVIEW)


def test_preview_charge_date_that_can_no_longer_be_met_is_not_collected(
    tenant, sim, user, monkeypatch
):
    account, _, _ = sim_customer(sim, tenant)
    inv = invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert collect_lines(preview)[inv.exact_id].charge_date == dt.date(2026, 3, 5)

    freeze_today(monkeypatch, TODAY + dt.timedelta(days=1))  # approved the next day
    live = run_approve(preview=preview, user=user)

    item = live_items(live)[inv.exact_id]
    assert (item.decision, item.reason) == (Decision.SKIP, SkipReason.CHANGED_SINCE_PREVIEW)
    assert "charge date" in item.detail
    assert sim_payments(sim) == []


def test_previewed_charge_date_is_kept_when_still_possible(tenant, sim, user, monkeypatch):
    policy(tenant, charge_date_policy="due_date", lead_days=10)
    account, _, _ = sim_customer(sim, tenant)
    inv = invoice(tenant, account, "10.00", due=dt.date(2026, 3, 10))
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert collect_lines(preview)[inv.exact_id].charge_date == dt.date(2026, 3, 10)

    freeze_today(monkeypatch, dt.date(2026, 3, 4))  # earliest now 9 March: 10 March still ok
    run_approve(preview=preview, user=user)

    (payment,) = sim_payments(sim)
    assert payment["charge_date"] == "2026-03-10"


def test_mandate_next_possible_charge_date_moved_past_the_preview(tenant, sim, user):
    account, _, mandate = sim_customer(sim, tenant)
    inv = invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert collect_lines(preview)[inv.exact_id].charge_date == dt.date(2026, 3, 5)
    # E.g. the mandate was reinstated: GoCardless now says 12 March at the earliest.
    mandate.next_possible_charge_date = dt.date(2026, 3, 12)
    mandate.save()

    live = run_approve(preview=preview, user=user)

    item = live_items(live)[inv.exact_id]
    assert item.reason == SkipReason.CHANGED_SINCE_PREVIEW
    assert sim_payments(sim) == []


@pytest.mark.parametrize("status", ["pending_submission", "submitted"])
def test_new_mandate_with_a_stale_next_possible_date_is_charged_late_enough(
    tenant, sim, user, status
):
    # A mandate not yet active needs one more working day (API notes; the simulator too).
    # The mirror's next_possible_charge_date was fetched earlier and is stale.
    account, _, mandate = sim_customer(sim, tenant, status=status)
    assert sim.resource("mandates", mandate.gocardless_id)["next_possible_charge_date"] == (
        "2026-03-06"
    )
    mandate.next_possible_charge_date = dt.date(2026, 3, 3)
    mandate.save()
    inv = invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert collect_lines(preview)[inv.exact_id].charge_date == dt.date(2026, 3, 6)

    live = run_approve(preview=preview, user=user)

    assert (live.submitted, live.errors) == (1, 0)
    (payment,) = sim_payments(sim)
    assert payment["charge_date"] == "2026-03-06"


def test_approving_twice_is_refused(tenant, sim, user):
    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    run_approve(preview=preview, user=user)
    with pytest.raises(RunRefused, match="not awaiting approval"):
        run_approve(preview=preview, user=user)
    assert len(sim_payments(sim)) == 1
    assert CollectionRun.objects.filter(kind=RunKind.LIVE).count() == 1


def test_approving_a_superseded_preview_is_refused(tenant, sim, user):
    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    old = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    new = run_preview(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    old.refresh_from_db()
    assert old.state == RunState.SUPERSEDED
    with pytest.raises(RunRefused):
        run_approve(preview=old, user=user)
    assert sim_payments(sim) == []
    run_approve(preview=new, user=user)
    assert len(sim_payments(sim)) == 1


def test_only_previews_awaiting_approval_can_be_approved(tenant, sim, user):
    policy(tenant, collection_mode="auto")
    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    completed = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    assert completed.state == RunState.COMPLETED
    with pytest.raises(RunRefused):
        run_approve(preview=completed, user=user)
    assert sim_payments(sim) == []


def test_approval_while_another_live_run_is_active_can_be_approved_again(
    tenant, sim, user, monkeypatch
):
    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    # Another cluster holds the tenant's live-run lock (SQLite lease or PostgreSQL advisory
    # lock alike: the lock itself is tested in test_concurrent_runs_pg.py).
    from reconciliation.collection import live as live_module

    acquire = live_module.live_run_acquire
    monkeypatch.setattr(live_module, "live_run_acquire", lambda run: False)

    refused = run_approve(preview=preview, user=user)

    assert refused.state == RunState.REFUSED
    assert sim_payments(sim) == []
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL  # nothing ran: it can be approved later
    assert preview.approved_by is None
    assert AuditEntry.objects.filter(action="collection.approval_not_run").count() == 1
    monkeypatch.setattr(live_module, "live_run_acquire", acquire)  # the other cluster finished
    live = run_approve(preview=preview, user=user)
    assert live.submitted == 1
    assert len(sim_payments(sim)) == 1


def test_refused_approval_with_a_newer_preview_is_superseded(tenant, sim, user, monkeypatch):
    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)

    def acquire_while_someone_previews(run):
        run_preview(tenant=tenant, trigger=RunTrigger.SCHEDULE)
        return False

    monkeypatch.setattr(
        "reconciliation.collection.live.live_run_acquire", acquire_while_someone_previews
    )
    run_approve(preview=preview, user=user)
    preview.refresh_from_db()
    assert preview.state == RunState.SUPERSEDED  # only the newest preview may be approved
    assert CollectionRun.objects.filter(state=RunState.AWAITING_APPROVAL).count() == 1


def test_run_start_in_review_mode_only_previews(tenant, sim, user):
    from reconciliation.collection.runs import run_start

    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    run = run_start(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    assert (run.kind, run.state, run.to_collect) == (
        RunKind.PREVIEW,
        RunState.AWAITING_APPROVAL,
        1,
    )
    assert gc_calls(sim) == {}
    assert sim_payments(sim) == []
    policy(tenant, collection_mode="off")
    with pytest.raises(RunRefused):
        run_start(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    assert gc_calls(sim) == {}


@pytest.mark.parametrize("switch", ["off", "inactive"])
def test_approval_is_refused_once_collection_is_switched_off(tenant, sim, user, switch):
    account, _, _ = sim_customer(sim, tenant)
    invoice(tenant, account, "10.00")
    preview = run_preview(tenant=tenant, trigger=RunTrigger.USER, user=user)
    if switch == "off":
        policy(tenant, collection_mode="off")
    else:
        tenant.is_active = False
        tenant.save()
    preview.tenant.refresh_from_db()
    with pytest.raises(RunRefused, match="off"):
        run_approve(preview=preview, user=user)
    preview.refresh_from_db()
    assert preview.state == RunState.AWAITING_APPROVAL
    assert sim_payments(sim) == [] and gc_calls(sim) == {}
