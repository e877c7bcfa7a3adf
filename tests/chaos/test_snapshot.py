"""The comparison the chaos month rests on: labels instead of ids, timestamps left out, and
every difference that matters reported (a comparison that cannot fail proves nothing)."""

from __future__ import annotations

from decimal import Decimal

from tests.chaos.snapshot import Labels, differences


def test_ids_become_labels_and_times_drop_out():
    labels = Labels()
    labels.add("PM0000000000AB", "payment 27001/1")
    labels.known_uuids = {"11111111-2222-4333-8444-555555555555"}
    row = {"key": "receipt:PM0000000000AB:1", "created_at": "2027-02-03T10:11:12Z",
           "booking_date": "2027-02-03", "amount": Decimal("12.10"),
           "account": "11111111-2222-4333-8444-555555555555",
           "entry": "99999999-2222-4333-8444-555555555555", "when": "2027-02-03T10:11:12Z"}
    assert labels.clean(row) == {
        "key": "receipt:<payment 27001/1>:1", "booking_date": "2027-02-03", "amount": "12.10",
        "account": "11111111-2222-4333-8444-555555555555", "entry": "<guid>", "when": "<time>"}


def test_same_label_twice_is_told_apart():
    labels = Labels()
    labels.add("PO0000000000A1", "payout 100 EUR arriving 2027-02-05")
    labels.add("PO0000000000A2", "payout 100 EUR arriving 2027-02-05")
    assert labels.text("PO0000000000A1 PO0000000000A2") == (
        "<payout 100 EUR arriving 2027-02-05> <payout 100 EUR arriving 2027-02-05 #2>")


def test_differences_name_what_is_missing_extra_or_changed():
    calm = {"van-dijk": {"bookings": [{"rule": "receipt", "amount": "12.10"}],
                         "report": {"collected": "571.00"}}}
    assert differences(calm, calm) == []
    doubled = {"van-dijk": {"bookings": [{"rule": "receipt", "amount": "12.10"}] * 2,
                            "report": {"collected": "571.00"}}}
    assert differences(calm, doubled) == [
        "/van-dijk/bookings: same rows, counted differently (1 / 2)"]
    lost = {"van-dijk": {"bookings": [], "report": {"collected": "558.90"}}}
    said = differences(calm, lost)
    assert any("missing in the chaos run" in line for line in said)
    assert any("'571.00' (fault-free) != '558.90' (chaos)" in line for line in said)
