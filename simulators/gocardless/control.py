"""The control API under ``/_control/`` (JSON in and out, no auth), mirroring the
``Simulator`` methods so a simulator in another process can be driven over HTTP."""

from __future__ import annotations

import json
from datetime import datetime

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import errors
from .clock import iso_timestamp


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status,
                    content_type="application/json")


class ControlApp:
    def __init__(self, sim) -> None:
        self.sim = sim
        routes = {
            ("POST", "/_control/reset"): self.reset,
            ("GET", "/_control/clock"): self.clock,
            ("POST", "/_control/advance"): self.advance,
            ("POST", "/_control/seed"): self.seed,
            ("POST", "/_control/subscriptions"): self.create_subscription,
            ("POST", "/_control/instalment_schedules"): self.create_instalment_schedule,
            ("POST", "/_control/scenarios/<name>"): self.scenario,
            ("POST", "/_control/billing_request_flows/<flow_id>/complete"): self.complete_flow,
            ("POST", "/_control/payments/<payment_id>/fail"): self.fail_payment,
            ("GET", "/_control/faults"): self.faults,
            ("POST", "/_control/faults"): self.inject,
            ("DELETE", "/_control/faults"): self.clear_faults,
            ("GET", "/_control/chaos"): self.chaos,
            ("POST", "/_control/chaos"): self.chaos_on,
            ("DELETE", "/_control/chaos"): self.chaos_off,
            ("GET", "/_control/chaos/log"): self.chaos_log,
            ("GET", "/_control/webhook_chaos"): self.webhook_chaos,
            ("POST", "/_control/webhook_chaos"): self.webhook_chaos_on,
            ("DELETE", "/_control/webhook_chaos"): self.webhook_chaos_off,
            ("POST", "/_control/webhook_chaos/flush"): self.flush_webhooks,
            ("POST", "/_control/rate_limit"): self.rate_limit,
            ("GET", "/_control/webhooks"): self.webhooks,
            ("POST", "/_control/webhooks"): self.configure_webhooks,
            ("POST", "/_control/webhooks/deliver"): self.deliver,
            ("GET", "/_control/call_counts"): self.call_counts,
            ("GET", "/_control/events"): self.events,
            ("GET", "/_control/state/<kind>"): self.state,
            ("GET", "/_control/state/<kind>/<resource_id>"): self.state,
            ("GET", "/_control/organisations"): self.organisations,
            ("POST", "/_control/organisations"): self.add_organisation,
            ("GET", "/_control/oauth"): self.oauth,
            ("POST", "/_control/oauth"): self.configure_oauth,
            ("GET", "/_control/oauth/tokens"): self.oauth_tokens,
            ("DELETE", "/_control/oauth/tokens/<access_token>"): self.revoke_token,
        }
        self._handlers = list(routes.values())
        self._map = Map([Rule(path, methods=[method], endpoint=index)
                         for index, (method, path) in enumerate(routes)])

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            index, args = self._map.bind_to_environ(environ).match()
            # POST: a JSON object; GET/DELETE: the query string (e.g. ?organisation=OR…).
            body = (json.loads(request.get_data() or b"{}") if request.method == "POST"
                    else request.args.to_dict())
            response = self._handlers[index](body, **args)
        except HTTPException as exc:
            response = _json({"error": exc.description}, exc.code or 500)
        except (KeyError, ValueError, TypeError) as exc:
            response = _json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        except errors.ApiError as exc:
            response = _json(exc.body(), exc.status)
        return response(environ, start_response)

    def reset(self, body):
        self.sim.reset()
        return _json({"reset": True})

    def clock(self, body):
        return _json({"now": iso_timestamp(self.sim.clock.now()),
                      "today": self.sim.clock.today().isoformat()})

    def advance(self, body):
        """{"days": 1, "seconds": 0} or {"to": "2026-03-01T09:00:00Z"}."""
        if "to" in body:
            self.sim.clock.set(datetime.fromisoformat(body["to"].replace("Z", "+00:00")))
            self.sim.tick()
            self.sim.deliver_webhooks()
            return self.clock(body)
        return _json(self.sim.advance(days=body.get("days", 0), seconds=body.get("seconds", 0)))

    def seed(self, body):
        return _json(self.sim.seed(customers=body.get("customers", ()),
                                   mandates=body.get("mandates", ()),
                                   payments=body.get("payments", ()), bulk=body.get("bulk"),
                                   organisation=body.get("organisation")),
                     201)

    def create_subscription(self, body):
        """The body of POST /subscriptions (unwrapped), plus optional "organisation" and
        "source" ({"type", "name"}); 201 with the subscription."""
        body = dict(body)
        organisation, source = body.pop("organisation", None), body.pop("source", None)
        return _json({"subscriptions": self.sim.create_subscription(
            body, organisation=organisation, source=source)}, 201)

    def create_instalment_schedule(self, body):
        """Like subscriptions, for instalment schedules."""
        body = dict(body)
        organisation, source = body.pop("organisation", None), body.pop("source", None)
        return _json({"instalment_schedules": self.sim.create_instalment_schedule(
            body, organisation=organisation, source=source)}, 201)

    def scenario(self, body, name):
        self.sim.run_scenario(name, body["resource_id"])
        return _json({"scenario": name, "resource_id": body["resource_id"]})

    def complete_flow(self, body, flow_id):
        made = self.sim.complete_billing_request_flow(flow_id, **body)
        return _json({"mandates" if made["id"].startswith("MD") else "payments": made})

    def fail_payment(self, body, payment_id):
        """{"cause": "mandate_cancelled"}: the payer's bank fails the payment with it."""
        return _json({"payments": self.sim.fail_payment(payment_id, body["cause"])})

    def faults(self, body):
        return _json(self.sim.faults.describe())

    def inject(self, body):
        """{"kind": "html_502", "count": 1, "seconds": 0, "ms": null, "method": "POST",
        "path": "/payments"}"""
        body = dict(body)
        return _json(self.sim.inject(body.pop("kind"), **body), 201)

    def clear_faults(self, body):
        return _json(self.sim.inject("clear"))

    # -- random faults ------------------------------------------------------------------

    def chaos(self, body):
        """Settings, counts by kind and by route, pending 429 bursts."""
        return _json({**self.sim.faults.dice.describe(),
                      **self.sim.faults.chaos_counts(by_path=True)})

    def chaos_on(self, body):
        """{"seed": 7, "rate": 0.1, "kinds": [...], "timeout_seconds": 2.5, "burst": 3,
        "paths": ["/payments"]} -- all but seed and rate optional."""
        body = dict(body)
        for name in ("kinds", "paths"):
            if body.get(name) is not None:
                body[name] = tuple(body[name])
        return _json(self.sim.faults.chaos(**body))

    def chaos_off(self, body):
        return _json(self.sim.faults.chaos_off())

    def chaos_log(self, body):
        return _json({"faults": self.sim.faults.chaos_log()})

    def webhook_chaos(self, body):
        return _json(self.sim.webhooks.chaos.describe())

    def webhook_chaos_on(self, body):
        """{"seed": 7, "duplicate": 0.1, "drop": 0.05, "delay": 0.2,
        "max_delay_seconds": 5}"""
        return _json(self.sim.webhook_chaos(**body))

    def webhook_chaos_off(self, body):
        return _json(self.sim.webhook_chaos_off())

    def flush_webhooks(self, body):
        return _json({"flushed": self.sim.flush_webhooks(),
                      "counts": self.sim.webhook_chaos_counts()})

    def rate_limit(self, body):
        self.sim.set_rate_limit(body["per_minute"])
        return _json({"per_minute": self.sim.rate_limit_per_minute})

    def webhooks(self, body):
        with self.sim.state.lock:
            config = self.sim.webhooks.config()
        return _json({**config, "deliveries": self.sim.webhook_log()})

    def configure_webhooks(self, body):
        """{"url", "secret", "enabled", "batch_size", "timeout_seconds", "duplicate",
        "reorder", "auto_deliver_seconds"}"""
        body = dict(body)
        if "auto_deliver_seconds" in body:
            self.sim.set_auto_deliver(body.pop("auto_deliver_seconds"))
        return _json(self.sim.configure_webhooks(**body))

    def deliver(self, body):
        results = self.sim.deliver_webhooks()
        return _json({"deliveries": [{"status": s, "event_ids": ids} for s, ids in results]})

    def call_counts(self, body):
        return _json(self.sim.call_counts())

    def events(self, body):
        """?organisation=OR… (default: the first)."""
        return _json({"events": self.sim.events(body.get("organisation"))})

    def state(self, body, kind, resource_id=None):
        """?organisation=OR… for a list (default: the first); one id is found anywhere."""
        return _json({kind: self.sim.resource(kind, resource_id, body.get("organisation"))})

    # -- organisations and partner OAuth ----------------------------------------------------

    def organisations(self, body):
        return _json({"organisations": self.sim.organisations_list()})

    def add_organisation(self, body):
        """{"id", "name", "email", "creditor_id", "schemes"}, all optional."""
        return _json({"organisations": self.sim.add_organisation(**body)}, 201)

    def oauth(self, body):
        with self.sim.state.lock:
            return _json(dict(self.sim.oauth.settings))

    def configure_oauth(self, body):
        """{"client_id", "client_secret", "redirect_uris", "app_name", "consent",
        "consent_organisation"} -- any of them."""
        return _json(self.sim.configure_oauth(**body))

    def oauth_tokens(self, body):
        return _json({"tokens": self.sim.oauth_tokens()})

    def revoke_token(self, body, access_token):
        return _json({"tokens": self.sim.revoke_token(access_token)})
