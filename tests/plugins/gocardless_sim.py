"""Pytest fixtures for the GoCardless simulator.

``gocardless_simulator``: a fresh simulator on a loopback port with a frozen clock at
``SIM_START`` (a Monday), stopped after the test. ``gocardless_sdk``: the official client
pointed at it. ``gocardless_webhook_receiver``: a loopback endpoint that records webhook
POSTs and answers with the statuses you queue.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import gocardless_pro
import pytest
from werkzeug.wrappers import Request, Response

from simulators.gocardless import SimClock, Simulator
from simulators.harness import SimulatorServer

SIM_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SIM_ACCESS_TOKEN = "sim-access-token"
SIM_WEBHOOK_SECRET = "sim-webhook-secret"


@pytest.fixture
def gocardless_simulator():
    sim = Simulator(access_tokens=(SIM_ACCESS_TOKEN, "sim-other-token"),
                    webhook_secret=SIM_WEBHOOK_SECRET,
                    clock=SimClock(SIM_START, frozen=True)).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def gocardless_sdk(gocardless_simulator):
    return gocardless_pro.Client(access_token=SIM_ACCESS_TOKEN, base_url=gocardless_simulator.url,
                                 timeout=5)


class WebhookReceiver:
    """Records every POST (headers and raw body); answers with queued statuses, then 204."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay_seconds = 0.0  # answer slowly, to exercise the sender's timeout
        self._lock = threading.Lock()
        self._server = SimulatorServer(self._app)

    def _app(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append({"headers": dict(request.headers), "body": request.get_data()})
            status = self.statuses.pop(0) if self.statuses else 204
        time.sleep(self.delay_seconds)
        return Response(b"", status=status)(environ, start_response)

    @property
    def url(self) -> str:
        return self._server.url + "/webhooks"

    def start(self) -> WebhookReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def gocardless_webhook_receiver(gocardless_simulator):
    receiver = WebhookReceiver().start()
    gocardless_simulator.set_webhook_url(receiver.url)
    try:
        yield receiver
    finally:
        receiver.stop()
