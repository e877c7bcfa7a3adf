"""Contract: the simulator answers documented requests like the documented responses.

Each cassette under tests/cassettes/gocardless/ holds requests and responses transcribed from
GoCardless documentation (the source is named at the top of each file). The test replays the
requests against the simulator, with placeholder ids (MD123, PO123, BRQ123...) replaced by
ids of seeded resources, and compares status codes and JSON shape: every documented key must
be present with the same JSON type (``null`` on either side matches anything; inside
``links`` a documented key may be absent, since links only list what exists).
"""

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

CASSETTES = Path(__file__).parent.parent / "cassettes" / "gocardless"


def shape_mismatches(documented, actual, path="$", in_links=False):
    if documented is None or actual is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected object, got {type(actual).__name__}"]
        problems = []
        for key, value in documented.items():
            if key not in actual:
                if not in_links:
                    problems.append(f"{path}.{key}: missing")
                continue
            problems += shape_mismatches(value, actual[key], f"{path}.{key}", key == "links")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{path}: expected array, got {type(actual).__name__}"]
        if not actual:
            return []
        return [p for item in documented for p in shape_mismatches(item, actual[0], f"{path}[]")]
    if isinstance(documented, bool) or isinstance(actual, bool):
        same = isinstance(documented, bool) and isinstance(actual, bool)
    elif isinstance(documented, int | float):
        same = isinstance(actual, int | float) and not isinstance(actual, bool)
    else:
        same = isinstance(actual, type(documented))
    return [] if same else [f"{path}: expected {type(documented).__name__}, got {actual!r}"]


def prepare(sim, sdk, name):
    """Seed what the cassette's placeholders refer to; returns placeholder -> real value."""
    mandate = sim.seed(mandates=[{"status": "active"}])["mandates"][0]
    charge_date = sdk.mandates.get(mandate).next_possible_charge_date
    values = {"MD123": mandate, "2014-05-19": charge_date}
    if name == "payout_items_list.yaml":
        payments = [sdk.payments.create(params={"amount": 4500, "currency": "GBP",
                                                "links": {"mandate": mandate}}) for _ in range(6)]
        sim.advance(days=7)
        values["PO123"] = sdk.payments.get(payments[0].id).links.payout
    if name == "events_list.yaml":
        sdk.payments.create(params={"amount": 1000, "currency": "GBP",
                                    "metadata": {"exact_invoice": "INV-2026-0042"},
                                    "links": {"mandate": mandate}})
        sim.advance(days=1)
    if name == "billing_request_flow_create.yaml":
        values["BRQ123"] = sdk.billing_requests.create(
            params={"mandate_request": {"currency": "GBP"}}).id
    if name == "rate_limit_exceeded.yaml":
        sim.set_rate_limit(0)
    return values


@pytest.mark.parametrize("name", sorted(p.name for p in CASSETTES.glob("*.yaml")))
def test_simulator_matches_documented_exchange(name, gocardless_simulator, gocardless_sdk):
    recorded_requests, recorded_responses = FilesystemPersister.load_cassette(
        str(CASSETTES / name), yamlserializer)
    values = prepare(gocardless_simulator, gocardless_sdk, name)

    def fill(text):
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        return text

    for recorded, documented in zip(recorded_requests, recorded_responses, strict=True):
        url = urlsplit(recorded.uri)
        target = gocardless_simulator.url + fill(url.path + (f"?{url.query}" if url.query else ""))
        headers = {**recorded.headers, "Authorization": f"Bearer {SIM_ACCESS_TOKEN}"}
        body = fill(recorded.body.decode()) if recorded.body else None
        response = requests.request(recorded.method, target, data=body, headers=headers,
                                    timeout=5)
        assert response.status_code == documented["status"]["code"], response.text
        documented_body = json.loads(documented["body"]["string"])
        assert shape_mismatches(documented_body, response.json()) == []
        for header in documented["headers"]:
            assert header in response.headers


def test_shape_comparison_catches_differences():
    documented = {"a": 1, "b": "x", "c": [{"d": True}], "links": {"payout": "PO1"}, "e": None}
    assert shape_mismatches(documented, {"a": 2, "b": "y", "c": [{"d": False}], "links": {},
                                         "e": {"f": 1}}) == []
    assert shape_mismatches(documented, {"a": "2", "b": "y", "c": [{"d": 1}], "links": {},
                                         "e": 1}) == ["$.a: expected int, got '2'",
                                                      "$.c[].d: expected bool, got 1"]
    assert shape_mismatches({"amount": "45.0"}, {"amount": 45}) == [
        "$.amount: expected str, got 45"]
    assert shape_mismatches({"x": {"y": 1}}, {}) == ["$.x: missing"]
