"""``/oauth/authorize`` (the consent page) and ``/oauth/access_token``: the partner OAuth
endpoints the real service serves on connect(-sandbox).gocardless.com (API-NOTES §1.3, §1.5),
here on the simulator's own host.

Consent is decided, in this order, by the form's ``decision`` (Allow/Deny buttons of the
page), the request's ``sim_consent`` query parameter, then the ``consent`` setting
(interactive | allow | deny). The account that connects is the form's ``organisation``
choice, else ``sim_organisation``, else the organisation whose user e-mail is
``prefill[email]``, else the ``consent_organisation`` setting, else the first organisation.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import socket
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from werkzeug.wrappers import Request, Response

from .errors import OAuthError
from .faults import CLOUDFLARE_502
from .oauth import CONSENT_MODES, SCOPES

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/access_token"
INITIAL_VIEWS = ("signup", "login")
FORM_ONLY = ("decision", "organisation", "email", "sim_consent", "sim_organisation")


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}"
        "</body></html>", status=status, content_type="text/html; charset=utf-8")


def _error_page(title: str, message: str) -> Response:
    # An unknown client or an unregistered redirect URI is never redirected to.
    return _page(title, f"<p role='alert'>{html.escape(message)}</p>", 400)


def _redirect(location: str) -> Response:
    return Response("", status=302, headers={"Location": location})


def _json(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache",
                             **(headers or {})})


class OAuthApp:
    """WSGI app for ``/oauth/…``; ``sim`` supplies the OAuth server, organisations, faults."""

    def __init__(self, sim) -> None:
        self.sim = sim

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == TOKEN_PATH:
            response = self._token_call(request, environ)
        elif request.path == AUTHORIZE_PATH and request.method in ("GET", "POST"):
            response = self.authorize(request)
        else:
            response = _page("Page not found", "<p>There is nothing here.</p>", 404)
        with self.sim.state.lock:
            self.sim.state.call_counts[(request.method, request.path,
                                        response.status_code)] += 1
        return response(environ, start_response)

    # -- /oauth/authorize ---------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        sim = self.sim
        params = {**request.args.to_dict(), **request.form.to_dict()}
        posted = request.method == "POST"
        with sim.state.lock:
            settings = dict(sim.oauth.settings)
            if params.get("client_id") != settings["client_id"]:
                return _error_page("Unknown application",
                                   "The client_id does not belong to any app.")
            redirect_uri = params.get("redirect_uri", "")
            if not sim.oauth.redirect_uri_registered(redirect_uri):
                return _error_page("Invalid redirect URI",
                                   "The redirect_uri is not one the app has registered.")
        state_param = {"state": params["state"]} if "state" in params else {}

        def refuse(error: str) -> Response:
            return _redirect(with_query(redirect_uri, {"error": error, **state_param}))

        if params.get("response_type") != "code":
            return refuse("unsupported_response_type")
        if params.get("scope") not in SCOPES:
            return refuse("invalid_scope")
        asked = request.args.get("sim_consent")
        if asked is not None and asked not in CONSENT_MODES:
            return _error_page("Invalid sim_consent",
                               f"sim_consent must be one of {', '.join(CONSENT_MODES)}.")
        decision = (request.form.get("decision") if posted else None) or asked or (
            settings["consent"])
        if decision == "deny":
            return refuse("access_denied")
        if decision not in ("allow", "interactive"):
            return _error_page("Invalid decision", "decision must be allow or deny.")
        with sim.state.lock:
            chosen = (request.form.get("organisation") if posted else None) or params.get(
                "sim_organisation")
            if chosen:
                organisation = sim.organisations.get(chosen)
                if organisation is None:
                    return _error_page("Unknown account", f"No organisation {chosen}.")
            else:
                organisation = sim.organisations.by_email(
                    params.get("prefill[email]", "")) or sim.organisations.get(
                    settings["consent_organisation"]) or sim.organisations.primary
            if decision == "interactive":
                return _page("Connect your GoCardless account",
                             self._consent_form(params, settings, organisation.id))
            code = sim.oauth.issue_code(redirect_uri=redirect_uri,
                                        organisation_id=organisation.id,
                                        scope=params["scope"], email=organisation.email)
        return _redirect(with_query(redirect_uri, {"code": code, **state_param}))

    def _consent_form(self, params: dict[str, str], settings: dict, selected: str) -> str:
        hidden = "".join(
            f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
            for k, v in params.items() if k not in FORM_ONLY)
        choices = "".join(
            f"<p><label><input type='radio' name='organisation' value='{html.escape(o.id)}'"
            f"{' checked' if o.id == selected else ''}> {html.escape(o.name)} "
            f"({html.escape(o.id)}, creditor {html.escape(o.creditor_id)}, "
            f"{html.escape(o.email)})</label></p>"
            for o in self.sim.organisations)
        scope = ("read and write access (create customers, mandates and payments)"
                 if params["scope"] == "read_write" else "read-only access")
        view = params.get("initial_view")
        view_note = (f"<p>Initial view requested: {html.escape(view)}.</p>"
                     if view in INITIAL_VIEWS else "")
        prefill = params.get("prefill[email]")
        prefill_note = (f"<p>Prefilled e-mail: <span id='prefill-email'>"
                        f"{html.escape(prefill)}</span></p>" if prefill else "")
        return (
            f"<p>GoCardless simulator: <b>{html.escape(settings['app_name'])}</b> asks for "
            f"{scope} to the account you choose.</p>{view_note}{prefill_note}"
            f"<form method='post' action='{AUTHORIZE_PATH}'>{hidden}"
            f"<fieldset><legend>Account</legend>{choices}</fieldset>"
            "<button name='decision' value='allow'>Allow</button> "
            "<button name='decision' value='deny'>Deny</button></form>"
        )

    # -- /oauth/access_token ------------------------------------------------------------

    def _token_call(self, request: Request, environ) -> Response:
        # Only faults aimed at /oauth explicitly: a plain injected fault stays for the API.
        fault = self.sim.faults.take(request.method, request.path, explicit=True)
        if fault is not None and fault.kind != "drop_response":
            if fault.kind == "timeout":
                time.sleep(fault.seconds or 11)
                return _page("504 Gateway Time-out", "", 504)
            if fault.kind == "html_502":
                return Response(CLOUDFLARE_502, status=502, content_type="text/html")
            if fault.kind == "rate_limit":
                return _json(429, {"error": "rate_limit_exceeded"})
            return _json(500, {"error": "server_error"})
        response = self.token(request)
        if fault is not None:  # drop_response: the code is spent, the client never hears
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return Response(b"", status=502)
        return response

    def token(self, request: Request) -> Response:
        if request.method != "POST":
            return _json(405, {"error": "invalid_request",
                               "error_description": "Use POST."}, {"Allow": "POST"})
        if request.mimetype != "application/x-www-form-urlencoded":
            return _json(400, {"error": "invalid_request", "error_description":
                               "The body must be application/x-www-form-urlencoded."})
        try:
            basic = _basic_credentials(request.headers.get("Authorization", ""))
            with self.sim.state.lock:
                body = self.sim.oauth.exchange(request.form.to_dict(), basic)
        except OAuthError as exc:
            return _json(exc.status, exc.body(), exc.headers)
        return _json(200, body)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, colon, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(400, "invalid_request", "Malformed Basic credentials.") from None
    if not colon:
        raise OAuthError(400, "invalid_request", "Malformed Basic credentials.")
    return client_id, secret
