"""Pytest fixtures for the Exact Online simulator.

- ``exact_simulator``: a fresh simulator on a free loopback port (auto consent on), stopped
  after the test.
- ``exact_simulator_shared``: one simulator for the whole session, ``reset()`` before each
  test — cheaper when a module has many tests.
- ``exact_division``: division 123456 seeded on ``exact_simulator`` (journals, G/L accounts).
- ``exact_api``: an ``ExactApi`` already authorized against ``exact_simulator``.
- ``exact_webhook_receiver``: a loopback HTTP endpoint that records raw webhook requests.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from werkzeug.wrappers import Request, Response

from simulators.exact_online import Simulator
from simulators.harness import SimulatorServer

DIVISION = 123456
REDIRECT_URI = "https://connector.example.test/connect/exact/callback/"


class ExactApi:
    """A deliberately thin test client: it speaks HTTP to the simulator and nothing more."""

    def __init__(self, sim: Simulator, client_id: str = "sim-client-id",
                 client_secret: str = "sim-client-secret") -> None:
        self.sim = sim
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: dict[str, str] = {}

    def authorize_code(self, state: str = "st") -> str:
        resp = requests.get(f"{self.sim.url}/api/oauth2/auth", allow_redirects=False, params={
            "client_id": self.client_id, "redirect_uri": REDIRECT_URI,
            "response_type": "code", "state": state})
        assert resp.status_code == 302, resp.text
        return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]

    def token(self, **form: str) -> requests.Response:
        data = {"client_id": self.client_id, "client_secret": self.client_secret, **form}
        resp = requests.post(f"{self.sim.url}/api/oauth2/token", data=data, timeout=5)
        if resp.status_code == 200:
            self.tokens = resp.json()
        return resp

    def connect(self) -> ExactApi:
        resp = self.token(grant_type="authorization_code", code=self.authorize_code(),
                          redirect_uri=REDIRECT_URI)
        assert resp.status_code == 200, resp.text
        return self

    def refresh(self) -> requests.Response:
        return self.token(grant_type="refresh_token", refresh_token=self.tokens["refresh_token"])

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else f"{self.sim.url}/api/v1/{path}"
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        if self.tokens:
            headers.setdefault("Authorization", f"Bearer {self.tokens['access_token']}")
        kwargs.setdefault("timeout", 5)
        return requests.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **params) -> requests.Response:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: dict) -> requests.Response:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> requests.Response:
        return self.request("DELETE", path)


class WebhookReceiver:
    """Records each request's raw body and headers; answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self._lock = threading.Lock()
        self._server = SimulatorServer(self._app)

    def _app(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append({"body": request.get_data(), "headers": dict(request.headers),
                                  "path": request.path})
        return Response("", status=self.status)(environ, start_response)

    def start(self) -> WebhookReceiver:
        self._server.start()
        return self

    @property
    def url(self) -> str:
        return f"{self._server.url}/webhooks/exact/"

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def exact_simulator():
    sim = Simulator(auto_consent=True).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def _exact_simulator_session():
    sim = Simulator(auto_consent=True).start()
    yield sim
    sim.stop()


@pytest.fixture
def exact_simulator_shared(_exact_simulator_session):
    _exact_simulator_session.reset()
    return _exact_simulator_session


@pytest.fixture
def exact_division(exact_simulator):
    return exact_simulator.seed_division(division=DIVISION)


@pytest.fixture
def exact_api(exact_simulator, exact_division):
    return ExactApi(exact_simulator).connect()


@pytest.fixture
def exact_webhook_receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
