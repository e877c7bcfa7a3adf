"""Exact Online simulator: a WSGI app that behaves like Exact's REST API (see
docs/simulator-exact.md and /work/shared/API-NOTES-EXACT.md).

    sim = Simulator(auto_consent=True).start()
    sim.seed_division(division=123456)
    ... point the client at sim.url ...
    sim.stop()
"""

from __future__ import annotations

from datetime import UTC, datetime

from simulators.harness import SimulatorServer

from .app import App
from .chaos import CHAOS_KINDS
from .clock import SimClock
from .control import ControlMixin
from .faults import Faults
from .oauth import OAuthServer
from .ratelimit import RateLimiter
from .state import DEFAULT_USER_ID, State
from .webhooks import WebhookSender, event_created_on

__all__ = ["CHAOS_KINDS", "SimClock", "Simulator"]


class Simulator(ControlMixin):
    def __init__(
        self,
        *,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",
        webhook_secret: str = "sim-webhook-secret",
        minutely_limit: int = 60,
        daily_limit: int = 5000,
        auto_consent: bool = False,
        clock=None,
        webhook_interval: float | None = None,
    ) -> None:
        """``webhook_interval``: deliver queued webhooks every so many (wall-clock) seconds
        from a background thread once started; None leaves delivery to deliver_webhooks()."""
        self._owns_clock = clock is None
        self.clock = clock or SimClock()
        self._config = dict(client_id=client_id, client_secret=client_secret,
                            webhook_secret=webhook_secret, minutely_limit=minutely_limit,
                            daily_limit=daily_limit, auto_consent=auto_consent)
        self._webhook_interval = webhook_interval
        self._server: SimulatorServer | None = None
        self._host = "127.0.0.1"
        self.app = App(self)
        self._build()

    def _build(self) -> None:
        cfg = self._config
        self.state = State(self.clock)
        self.state.on_change = self._notify
        self.oauth = OAuthServer(self.clock, cfg["client_id"], cfg["client_secret"])
        self.ratelimiter = RateLimiter(self.clock, cfg["minutely_limit"], cfg["daily_limit"])
        self.faults = Faults()
        self.webhooks = WebhookSender(cfg["webhook_secret"], self.clock)
        # Read by the consent page; changed through settings().
        self.oauth_settings = {
            "consent": "allow" if cfg["auto_consent"] else "interactive",
            "consent_user": DEFAULT_USER_ID,
            "consent_divisions": None,
            "redirect_uris": [],
        }

    @property
    def wsgi_app(self) -> App:
        return self.app

    def reset(self) -> dict:
        """Forget everything (state, tokens, faults, counts, webhooks, chaos of both kinds and
        their counts); keep configuration."""
        self.webhooks.close()
        if self._owns_clock:
            self.clock.set(datetime.now(UTC))
        self._build()
        self.app.calls.snapshot(reset=True)
        if self._server is not None and self._webhook_interval:
            self.webhooks.start_background(self._webhook_interval)
        return {"reset": True, "now": self.clock.now().isoformat()}

    # --- server -----------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        self._host = host
        self._server = SimulatorServer(self.app, host=host, port=port).start()
        if self._webhook_interval:
            self.webhooks.start_background(self._webhook_interval)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        return self._server.url

    def stop(self) -> None:
        self.webhooks.close()
        if self._server is None:
            return
        server, self._server = self._server, None
        server.stop()

    # --- webhooks ---------------------------------------------------------------------

    def _notify(self, division: int, topic: str, action: str, key: str, path: str) -> None:
        base = self._server.url if self._server is not None else "http://localhost"
        for sub in self.state.subscriptions.values():
            if sub.division != division or sub.topic != topic:
                continue
            self.webhooks.queue_event(sub.callback_url, {
                "Topic": topic,
                "ClientId": sub.client_id,
                "Division": division,
                "Action": action,
                "Key": key,
                "ExactOnlineEndpoint": f"{base}/api/v1/{division}/{path}(guid'{key}')",
                "EventCreatedOn": event_created_on(self.clock.now()),
            })
