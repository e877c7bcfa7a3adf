"""``/api/oauth2/auth`` (the consent page) and ``/api/oauth2/token``."""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import OAuthError

if TYPE_CHECKING:
    from . import Simulator

CONSENT_MODES = ("interactive", "allow", "deny")


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def authorize(sim: Simulator, method: str, params: dict[str, str],
              form_divisions: list[str]) -> tuple[int, str, dict[str, str]]:
    """Return (status, html, headers). Redirects carry ``code``/``state`` or ``error``."""
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    if client_id != sim.oauth.client_id:
        return 400, _page("Unknown application", "<p>The client_id is not known.</p>"), {}
    registered = sim.oauth_settings["redirect_uris"]
    if not redirect_uri or (registered and redirect_uri not in registered):
        # Exact shows an error page instead of redirecting to an unregistered URI.
        return 400, _page("Invalid redirect URI",
                          "<p>The redirect_uri does not match the registered one.</p>"), {}
    state_param = {"state": params["state"]} if "state" in params else {}
    if params.get("response_type", "code") != "code":
        return _redirect(with_query(redirect_uri, {"error": "unsupported_response_type",
                                                   **state_param}))

    decision = params.get("decision") if method == "POST" else None
    decision = decision or params.get("sim_consent") or sim.oauth_settings["consent"]
    if decision == "deny":
        return _redirect(with_query(redirect_uri, {"error": "access_denied", **state_param}))
    if decision == "interactive":
        return 200, _consent_page(sim, params), {}

    user_id = params.get("user") or sim.oauth_settings["consent_user"]
    divisions = ([int(d) for d in form_divisions] if method == "POST"
                 else sim.oauth_settings["consent_divisions"])
    with sim.state.lock:
        if user_id.lower() not in sim.state.users:
            return 400, _page("Unknown user", "<p>The consenting user does not exist.</p>"), {}
        code = sim.oauth.issue_code(client_id=client_id, user_id=user_id.lower(),
                                    divisions=divisions, redirect_uri=redirect_uri)
    return _redirect(with_query(redirect_uri, {"code": code, **state_param}))


def token(sim: Simulator, form: dict[str, str], authorization: str) -> dict[str, str]:
    """One token call; OAuthError for refusals. Client credentials may come as Basic auth."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic" and "client_id" not in form:
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
        form = {**form, "client_id": client_id, "client_secret": secret}
    if not form:
        raise OAuthError(400, "invalid_request")
    with sim.state.lock:
        return sim.oauth.token(form)


def _redirect(location: str) -> tuple[int, str, dict[str, str]]:
    return 302, "", {"Location": location}


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _consent_page(sim: Simulator, params: dict[str, str]) -> str:
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
        for k, v in params.items() if k not in ("decision", "user")
    )
    with sim.state.lock:
        user = sim.state.user(sim.oauth_settings["consent_user"])
        divisions = [sim.state.divisions[c] for c in user.divisions]
    boxes = "".join(
        f"<label><input type='checkbox' name='division' value='{d.code}' checked> "
        f"{d.code} {html.escape(d.name)}</label><br>" for d in divisions
    )
    body = (
        f"<p>Exact Online simulator: <b>{html.escape(user.full_name)}</b> is asked to give "
        "this application access to:</p>"
        f"<form method='post' action='/api/oauth2/auth'>{hidden}"
        f"<input type='hidden' name='user' value='{user.id}'>{boxes}"
        "<button name='decision' value='allow'>Allow</button> "
        "<button name='decision' value='deny'>Deny</button></form>"
    )
    return _page("Allow access", body)
