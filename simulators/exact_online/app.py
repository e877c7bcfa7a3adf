"""The WSGI entry point: routes, injected faults, latency and call counting."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from . import api, consent, control
from .errors import ApiError, OAuthError
from .faults import TOKEN_PATH

if TYPE_CHECKING:
    from . import Simulator

JSON = "application/json; charset=utf-8"

# Pages that are not Exact's JSON: a proxy in front of it that cannot reach it, and the stock
# IIS "service unavailable" page of an ASP.NET host. Exact documents no 503 body; what matters
# is that a client copes with a 5xx that is not JSON.
PROXY_502 = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
</body>
</html>
"""
IIS_503 = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">
<HTML><HEAD><TITLE>Service Unavailable</TITLE>
<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>
<BODY><h2>Service Unavailable</h2>
<hr><p>HTTP Error 503. The service is unavailable.</p>
</BODY></HTML>
"""


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status=status, headers=headers)
    if isinstance(body, str):  # /$count answers a bare number
        return Response(body, status=status, headers=headers,
                        content_type="text/plain; charset=utf-8")
    return Response(json.dumps(body, separators=(",", ":")), status=status, headers=headers,
                    content_type=JSON)


class CallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def record(self, endpoint: str, status: int | str) -> None:
        with self._lock:
            self._counts[endpoint]["total"] += 1
            self._counts[endpoint][str(status)] += 1

    def snapshot(self, reset: bool = False) -> dict[str, dict[str, int]]:
        with self._lock:
            out = {k: dict(v) for k, v in self._counts.items()}
            if reset:
                self._counts.clear()
            return out


class App:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.calls = CallCounter()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/_control/"):
            response = control.handle(self.sim, request)
        elif request.path.startswith("/api/"):
            response = self._api(request, environ)
        else:
            response = json_response(404, ApiError(404, "Resource not found").body())
        return response(environ, start_response)

    def _api(self, request: Request, environ) -> Response:
        endpoint = f"{request.method} {api.normalize(request.path)}"
        if request.path == TOKEN_PATH:
            endpoint += f" grant_type={request.form.get('grant_type', '')}"
        latency = self.sim.faults.latency_ms
        if latency:
            time.sleep(latency / 1000)  # real time: this fault exists to slow clients down
        fault = self.sim.faults.take(request.path)
        if fault is None:
            chaos = self.sim.faults.chaos_fault(request.path, endpoint)
            if chaos is not None:
                return self._chaos(request, environ, endpoint, *chaos)
        if fault is not None and fault.kind == "status":
            self.calls.record(endpoint, fault.status)
            return self._injected_status(request, fault.status)
        if fault is not None and not fault.process:
            self.calls.record(endpoint, "dropped")
            return self._drop(environ, fault.seconds)
        response = self._route(request)
        if fault is not None:  # the work is done; the client never hears about it
            self.calls.record(endpoint, "dropped")
            return self._drop(environ, fault.seconds)
        self.calls.record(endpoint, response.status_code)
        return response

    def _route(self, request: Request) -> Response:
        path = request.path
        if path == "/api/oauth2/auth" and request.method in ("GET", "POST"):
            params = {**request.args.to_dict(), **request.form.to_dict()}
            status, page, headers = consent.authorize(self.sim, request.method, params,
                                                      request.form.getlist("division"))
            return Response(page, status=status, headers=headers,
                            content_type="text/html; charset=utf-8")
        if path == TOKEN_PATH:
            if request.method != "POST":
                return json_response(405, {"error": "invalid_request"})
            try:
                tokens = consent.token(self.sim, request.form.to_dict(),
                                       request.headers.get("Authorization", ""))
            except OAuthError as err:
                return json_response(err.status, err.body(), err.headers)
            return json_response(200, tokens, {"Cache-Control": "no-store"})
        reply = api.handle(self.sim, request.method, path, request.args.to_dict(),
                           dict(request.headers), request.get_data(), request.host_url)
        return json_response(reply.status, reply.body, reply.headers)

    def _chaos(self, request: Request, environ, endpoint: str, kind: str,
               seconds: float) -> Response:
        """Answer a call the way a random fault of ``kind`` says (chaos.py)."""
        if kind == "timeout_after":
            self._route(request)  # the work is done; the client never hears about it
        if kind in ("timeout", "timeout_after"):
            self.calls.record(endpoint, "dropped")
            return self._drop(environ, seconds)
        if kind == "rate_limit":
            # What the simulator's own limiter answers when the minute's budget is spent.
            error = ApiError(429, "API rate limit exceeded (minutely).",
                             headers=self.sim.ratelimiter.exhausted_headers())
            response = json_response(429, error.body(), error.headers)
        elif kind == "error_500":
            response = json_response(500, ApiError(500, "Internal server error").body())
        elif kind == "error_503":
            response = Response(IIS_503, status=503, content_type="text/html; charset=us-ascii")
        else:
            response = Response(PROXY_502, status=502, content_type="text/html")
        self.calls.record(endpoint, response.status_code)
        return response

    def _injected_status(self, request: Request, status: int) -> Response:
        if request.path == TOKEN_PATH:
            return json_response(status, {"error": "server_error"})
        headers = self.sim.ratelimiter.exhausted_headers() if status == 429 else {}
        message = {429: "API rate limit exceeded.", 500: "Internal server error"}.get(
            status, f"Injected error {status}")
        return json_response(status, ApiError(status, message).body(), headers)

    @staticmethod
    def _drop(environ, seconds: float) -> Response:
        """Hold the request past the client's timeout, then close without answering."""
        if seconds:
            time.sleep(seconds)
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client already gave up and closed its end
        return Response(status=504)
