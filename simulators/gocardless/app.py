"""The public API surface: routing, auth and version headers, rate limiting, idempotency,
injected faults, and the JSON envelope around every handler."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import errors, events_api, payments, payouts, plans, resources, scenarios, validation
from .chaos import PROCESSED_KINDS
from .faults import CLOUDFLARE_502

GATEWAY_TIMEOUT = "<html><body>504 Gateway Time-out</body></html>"

API_VERSION = "2015-07-06"
IDEMPOTENCY_KEY_MAX = 128

# (path, method, handler, store created by this call -- for idempotency keys)
ROUTES = [
    ("/customers", "POST", resources.customers_create, "customers"),
    ("/customers", "GET", resources.customers_list, None),
    ("/customers/<resource_id>", "GET", resources.customers_get, None),
    ("/customers/<resource_id>", "PUT", resources.customers_update, None),
    ("/customer_bank_accounts", "POST", resources.restricted_create, None),
    ("/customer_bank_accounts", "GET", resources.bank_accounts_list, None),
    ("/customer_bank_accounts/<resource_id>", "GET", resources.bank_accounts_get, None),
    ("/customer_bank_accounts/<resource_id>", "PUT", resources.bank_accounts_update, None),
    ("/customer_bank_accounts/<resource_id>/actions/disable", "POST",
     resources.bank_accounts_disable, None),
    ("/mandates", "POST", resources.restricted_create, None),
    ("/mandates", "GET", resources.mandates_list, None),
    ("/mandates/<resource_id>", "GET", resources.mandates_get, None),
    ("/mandates/<resource_id>", "PUT", resources.mandates_update, None),
    ("/mandates/<resource_id>/actions/cancel", "POST", resources.mandates_cancel, None),
    ("/mandates/<resource_id>/actions/reinstate", "POST", resources.mandates_reinstate, None),
    ("/creditors", "GET", resources.creditors_list, None),
    ("/creditors/<resource_id>", "GET", resources.creditors_get, None),
    ("/billing_requests", "POST", resources.billing_requests_create, "billing_requests"),
    ("/billing_requests", "GET", resources.billing_requests_list, None),
    ("/billing_requests/<resource_id>", "GET", resources.billing_requests_get, None),
    ("/billing_requests/<resource_id>/actions/cancel", "POST",
     resources.billing_requests_cancel, None),
    ("/billing_request_flows", "POST", resources.billing_request_flows_create,
     "billing_request_flows"),
    ("/payments", "POST", payments.payments_create, "payments"),
    ("/payments", "GET", payments.payments_list, None),
    ("/payments/<resource_id>", "GET", payments.payments_get, None),
    ("/payments/<resource_id>", "PUT", payments.payments_update, None),
    ("/payments/<resource_id>/actions/cancel", "POST", payments.payments_cancel, None),
    ("/payments/<resource_id>/actions/retry", "POST", payments.payments_retry, None),
    ("/refunds", "POST", payments.refunds_create, "refunds"),
    ("/refunds", "GET", payments.refunds_list, None),
    ("/refunds/<resource_id>", "GET", payments.refunds_get, None),
    ("/refunds/<resource_id>", "PUT", payments.refunds_update, None),
    ("/payouts", "GET", payouts.payouts_list, None),
    ("/payouts/<resource_id>", "GET", payouts.payouts_get, None),
    ("/payouts/<resource_id>", "PUT", payouts.payouts_update, None),
    ("/payout_items", "GET", payouts.payout_items_list, None),
    ("/subscriptions", "POST", plans.subscriptions_create, "subscriptions"),
    ("/subscriptions", "GET", plans.subscriptions_list, None),
    ("/subscriptions/<resource_id>", "GET", plans.subscriptions_get, None),
    ("/subscriptions/<resource_id>", "PUT", plans.subscriptions_update, None),
    ("/subscriptions/<resource_id>/actions/pause", "POST", plans.subscriptions_pause, None),
    ("/subscriptions/<resource_id>/actions/resume", "POST", plans.subscriptions_resume, None),
    ("/subscriptions/<resource_id>/actions/cancel", "POST", plans.subscriptions_cancel, None),
    # The API reference has both creates on POST /instalment_schedules (the Node client);
    # the Python client 3.22.0 posts to .../create_with_dates and .../create_with_schedule.
    ("/instalment_schedules", "POST", plans.instalment_schedules_create,
     "instalment_schedules"),
    ("/instalment_schedules/create_with_dates", "POST",
     plans.instalment_schedules_create_with_dates, "instalment_schedules"),
    ("/instalment_schedules/create_with_schedule", "POST",
     plans.instalment_schedules_create_with_schedule, "instalment_schedules"),
    ("/instalment_schedules", "GET", plans.instalment_schedules_list, None),
    ("/instalment_schedules/<resource_id>", "GET", plans.instalment_schedules_get, None),
    ("/instalment_schedules/<resource_id>", "PUT", plans.instalment_schedules_update, None),
    ("/instalment_schedules/<resource_id>/actions/cancel", "POST",
     plans.instalment_schedules_cancel, None),
    ("/events", "GET", events_api.events_list, None),
    ("/events/<resource_id>", "GET", events_api.events_get, None),
]


def _scenario(state, call, name):
    data = validation.action_data(call.body)
    resource_id = (data.get("links") or {}).get("resource")
    if not resource_id:
        check = errors.Validation("data")
        check.add("resource", "is required", "links/resource")
        check.raise_if_any()
    scenarios.run(state, name, resource_id)
    return 200, {"scenario_simulators": {"id": name}}


ROUTES.append(("/scenario_simulators/<name>/actions/run", "POST", _scenario, None))

URL_MAP = Map([
    Rule(path, methods=[method], endpoint=index) for index, (path, method, _, _) in
    enumerate(ROUTES)
])


@dataclass
class Call:
    token: str
    body: object
    args: MultiDict
    base_url: str


def template_of(path: str) -> str:
    return path.replace("<resource_id>", "{id}").replace("<name>", "{name}")


class ApiApp:
    """WSGI app for the GoCardless API paths; ``sim`` supplies state, faults and settings."""

    def __init__(self, sim) -> None:
        self.sim = sim

    def __call__(self, environ, start_response):
        request = Request(environ)
        response, drop = self.handle(request)
        if drop:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                # The request was processed; the client never hears back (connection reset).
                sock.shutdown(socket.SHUT_RDWR)
                return Response(b"")(environ, start_response)
            response = Response(CLOUDFLARE_502, status=502, content_type="text/html")
        return response(environ, start_response)

    def handle(self, request: Request) -> tuple[Response, bool]:
        sim = self.sim
        if sim.faults.latency_ms:
            time.sleep(sim.faults.latency_ms / 1000)
        sim.tick()
        adapter = URL_MAP.bind_to_environ(request.environ)
        template = request.path
        token = None
        drop, late = False, None
        try:
            try:
                index, path_args = adapter.match()
            except HTTPException:
                raise errors.invalid_api_usage(404, "not_found", "Not found") from None
            path, _, handler, creates = ROUTES[index]
            template = template_of(path)
            token, organisation, scope = self._authenticate(request)
            self._check_version(request)
            self._count_rate(token)
            if scope == "read_only" and request.method not in ("GET", "HEAD"):
                raise errors.invalid_api_usage(
                    403, "insufficient_permissions",
                    "The access token does not have permission to perform this action")
            # A queued fault (inject) wins; only when none is due does chaos draw.
            fault = sim.faults.take(request.method, request.path) or sim.faults.chaos_fault(
                token=token, method=request.method, path=request.path,
                route=f"{request.method} {template}")
            if fault is not None and fault.kind not in PROCESSED_KINDS:
                return self._fault_response(fault, token, template, request), False
            late = fault if fault is not None and fault.kind == "timeout_after" else None
            drop = fault is not None and fault.kind == "drop_response"
            status, body = self._dispatch(request, token, organisation.state, handler,
                                          creates, path_args)
        except errors.ApiError as exc:
            status, body = exc.status, exc.body()
        if late is not None:
            # The work is done (and its events emitted); the answer never arrives in time.
            time.sleep(late.seconds if late.chaos else late.seconds or 11)
            return self._finish(Response(GATEWAY_TIMEOUT, status=504, content_type="text/html"),
                                token, template, request), False
        with sim.state.lock:
            payload = json.dumps(body)
        return self._finish(Response(payload, status=status, content_type="application/json"),
                            token, template, request), drop

    def _finish(self, response: Response, token, template: str, request: Request, *,
                spent: bool = False) -> Response:
        """``spent``: a chaos 429, which says the token's budget is used up, as a real one
        does (a queued ``inject`` 429 keeps the true count, as it always has)."""
        sim = self.sim
        limit, remaining, reset = sim.rate_status(token)
        response.headers["RateLimit-Limit"] = str(limit)
        response.headers["RateLimit-Remaining"] = str(0 if spent else remaining)
        response.headers["RateLimit-Reset"] = http_date(reset)
        with sim.state.lock:
            sim.state.call_counts[(request.method, template, response.status_code)] += 1
        return response

    def _fault_response(self, fault, token, template, request) -> Response:
        if fault.kind == "error_500":
            response = Response(json.dumps(errors.internal_error().body()), status=500,
                                content_type="application/json")
        elif fault.kind == "rate_limit":
            response = Response(json.dumps(errors.rate_limited().body()), status=429,
                                content_type="application/json")
        elif fault.kind == "timeout":
            # Sleep past the client's timeout without doing the work: a retry is safe.
            time.sleep(fault.seconds if fault.chaos else fault.seconds or 11)
            response = Response(GATEWAY_TIMEOUT, status=504, content_type="text/html")
        else:
            response = Response(CLOUDFLARE_502, status=502, content_type="text/html")
        return self._finish(response, token, template, request,
                            spent=fault.chaos and fault.kind == "rate_limit")

    def _authenticate(self, request: Request):
        """(token, organisation, scope) of the bearer token: a built-in token (the first
        organisation, read_write) or one issued through OAuth."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        grant = self.sim.grant(token) if scheme == "Bearer" else None
        if grant is None:
            raise errors.invalid_api_usage(401, "unauthorized",
                                           "Access token not found or not active")
        return token, *grant

    @staticmethod
    def _check_version(request: Request) -> None:
        version = request.headers.get("GoCardless-Version")
        if version is None:
            raise errors.invalid_api_usage(400, "missing_version_header",
                                           "GoCardless-Version header is required")
        if version != API_VERSION:
            raise errors.invalid_api_usage(400, "version_not_found",
                                           f"Version {version} not found")

    def _source(self, token: str) -> dict:
        """Event ``source`` of a call: a built-in access token, or the partner app whose
        OAuth token it is."""
        if token in self.sim.access_tokens:
            return {"type": "access_token", "name": "Simulated access token"}
        return {"type": "app", "name": self.sim.oauth.settings["app_name"]}

    def _count_rate(self, token: str) -> None:
        if not self.sim.take_rate(token):
            raise errors.rate_limited()

    def _dispatch(self, request, token, state, handler, creates, path_args):
        body = None
        if request.method in ("POST", "PUT"):
            raw = request.get_data()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise errors.invalid_api_usage(400, "invalid_document_structure",
                                                   "Invalid document structure") from None
        key = request.headers.get("Idempotency-Key") if creates else None
        if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
            raise errors.invalid_api_usage(400, "idempotency_key_too_long",
                                           "Idempotency key is too long")
        call = Call(token, body, request.args, request.host_url.rstrip("/"))
        with state.lock:
            if key is not None and (token, key) in state.idempotency:
                raise errors.idempotency_conflict(state.idempotency[(token, key)][1])
            state.request_source = self._source(token)
            try:
                status, response_body = handler(state, call, **path_args)
            finally:
                state.request_source = None
            if key is not None and status == 201:
                state.idempotency[(token, key)] = (creates, response_body[creates]["id"])
        return status, response_body
