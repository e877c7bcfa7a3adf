"""Shared helpers for the GoCardless tests: a connection to the simulator, signing, posting."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.messages import get_messages
from django.urls import reverse
from django_q.conf import Conf
from werkzeug.wrappers import Request, Response

from gocardless.models import ENVIRONMENT_URLS, ConnectionStatus, Environment
from simulators.harness import SimulatorServer
from tests.factories import GoCardlessConnectionFactory
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN, SIM_WEBHOOK_SECRET

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_event(name: str, **overrides) -> dict:
    """One event from tests/gocardless/fixtures/<resource>__<action>.json."""
    event = json.loads((FIXTURES / f"{name}.json").read_text())
    event.update(overrides)
    return event


def sign(body: bytes, secret: str = SIM_WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}, separators=(",", ":")).encode()


def webhook_url(tenant) -> str:
    return f"/webhooks/gocardless/{tenant.uuid}/"


def post_webhook(client, url: str, body: bytes, signature: str | None = None, **extra):
    headers = {} if signature is None else {"HTTP_WEBHOOK_SIGNATURE": signature}
    return client.generic("POST", url, body, content_type="application/json", **headers, **extra)


def sim_connection(sim, tenant=None, **fields):
    """A connected GoCardless connection pointing at the simulator."""
    kwargs = {"tenant": tenant} if tenant is not None else {}
    defaults = dict(
        environment=Environment.CUSTOM,
        custom_base_url=sim.url,
        access_token=SIM_ACCESS_TOKEN,
        webhook_secret=SIM_WEBHOOK_SECRET,
        organisation_id=sim.state.organisation_id,
        status=ConnectionStatus.CONNECTED,
    )
    defaults.update(fields)
    return GoCardlessConnectionFactory(**kwargs, **defaults)


@pytest.fixture
def q_sync(monkeypatch):
    """Run django-q2 tasks inline (when on_commit callbacks fire)."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def no_queue(monkeypatch):
    """Record queued batches instead of running them (tests call the processor directly)."""
    class Queued(list):
        pass

    queued: Queued = Queued()

    def fake_async(func, pks, **kwargs):
        from django.db import transaction

        queued.append(list(pks))
        queued_inside_transaction.append(transaction.get_connection().in_atomic_block)

    queued_inside_transaction: list[bool] = []

    monkeypatch.setattr("django_q.tasks.async_task", fake_async)
    queued.inside_transaction = queued_inside_transaction
    return queued


class SignalLog:
    """Records every domain signal as (signal name, gocardless id, previous, status)."""

    def __init__(self) -> None:
        from gocardless import signals

        self.calls: list[tuple[str, str, str, str]] = []
        self._connected = []
        for name in dir(signals):
            signal = getattr(signals, name)
            if type(signal).__name__ == "Signal":
                def receiver(sender, _name=name, **kwargs):
                    instance = kwargs["instance"]
                    assert kwargs["event"].pk and kwargs["tenant"].pk
                    self.calls.append((_name, instance.gocardless_id,
                                       kwargs["previous_status"], instance.status))
                signal.connect(receiver, weak=False)
                self._connected.append((signal, receiver))

    def names(self, gocardless_id: str | None = None) -> list[str]:
        return [c[0] for c in self.calls if gocardless_id in (None, c[1])]

    def disconnect(self) -> None:
        for signal, receiver in self._connected:
            signal.disconnect(receiver)


@pytest.fixture
def signal_log():
    log = SignalLog()
    yield log
    log.disconnect()


# --- connecting: the simulator as GoCardless's sandbox and GoCardless Connect -----------------

SIM_CLIENT_ID = "sim-gc-client-id"
SIM_CLIENT_SECRET = "sim-gc-client-secret"


@pytest.fixture
def sim_sandbox(gocardless_simulator, settings, monkeypatch):
    return sim_as_sandbox(gocardless_simulator, settings, monkeypatch)


def sim_as_sandbox(sim, settings, monkeypatch):
    """The simulator stands in for GoCardless's sandbox: its API is the sandbox API base URL
    (the environment table, so that a tenant admin's ordinary "sandbox" connection talks to
    it) and its partner OAuth is GOCARDLESS_CONNECT_URL, answering consent with "allow"."""
    monkeypatch.setitem(ENVIRONMENT_URLS, Environment.SANDBOX, sim.url)
    settings.GOCARDLESS_CONNECT_URL = sim.url
    settings.GOCARDLESS_CLIENT_ID = SIM_CLIENT_ID
    settings.GOCARDLESS_CLIENT_SECRET = SIM_CLIENT_SECRET
    sim.configure_oauth(consent="allow")
    return sim


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def oauth_start(client, connection) -> str:
    """Press "Connect GoCardless (OAuth)": the consent page URL."""
    response = client.get(reverse("admin:gocardless_gocardlessconnection_connect",
                                  args=[connection.pk]))
    assert response.status_code == 302, response
    return response["Location"]


def oauth_consent(authorize_url: str) -> str:
    """The browser at GoCardless: consent (the simulator's setting) and back; returns the
    callback path with its query."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/connect/gocardless/callback/"
    return f"{back.path}?{back.query}"


def oauth_connect(client, connection):
    """The whole partner OAuth round trip through the admin; returns the callback's answer."""
    return client.get(oauth_consent(oauth_start(client, connection)))


class RecordingServer:
    """A loopback HTTP server that records every request it receives (and answers 404)."""

    def __init__(self):
        self.requests: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()
        self.server = SimulatorServer(self._app)

    def _app(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append((request.method, request.full_path, dict(request.headers)))
        return Response(b"{}", status=404, content_type="application/json")(environ,
                                                                             start_response)

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def recording_server():
    recorder = RecordingServer()
    recorder.server.start()
    try:
        yield recorder
    finally:
        recorder.server.stop()
