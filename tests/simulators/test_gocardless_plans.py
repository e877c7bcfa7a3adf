"""Subscriptions and instalment schedules in the GoCardless simulator, through the official SDK.

Clock: Mon 2 Mar 2026 10:00 UTC (frozen); an active Bacs mandate can be charged from Thu 5 Mar
(3 working days). Bank holidays on the way: Good Friday 3 Apr, Easter Monday 6 Apr, 4 May.
"""

from __future__ import annotations

import pytest
import requests
from gocardless_pro import errors as gc_errors


@pytest.fixture
def world(gocardless_simulator, gocardless_sdk):
    seeded = gocardless_simulator.seed(mandates=[{"scheme": "bacs"}, {"scheme": "sepa_core"}])
    return {"sim": gocardless_simulator, "sdk": gocardless_sdk,
            "bacs": seeded["mandates"][0], "sepa": seeded["mandates"][1],
            "customer": seeded["customers"][0]}


def monthly(world, **extra):
    params = {"amount": 2500, "currency": "GBP", "interval_unit": "monthly",
              "day_of_month": 10, "count": 3, "name": "Gym membership",
              "metadata": {"contract": "C-1"}, "links": {"mandate": world["bacs"]}}
    params.update(extra)
    return world["sdk"].subscriptions.create(params=params)


def events_of(sim, resource_type, link, value):
    return [e for e in sim.events() if e["resource_type"] == resource_type
            and e["links"].get(link) == value]


def plan_payments(sdk, **params):
    return sorted(sdk.payments.list(params=params).records, key=lambda p: p.charge_date)


# -- subscriptions ----------------------------------------------------------------------------

def test_subscription_creates_its_payments_on_their_dates(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world)
    assert (sub.status, sub.start_date, sub.interval, sub.count) == (
        "active", "2026-03-10", 1, 3)
    assert [u["charge_date"] for u in sub.upcoming_payments] == [
        "2026-03-10", "2026-04-10", "2026-05-11"]  # 10 May is a Sunday
    assert sdk.payments.list().records == []  # created 3 working days before the charge date

    sim.advance(days=3)  # Thu 5 Mar
    (first,) = sdk.payments.list().records
    assert (first.amount, first.currency, first.charge_date, first.description,
            first.metadata, first.links.subscription) == (
        2500, "GBP", "2026-03-10", "Gym membership", {}, sub.id)
    created = events_of(sim, "payments", "payment", first.id)[0]
    assert (created["action"], created["details"]["origin"], created["details"]["cause"]) == (
        "created", "gocardless", "payment_created")
    assert [(e["action"], e["links"].get("payment")) for e in
            events_of(sim, "subscriptions", "subscription", sub.id)] == [
        ("created", None), ("payment_created", first.id)]

    sim.advance(days=70)  # 14 May
    payments = plan_payments(sdk, subscription=sub.id)
    assert [p.charge_date for p in payments] == ["2026-03-10", "2026-04-10", "2026-05-11"]
    assert [p.status for p in payments] == ["paid_out", "paid_out", "paid_out"]
    assert all(p.links.payout for p in payments)
    sub = sdk.subscriptions.get(sub.id)
    assert (sub.status, sub.upcoming_payments) == ("finished", [])
    assert [e["action"] for e in events_of(sim, "subscriptions", "subscription", sub.id)] == [
        "created", "payment_created", "payment_created", "payment_created", "finished"]


def test_subscription_weekly_without_end_keeps_going(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = sdk.subscriptions.create(params={
        "amount": 1000, "currency": "EUR", "interval_unit": "weekly", "interval": 2,
        "links": {"mandate": world["sepa"]}})
    assert sub.start_date == "2026-03-05"  # the mandate's next possible charge date
    assert len(sub.upcoming_payments) == 10
    sim.advance(days=28)
    dates = [p.charge_date for p in plan_payments(sdk, subscription=sub.id)]
    assert dates[:2] == ["2026-03-05", "2026-03-19"]
    assert sdk.subscriptions.get(sub.id).status == "active"


def test_subscription_list_get_update(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world)
    other = sdk.subscriptions.create(params={
        "amount": 1000, "currency": "EUR", "interval_unit": "yearly", "month": "june",
        "day_of_month": -1, "links": {"mandate": world["sepa"]}})
    assert other.start_date == "2026-06-30"
    assert [s.id for s in sdk.subscriptions.list(params={"mandate": world["bacs"]}).records] \
        == [sub.id]
    assert [s.id for s in sdk.subscriptions.list(
        params={"customer": world["customer"]}).records] == [sub.id]
    assert len(sdk.subscriptions.list(params={"status": "active,paused"}).records) == 2
    with pytest.raises(gc_errors.ValidationFailedError):
        sdk.subscriptions.list(params={"status": "sleeping"})

    updated = sdk.subscriptions.update(sub.id, params={
        "name": "Gym (peak)", "amount": 3000, "metadata": {"contract": "C-2"}})
    assert (updated.name, updated.amount, updated.metadata) == (
        "Gym (peak)", 3000, {"contract": "C-2"})
    assert [u["amount"] for u in updated.upcoming_payments] == [3000, 3000, 3000]
    amended = events_of(sim, "subscriptions", "subscription", sub.id)[-1]
    assert (amended["action"], amended["details"]["cause"]) == ("amended",
                                                               "subscription_amended")
    with pytest.raises(gc_errors.ValidationFailedError):
        sdk.subscriptions.update(sub.id, params={"interval_unit": "weekly"})
    sdk.subscriptions.cancel(sub.id)
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.subscriptions.update(sub.id, params={"name": "again"})
    assert excinfo.value.errors[0]["reason"] == "subscription_not_active"


def test_subscription_amount_changes_at_most_ten_times(world):
    sdk = world["sdk"]
    sub = monthly(world)
    for amount in range(2001, 2011):
        sdk.subscriptions.update(sub.id, params={"amount": amount})
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.subscriptions.update(sub.id, params={"amount": 2999})
    assert excinfo.value.errors[0]["reason"] == "number_of_subscription_amendments_exceeded"


def test_subscription_cancel_cancels_its_pending_payment(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world)
    sim.advance(days=3)
    (payment,) = sdk.payments.list().records
    cancelled = sdk.subscriptions.cancel(sub.id, params={"metadata": {"why": "moved"}})
    assert (cancelled.status, cancelled.upcoming_payments) == ("cancelled", [])
    event = events_of(sim, "subscriptions", "subscription", sub.id)[-1]
    assert (event["action"], event["details"]["origin"], event["details"]["cause"]) == (
        "cancelled", "api", "subscription_cancelled")
    assert sdk.payments.get(payment.id).status == "cancelled"
    payment_event = events_of(sim, "payments", "payment", payment.id)[-1]
    assert payment_event["links"]["parent_event"] == event["id"]
    assert payment_event["metadata"] == {"why": "moved"}
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.subscriptions.cancel(sub.id)
    assert excinfo.value.errors[0]["reason"] == "cancellation_failed"
    sim.advance(days=60)
    assert len(sdk.payments.list().records) == 1


def test_subscription_pause_and_resume(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world, count=None)
    paused = sdk.subscriptions.pause(sub.id)
    assert (paused.status, paused.upcoming_payments) == ("paused", [])
    assert paused.earliest_charge_date_after_resume == "2026-03-10"
    sim.advance(days=40)  # 11 Apr: nothing collected while paused
    assert sdk.payments.list().records == []
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.subscriptions.pause(sub.id)
    assert excinfo.value.errors[0]["reason"] == "subscription_cannot_be_paused"
    resumed = sdk.subscriptions.resume(sub.id)
    assert resumed.status == "active"
    assert resumed.upcoming_payments[0]["charge_date"] == "2026-05-11"
    assert [e["action"] for e in events_of(sim, "subscriptions", "subscription", sub.id)] == [
        "created", "paused", "resumed"]
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.subscriptions.resume(sub.id)
    assert excinfo.value.errors[0]["reason"] == "subscription_not_paused"


def test_subscription_pause_for_cycles_resumes_by_itself(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world)
    paused = sdk.subscriptions.pause(sub.id, params={"pause_cycles": 2})
    assert paused.status == "paused"
    assert [u["charge_date"] for u in paused.upcoming_payments] == [
        "2026-05-11", "2026-06-10", "2026-07-10"]
    assert paused.end_date == "2026-07-10"
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.subscriptions.pause(sub.id, params={"pause_cycles": 1})
    assert excinfo.value.errors[0]["reason"] == "subscription_paused_cannot_update_cycles"
    sim.advance(days=66)  # 7 May
    assert sdk.subscriptions.get(sub.id).status == "active"
    assert [p.charge_date for p in plan_payments(sdk, subscription=sub.id)] == ["2026-05-11"]
    resumed = [e for e in events_of(sim, "subscriptions", "subscription", sub.id)
               if e["action"] == "resumed"]
    assert resumed[0]["details"]["origin"] == "gocardless"


def test_subscription_with_end_date_cannot_be_paused(world):
    sub = monthly(world, count=None, end_date="2026-12-31")
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        world["sdk"].subscriptions.pause(sub.id)
    assert excinfo.value.errors[0]["reason"] == "subscription_cannot_be_paused"


@pytest.mark.parametrize(("change", "field"), [
    ({"interval_unit": "daily"}, "interval_unit"),
    ({"day_of_month": 29}, "day_of_month"),
    ({"month": "june"}, "month"),  # only for yearly
    ({"interval": 13}, "interval"),  # at least one charge date per year
    ({"currency": "EUR"}, "currency"),  # a Bacs mandate collects GBP
    ({"amount": 50}, "amount"),  # below the Bacs minimum
    ({"start_date": "2026-03-03"}, "start_date"),  # before next_possible_charge_date
    ({"payment_reference": "ELEVENCHARS"}, "payment_reference"),  # Bacs: 10
    ({"colour": "blue"}, "colour"),
])
def test_subscription_validation(world, change, field):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        monthly(world, **change)
    assert field in {e["field"] for e in excinfo.value.errors}
    assert excinfo.value.errors[0]["request_pointer"].startswith("/subscriptions/")


def test_subscription_payment_fails_like_any_payment(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world)
    sim.advance(days=3)
    (payment,) = sdk.payments.list(params={"subscription": sub.id}).records
    sim.run_scenario("payment_failed", payment.id)
    assert sdk.payments.get(payment.id).status == "failed"
    assert sdk.subscriptions.get(sub.id).status == "active"


def test_mandate_cancelled_cancels_its_plans(world):
    sim, sdk = world["sim"], world["sdk"]
    sub = monthly(world)
    schedule = sdk.instalment_schedules.create_with_dates(params={
        "name": "Invoice 42", "currency": "GBP", "total_amount": 2000,
        "instalments": [{"charge_date": "2026-03-20", "amount": 1000},
                        {"charge_date": "2026-04-20", "amount": 1000}],
        "links": {"mandate": world["bacs"]}})
    sdk.mandates.cancel(world["bacs"])
    mandate_event = [e for e in sim.events() if e["resource_type"] == "mandates"][-1]
    assert sdk.subscriptions.get(sub.id).status == "cancelled"
    sub_event = events_of(sim, "subscriptions", "subscription", sub.id)[-1]
    assert (sub_event["action"], sub_event["links"]["parent_event"]) == (
        "cancelled", mandate_event["id"])
    assert sdk.instalment_schedules.get(schedule.id).status == "cancelled"


# -- instalment schedules ---------------------------------------------------------------------

def test_instalment_schedule_with_dates(world):
    sim, sdk = world["sim"], world["sdk"]
    schedule = sdk.instalment_schedules.create_with_dates(params={
        "name": "Invoice 42 in two", "currency": "GBP", "total_amount": 3000,
        "instalments": [{"charge_date": "2026-03-03", "amount": 1000},  # rolled forward
                        {"charge_date": "2026-04-20", "amount": 2000}],
        "metadata": {"invoice": "42"}, "links": {"mandate": world["bacs"]}})
    assert (schedule.status, schedule.total_amount) == ("pending", 3000)
    schedule = sdk.instalment_schedules.get(schedule.id)  # created asynchronously
    assert schedule.status == "active"
    assert schedule.links.customer == world["customer"]
    payments = [sdk.payments.get(pid) for pid in schedule.links.payments]
    assert [(p.charge_date, p.amount, p.metadata, p.links.instalment_schedule)
            for p in payments] == [("2026-03-05", 1000, {}, schedule.id),
                                   ("2026-04-20", 2000, {}, schedule.id)]
    created = events_of(sim, "payments", "payment", payments[0].id)[0]
    assert (created["details"]["origin"], created["details"]["cause"]) == (
        "api", "instalment_schedule_created")
    sim.advance(days=60)
    assert [sdk.payments.get(p.id).status for p in payments] == ["paid_out", "paid_out"]
    assert sdk.instalment_schedules.get(schedule.id).status == "completed"
    assert [e["action"] for e in events_of(sim, "instalment_schedules", "instalment_schedule",
                                           schedule.id)] == ["created", "completed"]


def test_instalment_schedule_with_schedule(world):
    sdk = world["sdk"]
    schedule = sdk.instalment_schedules.create_with_schedule(params={
        "name": "Split", "currency": "EUR", "total_amount": 3000,
        "instalments": {"start_date": "2026-03-16", "interval_unit": "monthly",
                        "interval": 1, "amounts": [1000, 1000, 1000]},
        "links": {"mandate": world["sepa"]}})
    schedule = sdk.instalment_schedules.get(schedule.id)
    dates = [sdk.payments.get(pid).charge_date for pid in schedule.links.payments]
    assert dates == ["2026-03-16", "2026-04-16", "2026-05-18"]  # 16 May is a Saturday
    listed = sdk.instalment_schedules.list(params={"mandate": world["sepa"],
                                                   "status": "active"}).records
    assert [s.id for s in listed] == [schedule.id]


def test_instalment_schedule_on_plain_post_path(world, gocardless_simulator):
    """The API reference's path: POST /instalment_schedules, either shape."""
    response = requests.post(
        f"{gocardless_simulator.url}/instalment_schedules",
        headers={"Authorization": "Bearer sim-access-token", "GoCardless-Version": "2015-07-06"},
        json={"instalment_schedules": {
            "name": "Plain", "currency": "GBP", "total_amount": 1000,
            "instalments": [{"charge_date": "2026-03-20", "amount": 1000}],
            "links": {"mandate": world["bacs"]}}}, timeout=5)
    assert response.status_code == 201
    assert response.json()["instalment_schedules"]["status"] == "pending"


def test_instalment_schedule_validation(world):
    sdk = world["sdk"]
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        sdk.instalment_schedules.create_with_dates(params={
            "name": "Wrong sum", "currency": "GBP", "total_amount": 2500,
            "instalments": [{"charge_date": "2026-03-20", "amount": 1000},
                            {"charge_date": "2026-04-20", "amount": 1000}],
            "links": {"mandate": world["bacs"]}})
    assert [e["field"] for e in excinfo.value.errors] == ["total_amount"]
    # A payment the scheme refuses makes the schedule fail, asynchronously.
    schedule = sdk.instalment_schedules.create_with_dates(params={
        "name": "Too small", "currency": "GBP", "total_amount": 1050,
        "instalments": [{"charge_date": "2026-03-20", "amount": 1000},
                        {"charge_date": "2026-04-20", "amount": 50}],
        "links": {"mandate": world["bacs"]}})
    schedule = sdk.instalment_schedules.get(schedule.id)
    assert schedule.status == "creation_failed"
    assert list(schedule.payment_errors) == ["1"]
    assert schedule.payment_errors["1"][0]["field"] == "amount"
    assert sdk.payments.list().records == []


def test_instalment_schedule_errors_and_cancels(world):
    sim, sdk = world["sim"], world["sdk"]
    schedule = sdk.instalment_schedules.create_with_dates(params={
        "name": "Two", "currency": "GBP", "total_amount": 2000,
        "instalments": [{"charge_date": "2026-03-05", "amount": 1000},
                        {"charge_date": "2026-05-20", "amount": 1000}],
        "links": {"mandate": world["bacs"]}})
    first, second = sdk.instalment_schedules.get(schedule.id).links.payments
    sim.run_scenario("payment_failed", first)
    assert sdk.instalment_schedules.get(schedule.id).status == "errored"
    cancelled = sdk.instalment_schedules.cancel(schedule.id)
    assert cancelled.status == "cancelled"
    assert sdk.payments.get(second).status == "cancelled"
    assert [e["action"] for e in events_of(sim, "instalment_schedules", "instalment_schedule",
                                           schedule.id)] == ["created", "errored", "cancelled"]
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        sdk.instalment_schedules.cancel(schedule.id)
    assert excinfo.value.errors[0]["reason"] == "cancellation_failed"


# -- existing set-ups (control API) ---------------------------------------------------------------

def test_control_api_creates_plans_like_a_dashboard_user(world, gocardless_simulator):
    url = gocardless_simulator.url
    response = requests.post(f"{url}/_control/subscriptions", json={
        "amount": 1500, "currency": "GBP", "interval_unit": "monthly", "day_of_month": 1,
        "links": {"mandate": world["bacs"]}}, timeout=5)
    assert response.status_code == 201
    sub = response.json()["subscriptions"]
    assert (sub["status"], sub["start_date"]) == ("active", "2026-04-01")
    created = events_of(gocardless_simulator, "subscriptions", "subscription", sub["id"])[0]
    assert created["source"] == {"type": "user", "name": "owner@simulated-creditor.test"}
    response = requests.post(f"{url}/_control/instalment_schedules", json={
        "name": "Old plan", "currency": "GBP", "total_amount": 1000,
        "instalments": [{"charge_date": "2026-03-20", "amount": 1000}],
        "links": {"mandate": world["bacs"]}}, timeout=5)
    assert response.status_code == 201
    bad = requests.post(f"{url}/_control/subscriptions", json={"amount": 1}, timeout=5)
    assert bad.status_code == 422
    assert bad.json()["error"]["type"] == "validation_failed"
