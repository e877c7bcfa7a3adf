"""Thin HTTP clients for the simulators' control APIs (``/_control/``): seeding, clocks,
the payer's side of the hosted page. The product itself talks to the simulators through its
own clients, exactly as it talks to Exact Online and GoCardless."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TIMEOUT = 10


class SimulatorError(RuntimeError):
    """A simulator did not answer, or refused a control call."""


def require_loopback(url: str) -> str:
    """The control APIs have no auth: the demo only ever drives simulators on this machine."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SimulatorError(
            f"{url} is not a loopback address; the demo drives local simulators only"
        )
    return url.rstrip("/")


class _Control:
    name = "simulator"

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = require_loopback(url)
        self.session = session or requests.Session()
        self.session.trust_env = False  # loopback only: never through a proxy

    def call(self, method: str, path: str, body: dict | None = None):
        url = f"{self.url}/_control/{path}"
        try:
            response = self.session.request(method, url, json=body, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise SimulatorError(
                f"The {self.name} simulator at {self.url} does not answer ({type(exc).__name__}). "
                "Start it with `make simulate` (or `manage.py simulate --auto-consent`)."
            ) from exc
        if response.status_code >= 400:
            raise SimulatorError(
                f"{self.name} simulator: {method} {path} -> {response.status_code} "
                f"{response.text[:300]}"
            )
        return response.json() if response.content else None


class ExactControl(_Control):
    """``simulators/exact_online/control.py``: every method is ``POST /_control/<method>``."""

    name = "Exact Online"

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)

        def invoke(**kwargs):
            return self.call("POST", method, kwargs)

        return invoke


class GoCardlessControl(_Control):
    """``simulators/gocardless/control.py``."""

    name = "GoCardless"

    def reset(self) -> None:
        # reset() keeps the clock where an earlier demo moved it, and the simulator's daily
        # processing starts again from its clock's today: bring the clock to ours first
        # (the demo's story clock, when it runs one).
        self.call("POST", "advance", {"to": datetime.now(UTC).isoformat()})
        self.call("POST", "reset", {})

    def clock(self) -> dict:
        return self.call("GET", "clock")

    def clock_set(self, when: datetime) -> dict:
        """Set the simulator's clock (it runs on from there), processing what became due."""
        return self.call("POST", "advance", {"to": when.astimezone(UTC).isoformat()})

    def advance(self, *, days: float = 0, seconds: float = 0) -> dict:
        return self.call("POST", "advance", {"days": days, "seconds": seconds})

    def seed(self, **body) -> dict:
        return self.call("POST", "seed", body)

    def create_subscription(self, **body) -> dict:
        """A subscription set up in GoCardless' dashboard (not through ml-connector)."""
        return self.call("POST", "subscriptions", body)["subscriptions"]

    def complete_flow(self, flow_id: str, **payer) -> dict:
        return self.call("POST", f"billing_request_flows/{flow_id}/complete", payer)

    def fail_payment(self, payment_id: str, *, cause: str) -> dict:
        """The payer's bank fails the payment with ``cause`` (e.g. ``bank_account_closed``)."""
        return self.call("POST", f"payments/{payment_id}/fail", {"cause": cause})["payments"]

    def configure_webhooks(self, **body) -> dict:
        return self.call("POST", "webhooks", body)

    def scenario(self, name: str, resource_id: str) -> dict:
        return self.call("POST", f"scenarios/{name}", {"resource_id": resource_id})

    def state(self, kind: str, resource_id: str | None = None):
        path = f"state/{kind}" + (f"/{resource_id}" if resource_id else "")
        return self.call("GET", path)[kind]
