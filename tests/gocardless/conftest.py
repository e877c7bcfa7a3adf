"""Shared helpers for the GoCardless tests: a connection to the simulator, signing, posting."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from django_q.conf import Conf

from gocardless.models import ConnectionStatus, Environment
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
