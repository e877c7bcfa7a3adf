"""Contract check: each cassette under tests/cassettes/exact/ is an Exact response transcribed
from API-NOTES-EXACT.md. The same request is replayed against the simulator, and status, the
headers that matter and the JSON *shape* (keys and types, not values) must agree.

Entities (dicts with ``__metadata``) may carry more fields in the simulator than the
transcription shows; envelopes, error bodies and token bodies must match key for key.
"""

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
import vcr
import yaml

from tests.plugins.exact_sim import DIVISION, ExactApi

CASSETTES = Path(__file__).parent.parent / "cassettes" / "exact"
EXACT = "https://start.exactonline.nl"


def load(name: str) -> dict:
    return yaml.safe_load((CASSETTES / f"{name}.yaml").read_text())["interactions"][0]


def shape_mismatches(expected, actual, path="$") -> list[str]:
    if expected is None or actual is None:
        return []  # null carries no type
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected object"]
        missing = set(expected) - set(actual)
        extra = set() if "__metadata" in expected else set(actual) - set(expected)
        problems = [f"{path}: missing {sorted(missing)}"] if missing else []
        problems += [f"{path}: unexpected {sorted(extra)}"] if extra else []
        for key in set(expected) & set(actual):
            problems += shape_mismatches(expected[key], actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected array"]
        if expected and not actual:
            return [f"{path}: expected a non-empty array"]
        return shape_mismatches(expected[0], actual[0], f"{path}[0]") if expected else []
    if _kind(expected) != _kind(actual):
        return [f"{path}: {_kind(expected)} != {_kind(actual)}"]
    return []


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def test_shape_checker_catches_differences():
    assert shape_mismatches({"a": "1", "b": [{"c": 1}]}, {"a": "2", "b": [{"c": 2.5}]}) == []
    assert shape_mismatches({"a": "600"}, {"a": 600}) == ["$.a: str != number"]
    assert shape_mismatches({"a": 1}, {"a": 1, "b": 2}) == ["$: unexpected ['b']"]
    assert shape_mismatches({"__metadata": {}, "a": 1}, {"__metadata": {}, "a": 1, "b": 2}) == []


@pytest.fixture
def api(exact_simulator, exact_division):
    return ExactApi(exact_simulator).connect()


def _fill(text: str | None, values: dict[str, str]) -> str | None:
    if text is None:
        return None
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def _send(sim, api, interaction, values) -> requests.Response:
    request = interaction["request"]
    url = request["uri"].replace(EXACT, sim.url)
    headers = {k: v[0] for k, v in request["headers"].items()}
    if "Authorization" in headers:
        headers["Authorization"] = f"Bearer {api.tokens['access_token']}"
    return requests.request(request["method"], unquote(url) if "?" in url else url,
                            data=_fill(request["body"], values), headers=headers, timeout=5)


def _credentials(api):
    return {"client_id": api.client_id, "client_secret": api.client_secret}


def _scenario(name, sim, api) -> dict[str, str]:
    """Bring the simulator into the state the cassette was recorded in."""
    values = _credentials(api)
    if name == "token_code_exchange":
        values["code"] = api.authorize_code()
    elif name == "refresh_too_early":
        values["refresh_token"] = api.tokens["refresh_token"]
    elif name == "old_refresh_token":
        values["old_refresh_token"] = api.tokens["refresh_token"]
        sim.advance(570)
        assert api.refresh().status_code == 200
        sim.advance(570)
    elif name == "collection_next":
        sim.seed_bulk(DIVISION, accounts=61)
    elif name == "rate_limited_minutely":
        sim.settings(minutely_limit=1)
        api.get(f"{DIVISION}/financial/Journals")
    return values


@pytest.mark.parametrize("name", [
    "token_code_exchange", "refresh_too_early", "old_refresh_token", "current_me",
    "collection_next", "select_required", "mandatory_filter", "rate_limited_minutely",
])
def test_simulator_matches_cassette(name, exact_simulator, api):
    interaction = load(name)
    recorded = interaction["response"]
    resp = _send(exact_simulator, api, interaction, _scenario(name, exact_simulator, api))

    assert resp.status_code == recorded["status"]["code"], resp.text
    headers = {k: v[0] for k, v in recorded["headers"].items()}
    if "Reason" in headers:
        assert resp.headers["Reason"] == headers["Reason"]
    recorded_limits = {k for k in headers if k.startswith("X-RateLimit")}
    live_limits = {k for k in resp.headers if k.startswith("X-RateLimit")}
    if recorded["status"]["code"] == 429:
        assert live_limits == recorded_limits
    assert recorded_limits <= live_limits
    assert all(resp.headers[k].isdigit() for k in live_limits)

    body = recorded["body"]["string"]
    if body:
        assert resp.headers["Content-Type"].startswith("application/json")
        assert shape_mismatches(json.loads(body), resp.json()) == []


def test_webhook_payload_matches_cassette(exact_simulator, api, exact_webhook_receiver):
    recorded = json.loads(load("webhook_notification")["request"]["body"])
    api.post(f"{DIVISION}/webhooks/WebhookSubscriptions",
             {"CallbackURL": exact_webhook_receiver.url, "Topic": "Accounts"})
    exact_simulator.seed_account(DIVISION, name="Acme")
    exact_simulator.deliver_webhooks()
    validation, event = exact_webhook_receiver.requests
    assert validation["body"] == b""
    live = json.loads(event["body"])
    assert shape_mismatches(recorded, live) == []
    assert list(live["Content"]) == list(recorded["Content"])  # same field order as Exact
    assert re.fullmatch(r"[0-9A-F]{64}", live["HashCode"])


@pytest.mark.parametrize("path", sorted(CASSETTES.glob("*.yaml")), ids=lambda p: p.stem)
def test_cassettes_replay_in_vcrpy_and_hold_no_secrets(path):
    text = path.read_text()
    assert text.startswith("# Source: API-NOTES-EXACT.md")
    assert "sim-client-secret" not in text and "sim-webhook-secret" not in text
    interaction = yaml.safe_load(text)["interactions"][0]
    request = interaction["request"]
    assert not request["headers"].get("Authorization", ["Bearer REDACTED"])[0].replace(
        "Bearer REDACTED", "")
    recorder = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "path"])
    with recorder.use_cassette(str(path)):
        resp = requests.request(request["method"], request["uri"], data=request["body"],
                                headers={k: v[0] for k, v in request["headers"].items()})
    assert resp.status_code == interaction["response"]["status"]["code"]
