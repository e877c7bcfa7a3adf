"""The OAuth connect flow as services: a signed, expiring ``state`` bound to the user's
session and the tenant; the code exchange; the list of divisions the consent reaches.

State = ``signing.dumps({connection, tenant, user, nonce, issued})`` with a salt, checked
with ``max_age``; the nonce also lives in the user's session and is removed on first use, so a
state is valid once, for that browser session, for that user, for ten minutes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from django.core import signing

from exact import client as exact_client
from exact.errors import ExactError, ExactTokenError
from exact.models import ExactConnection

STATE_SALT = "exact.oauth.state"
STATE_MAX_AGE = 600
SESSION_NONCES = "exact_oauth_nonces"
SESSION_USED_CODES = "exact_oauth_used_codes"
SESSION_DIVISIONS = "exact_oauth_divisions"
CODE_TTL_SECONDS = 180  # Exact's authorization codes live about three minutes


class ConnectFlowError(Exception):
    """A user-facing failure of the connect flow: rendered as a page with ``status``."""

    def __init__(self, title: str, message: str, *, status: int = 400, code: str = ""):
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class FlowState:
    connection_id: int
    tenant_id: int
    user_id: int
    nonce: str
    issued: float


def state_create(*, request, connection: ExactConnection) -> str:
    nonce = secrets.token_urlsafe(16)
    nonces = dict(request.session.get(SESSION_NONCES, {}))
    nonces[nonce] = connection.pk
    request.session[SESSION_NONCES] = dict(list(nonces.items())[-5:])  # a few open tabs
    return signing.dumps(
        {
            "c": connection.pk,
            "t": connection.tenant_id,
            "u": request.user.pk,
            "n": nonce,
            "i": time.time(),
        },
        salt=STATE_SALT,
    )


def consent_url_create(*, request, connection: ExactConnection) -> str:
    """Where *Connect / Reconnect Exact Online* sends the browser: Exact's consent page with a
    fresh ``state``. ValidationError for a connection whose host is not allowed, ValueError
    when oauthlib refuses the URL."""
    connection.clean()
    state = state_create(request=request, connection=connection)
    return exact_client.oauth_authorization_url(base_url=connection.base_url, state=state)


def state_check(*, request, state: str) -> FlowState:
    """Validate ``state`` against the signature, its age, the user and the session nonce."""
    if not state:
        raise ConnectFlowError(
            "Missing state", "Exact sent no state parameter back.", status=400, code="state"
        )
    try:
        data = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise ConnectFlowError(
            "Connection attempt expired",
            "This connection attempt is older than ten minutes. Start again from the "
            "Exact Online connection in the admin.",
            status=400,
            code="state_expired",
        ) from None
    except signing.BadSignature:
        raise ConnectFlowError(
            "State mismatch",
            "The answer from Exact does not belong to a connection attempt started here.",
            status=400,
            code="state_invalid",
        ) from None
    flow = FlowState(data["c"], data["t"], data["u"], data["n"], data["i"])
    if not request.user.is_authenticated or request.user.pk != flow.user_id:
        raise ConnectFlowError(
            "Different user",
            "This connection attempt was started by another user. Sign in as that user, or "
            "start again yourself.",
            status=403,
            code="state_user",
        )
    nonces = dict(request.session.get(SESSION_NONCES, {}))
    if nonces.get(flow.nonce) != flow.connection_id:
        raise ConnectFlowError(
            "State already used or from another session",
            "This connection attempt was already completed, or was started in another browser "
            "session. Start again from the admin.",
            status=403,
            code="state_session",
        )
    nonces.pop(flow.nonce)
    request.session[SESSION_NONCES] = nonces
    return flow


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:32]


def code_exchange(*, request, connection: ExactConnection, code: str, flow: FlowState) -> dict:
    """Exchange the code; map refusals to pages that say what probably happened."""
    used = list(request.session.get(SESSION_USED_CODES, []))
    digest = _code_hash(code)
    if digest in used:
        raise ConnectFlowError(
            "Authorization code already used",
            "This authorization code was already exchanged (Exact's codes work once). Start "
            "again from the admin.",
            status=400,
            code="code_reused",
        )
    request.session[SESSION_USED_CODES] = [*used[-9:], digest]
    try:
        return exact_client.oauth_code_exchange(base_url=connection.base_url, code=code)
    except ExactTokenError as exc:
        if time.time() - flow.issued > CODE_TTL_SECONDS:
            raise ConnectFlowError(
                "Authorization code expired",
                "Exact's authorization codes are valid for about three minutes and this one "
                f"has expired ({exc}). Start again from the admin.",
                status=400,
                code="code_expired",
            ) from exc
        raise ConnectFlowError(
            "Exact rejected the authorization code",
            f"Exact at {connection.base_url} did not accept the code ({exc}). The usual "
            "cause is a wrong region: the administration lives on another Exact host than "
            "the one configured for this company. Check the region (or base URL) of the "
            "connection and start again.",
            status=400,
            code="code_rejected",
        ) from exc


def consent_divisions(*, connection: ExactConnection, access_token: str) -> list[dict]:
    """The divisions this consent reaches, as ``[{"code", "name", "currency", "country"}]``."""
    api = exact_client.ExactClient(connection)
    me = api.me(token=access_token)
    current = me.get("CurrentDivision")
    rows = api.divisions(any_division=current or 0, token=access_token)
    return [
        {
            "code": int(r["Code"]),
            "name": str(r.get("Description") or r["Code"]),
            "currency": r.get("Currency") or "",
            "country": r.get("Country") or "",
        }
        for r in rows
    ]


def consent_divisions_offered(*, connection: ExactConnection, access_token: str) -> list[dict]:
    """``consent_divisions`` for the division picker: a failure or an empty list is a page
    that says so."""
    try:
        divisions = consent_divisions(connection=connection, access_token=access_token)
    except ExactError as exc:
        raise ConnectFlowError(
            "Could not list divisions",
            f"Exact did not list the divisions: {exc}",
            status=400,
            code="divisions",
        ) from exc
    if not divisions:
        raise ConnectFlowError(
            "No division",
            "This consent does not give access to any division.",
            status=400,
            code="no_divisions",
        )
    return divisions
