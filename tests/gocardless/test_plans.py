"""Subscriptions and instalment schedules in the mirrors (events, the refresh), their payments'
plan links, and payout items fetched when a payout is first seen (410 Gone recorded).

Simulator clock: Mon 2 Mar 2026 10:00 UTC (frozen, advanced by the tests); an active Bacs
mandate can be charged from Thu 5 Mar, a SEPA one from Thu 5 Mar too (3 working days)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from core.audit import Actor
from core.models import AuditEntry
from gocardless import errors
from gocardless.client import GoCardlessClient
from gocardless.event_processing import events_process
from gocardless.events_replay import events_reprocess
from gocardless.events_store import events_store
from gocardless.models import (
    EventSource,
    GoCardlessEvent,
    InstalmentSchedule,
    Payment,
    Payout,
    PayoutItem,
    PayoutItemsState,
    Subscription,
)
from gocardless.plans_refresh import plans_refresh
from tests.gocardless.conftest import sim_connection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(gocardless_simulator):
    return gocardless_simulator


@pytest.fixture
def connection(sim):
    return sim_connection(sim)


@pytest.fixture
def api(sim):
    return GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)


@pytest.fixture
def mandates(sim):
    seeded = sim.seed(mandates=[{"scheme": "bacs"}, {"scheme": "sepa_core"}])
    return {"bacs": seeded["mandates"][0], "sepa": seeded["mandates"][1]}


def _process_new(sim, connection) -> dict:
    pks = events_store(tenant=connection.tenant, events=sim.events(), source=EventSource.POLL)
    counts = events_process(event_pks=pks)
    assert counts.get("failed", 0) == 0, GoCardlessEvent.objects.exclude(error="").values_list(
        "error", flat=True)
    return counts


def _subscription(sim, mandate, **extra):
    params = {"amount": 2500, "currency": "GBP", "interval_unit": "monthly",
              "day_of_month": 10, "count": 3, "name": "Gym membership",
              "links": {"mandate": mandate}}
    params.update(extra)
    return sim.create_subscription(params)


def test_a_subscription_and_its_payments_reach_the_mirrors_from_events(sim, connection,
                                                                       mandates):
    sub = _subscription(sim, mandates["bacs"])
    sim.advance(days=3)  # Thu 5 Mar: the first payment is created (charged on Tue 10 Mar)
    _process_new(sim, connection)

    mirror = Subscription.objects.get(tenant=connection.tenant, gocardless_id=sub["id"])
    assert (mirror.status, mirror.mandate_id, mirror.amount, mirror.currency, mirror.name) == (
        "active", mandates["bacs"], 2500, "GBP", "Gym membership")
    assert (mirror.interval_unit, mirror.interval, mirror.day_of_month) == ("monthly", 1, 10)
    assert mirror.start_date.isoformat() == "2026-03-10" and mirror.end_date is None
    # The forecast as GoCardless gives it now: the two payments not created yet.
    assert mirror.upcoming_payments == [{"charge_date": "2026-04-10", "amount": 2500},
                                        {"charge_date": "2026-05-11", "amount": 2500}]
    (payment,) = Payment.objects.filter(tenant=connection.tenant)
    assert (payment.subscription_id, payment.instalment_schedule_id, payment.metadata) == (
        sub["id"], "", {})
    assert payment.charge_date.isoformat() == "2026-03-10" and payment.amount == 2500
    # The plan's status change is audited like the money's.
    entry = AuditEntry.objects.get(action="subscription.status_changed")
    assert (entry.before, entry.after) == ({"status": ""},
                                           {"status": "active", "amount": 2500,
                                            "currency": "GBP"})

    # Cancelled at GoCardless: the mirror follows, its forecast empties.
    GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url,
                     timeout=5).sdk.subscriptions.cancel(sub["id"])
    _process_new(sim, connection)
    mirror.refresh_from_db()
    assert (mirror.status, mirror.upcoming_payments) == ("cancelled", [])


def test_an_instalment_schedule_lists_its_payments_not_yet_collected(sim, connection, mandates):
    schedule = sim.create_instalment_schedule({
        "name": "Kitchen in three parts", "currency": "EUR", "total_amount": 30000,
        "instalments": [{"charge_date": "2026-03-12", "amount": 10000},
                        {"charge_date": "2026-04-13", "amount": 10000},
                        {"charge_date": "2026-05-12", "amount": 10000}],
        "links": {"mandate": mandates["sepa"]},
    })
    sim.advance(seconds=1)  # GoCardless creates the payments asynchronously
    _process_new(sim, connection)

    mirror = InstalmentSchedule.objects.get(tenant=connection.tenant,
                                            gocardless_id=schedule["id"])
    assert (mirror.status, mirror.currency, mirror.total_amount, mirror.name,
            mirror.mandate_id) == ("active", "EUR", 30000, "Kitchen in three parts",
                                   mandates["sepa"])
    payments = Payment.objects.filter(instalment_schedule_id=schedule["id"])
    assert sorted(mirror.payment_ids) == sorted(p.gocardless_id for p in payments)
    assert len(mirror.payment_ids) == 3
    assert mirror.upcoming_payments == [{"charge_date": "2026-03-12", "amount": 10000},
                                        {"charge_date": "2026-04-13", "amount": 10000},
                                        {"charge_date": "2026-05-12", "amount": 10000}]

    sim.advance(days=14)  # the first one is collected and paid out
    _process_new(sim, connection)
    mirror.refresh_from_db()
    assert [u["charge_date"] for u in mirror.upcoming_payments] == ["2026-04-13", "2026-05-12"]


def test_the_refresh_fetches_plans_made_before_we_listened(sim, connection, mandates, api):
    sub = _subscription(sim, mandates["bacs"], name="Magazine")
    schedule = sim.create_instalment_schedule({
        "name": "Two parts", "currency": "EUR", "total_amount": 5000,
        "instalments": [{"charge_date": "2026-03-20", "amount": 2000},
                        {"charge_date": "2026-04-20", "amount": 3000}],
        "links": {"mandate": mandates["sepa"]},
    })
    sim.advance(seconds=1)
    assert [s["id"] for s in api.subscriptions_iter()] == [sub["id"]]
    assert api.subscription_get(sub["id"])["name"] == "Magazine"
    assert [s["id"] for s in api.instalment_schedules_iter()] == [schedule["id"]]
    assert api.instalment_schedule_get(schedule["id"])["status"] == "active"

    counts = plans_refresh(connection=connection)
    assert counts == {"subscriptions": 1, "instalment_schedules": 1, "changed": 2,
                      "skipped": 0}
    assert Subscription.objects.get(gocardless_id=sub["id"]).name == "Magazine"
    refreshed = InstalmentSchedule.objects.get(gocardless_id=schedule["id"])
    assert (refreshed.status, len(refreshed.payment_ids)) == ("active", 2)
    # Its payments are written by their events only (their signals); not mirrored yet, so
    # nothing is upcoming until they are.
    assert refreshed.upcoming_payments == [] and not Payment.objects.exists()
    _process_new(sim, connection)
    refreshed.refresh_from_db()
    assert [u["amount"] for u in refreshed.upcoming_payments] == [2000, 3000]
    # Again: nothing changes, nothing is audited twice; the command says the same.
    audits = AuditEntry.objects.count()
    again = plans_refresh(connection=connection)
    assert again["changed"] == 0 and AuditEntry.objects.count() == audits
    call_command("gocardless_plans_refresh", tenant=connection.tenant.slug)


def _paid_payment(api, mandate):
    return api.payment_create(params={"amount": 4200, "currency": "GBP",
                                      "links": {"mandate": mandate},
                                      "metadata": {"exact_invoice": "1"}},
                              idempotency_key="pay-1")["id"]


def test_payout_items_are_fetched_when_the_payout_is_first_seen(sim, connection, mandates,
                                                                api):
    _paid_payment(api, mandates["bacs"])
    sim.advance(days=10)
    _process_new(sim, connection)
    (payout,) = Payout.objects.filter(tenant=connection.tenant)
    assert [p["id"] for p in sim.resource("payouts")] == [payout.gocardless_id]
    assert payout.items_state == PayoutItemsState.FETCHED
    assert payout.items_checked_at is not None
    assert payout.items.count() == len(sim.resource("payout_items", payout.gocardless_id)) > 0


def test_payout_items_gone_after_six_months_are_a_state_not_a_failure(sim, connection,
                                                                      mandates, api):
    _paid_payment(api, mandates["bacs"])
    sim.advance(days=10)
    sim.advance(days=200)  # we hear of the payout only now (a new connection, a backlog)
    counts = _process_new(sim, connection)
    assert counts.get("failed", 0) == 0
    (payout,) = Payout.objects.filter(tenant=connection.tenant)
    assert payout.status == "paid" and payout.amount > 0
    assert payout.items_state == PayoutItemsState.UNAVAILABLE
    assert not PayoutItem.objects.exists()
    # Asked again (a replay): still unavailable, no error, no second call for the items.
    events = GoCardlessEvent.objects.filter(resource_type="payouts")
    events_reprocess(event_pks=list(events.values_list("pk", flat=True)),
                     actor=Actor.system("test"))
    payout.refresh_from_db()
    assert payout.items_state == PayoutItemsState.UNAVAILABLE


def test_items_fetched_once_stay_when_a_later_fetch_is_gone(sim, connection, mandates, api):
    _paid_payment(api, mandates["bacs"])
    sim.advance(days=10)
    _process_new(sim, connection)
    (payout,) = Payout.objects.filter(tenant=connection.tenant)
    lines = payout.items.count()
    assert lines > 0
    sim.advance(days=200)
    events = GoCardlessEvent.objects.filter(resource_type="payouts")
    events_reprocess(event_pks=list(events.values_list("pk", flat=True)),
                     actor=Actor.system("test"))
    payout.refresh_from_db()
    assert payout.items_state == PayoutItemsState.FETCHED and payout.items.count() == lines
    with pytest.raises(errors.GoneError):
        list(api.payout_items_iter(payout.gocardless_id))


def test_migration_0009_fills_the_new_columns_from_what_was_mirrored_before(transactional_db):
    from django.db import connection as db
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import TenantFactory

    executor = MigrationExecutor(db)
    before = [("gocardless", "0008_plans_and_payout_items_state")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Tenant = apps.get_model("tenants", "Tenant")
    tenant = Tenant.objects.get(pk=TenantFactory().pk)
    OldPayment = apps.get_model("gocardless", "Payment")
    OldPayout = apps.get_model("gocardless", "Payout")
    OldItem = apps.get_model("gocardless", "PayoutItem")
    OldPayment.objects.create(tenant=tenant, gocardless_id="PM1",
                              raw={"links": {"mandate": "MD1", "subscription": "SB1"}})
    OldPayment.objects.create(tenant=tenant, gocardless_id="PM2",
                              raw={"links": {"instalment_schedule": "IS1"}})
    OldPayment.objects.create(tenant=tenant, gocardless_id="PM3", raw={"links": {}})
    with_items = OldPayout.objects.create(tenant=tenant, gocardless_id="PO1")
    OldItem.objects.create(tenant=tenant, payout=with_items, position=0,
                           item_type="payment_paid_out", amount="100.0")
    OldPayout.objects.create(tenant=tenant, gocardless_id="PO2")

    executor = MigrationExecutor(db)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    found = {p.gocardless_id: (p.subscription_id, p.instalment_schedule_id)
             for p in Payment.objects.all()}
    assert found == {"PM1": ("SB1", ""), "PM2": ("", "IS1"), "PM3": ("", "")}
    assert dict(Payout.objects.values_list("gocardless_id", "items_state")) == {
        "PO1": PayoutItemsState.FETCHED, "PO2": PayoutItemsState.NOT_FETCHED}
