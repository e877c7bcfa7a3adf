"""GET /events: newest first, cursor pagination, filters and include."""

import pytest
import requests
from gocardless_pro import errors as gc_errors

from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

HEADERS = {"Authorization": f"Bearer {SIM_ACCESS_TOKEN}", "GoCardless-Version": "2015-07-06"}


@pytest.fixture
def history(gocardless_simulator, gocardless_sdk):
    """Two mandates, three payments, a day of processing: a mix of event types."""
    sim = gocardless_simulator
    mandates = sim.seed(mandates=[{}, {}])["mandates"]
    payments = [gocardless_sdk.payments.create(params={
        "amount": 1000 + n, "currency": "GBP", "links": {"mandate": mandates[n % 2]}}).id
        for n in range(3)]
    sim.advance(days=1)
    return {"mandates": mandates, "payments": payments}


def get_events(sim, **params):
    response = requests.get(sim.url + "/events", params=params, headers=HEADERS, timeout=5)
    return response


def test_newest_first(gocardless_simulator, history):
    ids = [e["id"] for e in gocardless_simulator.events()]
    body = get_events(gocardless_simulator).json()
    assert [e["id"] for e in body["events"]] == list(reversed(ids))
    assert body["meta"] == {"cursors": {"before": None, "after": None}, "limit": 50}


def test_cursor_pagination_both_ways(gocardless_simulator, gocardless_sdk, history):
    all_ids = [e["id"] for e in reversed(gocardless_simulator.events())]
    assert len(all_ids) == 6
    page1 = gocardless_sdk.events.list(params={"limit": 4})
    assert [e.id for e in page1.records] == all_ids[:4]
    assert (page1.before, page1.after) == (None, all_ids[3])
    page2 = gocardless_sdk.events.list(params={"limit": 4, "after": page1.after})
    assert [e.id for e in page2.records] == all_ids[4:]
    assert (page2.before, page2.after) == (all_ids[4], None)
    newer = gocardless_sdk.events.list(params={"limit": 2, "before": all_ids[4]})
    assert [e.id for e in newer.records] == all_ids[2:4]
    assert [e.id for e in gocardless_sdk.events.all(params={"limit": 1})] == all_ids


def test_limit_bounds(gocardless_simulator, history):
    assert get_events(gocardless_simulator, limit=500).status_code == 200
    for limit in (501, 0, "ten"):
        response = get_events(gocardless_simulator, limit=limit)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["type"] == "validation_failed" and error["errors"][0]["field"] == "limit"
    assert get_events(gocardless_simulator, after="EV000NOPE").status_code == 422


def test_created_at_filters(gocardless_simulator, history):
    events = gocardless_simulator.events()
    today = [e for e in events if e["created_at"] >= "2026-03-03"]
    assert today and len(today) < len(events)
    body = get_events(gocardless_simulator, **{"created_at[gte]": "2026-03-03T00:00:00Z"}).json()
    assert {e["id"] for e in body["events"]} == {e["id"] for e in today}
    body = get_events(gocardless_simulator, **{"created_at[lt]": "2026-03-03T00:00:00Z"}).json()
    assert len(body["events"]) == len(events) - len(today)
    pivot = events[1]["created_at"]
    body = get_events(gocardless_simulator, **{"created_at[gt]": pivot,
                                               "created_at[lte]": "2030-01-01T00:00:00.000Z"})
    assert all(e["created_at"] > pivot for e in body.json()["events"])
    assert get_events(gocardless_simulator, **{"created_at[gt]": "yesterday"}).status_code == 422


def test_resource_type_and_resource_id_filters(gocardless_simulator, gocardless_sdk, history):
    payments = gocardless_sdk.events.list(params={"resource_type": "payments"}).records
    assert {e.resource_type for e in payments} == {"payments"} and len(payments) == 6
    one = gocardless_sdk.events.list(params={"payment": history["payments"][0]}).records
    assert [(e.action, e.links.payment) for e in one] == [
        ("submitted", history["payments"][0]), ("created", history["payments"][0])]
    created = gocardless_sdk.events.list(params={"resource_type": "payments",
                                                 "action": "created"}).records
    assert len(created) == 3
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.events.list(params={"resource_type": "payments",
                                           "payment": history["payments"][0]})
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.events.list(params={"payment": history["payments"][0],
                                           "mandate": history["mandates"][0]})


def test_payout_filter_reconciles_a_payout(gocardless_simulator, gocardless_sdk, history):
    gocardless_simulator.advance(days=7)
    payout = gocardless_sdk.payouts.list().records[0]
    events = gocardless_sdk.events.list(params={"payout": payout.id}).records
    assert sorted((e.resource_type, e.action) for e in events) == [
        ("payments", "paid_out")] * 3 + [("payouts", "paid")]


def test_include_adds_linked_resources(gocardless_simulator, gocardless_sdk, history):
    page = gocardless_sdk.events.list(params={"resource_type": "payments", "include": "payment"})
    linked = page.api_response.body["linked"]
    assert sorted(p["id"] for p in linked["payments"]) == sorted(history["payments"])
    assert all(p["status"] == "submitted" for p in linked["payments"])
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.events.list(params={"include": "payment"})
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.events.list(params={"resource_type": "mandates", "include": "payment"})
    assert "linked" not in gocardless_sdk.events.list().api_response.body


def test_get_single_event(gocardless_simulator, gocardless_sdk, history):
    newest = gocardless_simulator.events()[-1]
    event = gocardless_sdk.events.get(newest["id"])
    assert event.attributes == newest
    with pytest.raises(gc_errors.InvalidApiUsageError):
        gocardless_sdk.events.get("EV000NOPE")


def test_payment_list_filters(gocardless_simulator, gocardless_sdk, history):
    customer = gocardless_sdk.mandates.get(history["mandates"][0]).links.customer
    by_customer = gocardless_sdk.payments.list(params={"customer": customer}).records
    assert sorted(p.id for p in by_customer) == sorted(history["payments"][::2])
    by_mandate = gocardless_sdk.payments.list(params={"mandate": history["mandates"][1]})
    assert [p.id for p in by_mandate.records] == [history["payments"][1]]
    assert len(gocardless_sdk.payments.list(params={"status": "submitted"}).records) == 3
    assert gocardless_sdk.payments.list(params={"status": "paid_out"}).records == []
    window = gocardless_sdk.payments.list(params={"charge_date[gte]": "2026-03-05",
                                                  "charge_date[lte]": "2026-03-05"})
    assert len(window.records) == 3
    mandates = gocardless_sdk.mandates.list(params={"customer": customer, "status": "active"})
    assert [m.id for m in mandates.records] == [history["mandates"][0]]
