"""The OAuth connect flow as services: a signed, expiring ``state``; the consent URL; the
code exchange; who consented and which divisions the consent reaches.

Two kinds of state, both ``signing.dumps({connection, tenant, nonce, issued, …})`` with a salt:

* **Browser** (the admin's *Connect* button): also bound to the user; the nonce lives in that
  user's session and is removed on first use. Valid once, in that browser session, for that
  user, for ten minutes.
* **Operator** (``consent_url_create`` without a request, for a command run on the server):
  the sha256 of the nonce is stored on the connection and cleared on first use (a newer URL
  replaces it), so the URL works once, in whichever browser completes the consent, for a
  day. It may name the division to bind; otherwise that browser gets the division picker.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

from django.core import signing

from exact import client as exact_client
from exact.errors import ExactError, ExactHostNotAllowed, ExactTokenError
from exact.models import ExactConnection

logger = logging.getLogger(__name__)

STATE_SALT = "exact.oauth.state"
STATE_MAX_AGE = 600
OPERATOR_STATE_MAX_AGE = 86_400  # handed to whoever completes the consent, maybe later today
SESSION_NONCES = "exact_oauth_nonces"
SESSION_USED_CODES = "exact_oauth_used_codes"
SESSION_DIVISIONS = "exact_oauth_divisions"
CODE_TTL_SECONDS = 180  # Exact's authorization codes live about three minutes


class ConnectFlowError(Exception):
    """A user-facing failure of the connect flow: rendered as a page with ``status``.
    ``tenant_id`` (when known) says whose audit trail records the refusal."""

    def __init__(
        self,
        title: str,
        message: str,
        *,
        status: int = 400,
        code: str = "",
        tenant_id: int | None = None,
    ):
        super().__init__(message)
        self.title = title
        self.message = message
        self.status = status
        self.code = code
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class FlowState:
    connection_id: int
    tenant_id: int
    user_id: int | None  # None: an operator's URL, completed by whoever holds it
    nonce: str
    issued: float
    operator: str = ""
    division: int | None = None  # an operator's URL may name the division to bind

    @property
    def by_operator(self) -> bool:
        return self.user_id is None


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def state_create(*, request, connection: ExactConnection) -> str:
    """A browser state: bound to ``request.user`` and a nonce in their session."""
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


def operator_state_create(
    *, connection: ExactConnection, operator: str, division: int | None = None
) -> str:
    """An operator's state: single use through the nonce hash stored on the connection (the
    previous operator URL of this connection stops working)."""
    nonce = secrets.token_urlsafe(24)
    ExactConnection.objects.filter(pk=connection.pk).update(
        operator_consent_nonce=_nonce_hash(nonce)
    )
    connection.operator_consent_nonce = _nonce_hash(nonce)
    data = {
        "c": connection.pk,
        "t": connection.tenant_id,
        "o": (operator or "operator")[:100],
        "n": nonce,
        "i": time.time(),
    }
    if division is not None:
        data["d"] = int(division)
    return signing.dumps(data, salt=STATE_SALT)


def consent_url_create(
    *,
    connection: ExactConnection,
    request=None,
    operator: str = "",
    division: int | None = None,
) -> str:
    """Exact's consent page for ``connection`` with a fresh ``state``.

    With ``request`` (the admin's *Connect / Reconnect* button) the state is bound to that
    user's browser session. Without one (a headless operator on the server) the URL works
    once, within a day, in whichever browser completes the consent; ``operator`` names who
    made it (audit), ``division`` optionally names the division to bind (refused at the
    callback if the consent does not include it or another company holds it).

    ValidationError for a connection whose host is not allowed (nothing is sent anywhere),
    ValueError when oauthlib refuses the URL."""
    connection.clean()
    if request is not None:
        state = state_create(request=request, connection=connection)
    else:
        state = operator_state_create(connection=connection, operator=operator, division=division)
    return exact_client.oauth_authorization_url(base_url=connection.base_url, state=state)


def _flow_from(data: dict) -> FlowState:
    return FlowState(
        connection_id=int(data["c"]),
        tenant_id=int(data["t"]),
        user_id=int(data["u"]) if "u" in data else None,
        nonce=str(data["n"]),
        issued=float(data["i"]),
        operator=str(data.get("o", "")),
        division=int(data["d"]) if data.get("d") is not None else None,
    )


def _state_tenant(state: str) -> int | None:
    """The tenant of a state whose signature is good but whose age is not (for the audit)."""
    try:
        return int(signing.loads(state, salt=STATE_SALT)["t"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def state_check(*, request, state: str) -> FlowState:
    """Validate ``state``: signature, age, and either the browser session's nonce and user or
    the operator nonce stored on the connection (consumed here)."""
    if not state:
        raise ConnectFlowError(
            "Missing state", "Exact sent no state parameter back.", status=400, code="state"
        )
    try:
        data = signing.loads(state, salt=STATE_SALT, max_age=OPERATOR_STATE_MAX_AGE)
        flow = _flow_from(data)
    except signing.SignatureExpired:
        raise _expired(_state_tenant(state)) from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ConnectFlowError(
            "State mismatch",
            "The answer from Exact does not belong to a connection attempt started here.",
            status=400,
            code="state_invalid",
        ) from None
    if not flow.by_operator and time.time() - flow.issued > STATE_MAX_AGE:
        raise _expired(flow.tenant_id)
    if flow.by_operator:
        _operator_nonce_consume(flow)
    else:
        _browser_nonce_consume(request, flow)
    return flow


def _expired(tenant_id: int | None) -> ConnectFlowError:
    return ConnectFlowError(
        "Connection attempt expired",
        "This connection attempt is too old. Start again from the Exact Online connection in "
        "the admin.",
        status=400,
        code="state_expired",
        tenant_id=tenant_id,
    )


def _operator_nonce_consume(flow: FlowState) -> None:
    used = ExactConnection.objects.filter(
        pk=flow.connection_id,
        tenant_id=flow.tenant_id,
        operator_consent_nonce=_nonce_hash(flow.nonce),
    ).update(operator_consent_nonce="")
    if not used:
        raise ConnectFlowError(
            "Link already used or replaced",
            "This connection link was already used, or a newer one was made for this company. "
            "Ask for a new link.",
            status=403,
            code="state_session",
            tenant_id=flow.tenant_id,
        )


def _browser_nonce_consume(request, flow: FlowState) -> None:
    if not request.user.is_authenticated or request.user.pk != flow.user_id:
        raise ConnectFlowError(
            "Different user",
            "This connection attempt was started by another user. Sign in as that user, or "
            "start again yourself.",
            status=403,
            code="state_user",
            tenant_id=flow.tenant_id,
        )
    nonces = dict(request.session.get(SESSION_NONCES, {}))
    if nonces.get(flow.nonce) != flow.connection_id:
        raise ConnectFlowError(
            "State already used or from another session",
            "This connection attempt was already completed, or was started in another browser "
            "session. Start again from the admin.",
            status=403,
            code="state_session",
            tenant_id=flow.tenant_id,
        )
    nonces.pop(flow.nonce)
    request.session[SESSION_NONCES] = nonces


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
            tenant_id=connection.tenant_id,
        )
    request.session[SESSION_USED_CODES] = [*used[-9:], digest]
    try:
        base_url = connection.base_url
    except ExactHostNotAllowed as exc:  # the client secret goes nowhere but the region table
        raise ConnectFlowError(
            "Exact host not allowed",
            str(exc),
            status=403,
            code="host_not_allowed",
            tenant_id=connection.tenant_id,
        ) from exc
    try:
        return exact_client.oauth_code_exchange(base_url=base_url, code=code)
    except ExactTokenError as exc:
        if time.time() - flow.issued > CODE_TTL_SECONDS:
            raise ConnectFlowError(
                "Authorization code expired",
                "Exact's authorization codes are valid for about three minutes and this one "
                f"has expired ({exc}). Start again from the admin.",
                status=400,
                code="code_expired",
                tenant_id=connection.tenant_id,
            ) from exc
        raise ConnectFlowError(
            "Exact rejected the authorization code",
            f"Exact did not accept the code ({exc}). The usual cause is a wrong region: the "
            "administration lives on another Exact host than the one configured for this "
            "company. Check the region of the connection and start again.",
            status=400,
            code="code_rejected",
            tenant_id=connection.tenant_id,
        ) from exc


@dataclass(frozen=True)
class ConsentIdentity:
    """Who consented (current/Me) and the divisions the consent reaches (system/Divisions),
    read with the new consent's access token at the connection's region."""

    user_id: str
    user_name: str
    divisions: list[dict]  # [{"code", "name", "currency", "country"}]


def consent_identity(*, connection: ExactConnection, access_token: str) -> ConsentIdentity:
    """Two calls with a token not stored yet, so at the connection's own region."""
    api = exact_client.ExactClient(connection, base_url=connection.base_url)
    me = api.me(token=access_token)
    current = me.get("CurrentDivision")
    rows = api.divisions(any_division=_division_code(current) or 1, token=access_token)
    divisions = []
    for row in rows:
        code = _division_code(row.get("Code"))
        if code is None:
            continue  # not a division we could ever store
        divisions.append(
            {
                "code": code,
                "name": str(row.get("Description") or code)[:200],
                "currency": str(row.get("Currency") or "")[:3],
                "country": str(row.get("Country") or "")[:8],
            }
        )
    return ConsentIdentity(
        user_id=str(me.get("UserID") or "")[:64],
        user_name=str(me.get("FullName") or me.get("UserName") or "")[:200],
        divisions=divisions,
    )


def _division_code(value) -> int | None:
    """A division code as we store it (1 to 2**31 - 1), or None."""
    if isinstance(value, bool):
        return None
    try:
        code = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return code if 0 < code < 2**31 else None


def consent_divisions(*, connection: ExactConnection, access_token: str) -> list[dict]:
    """The divisions this consent reaches, as ``[{"code", "name", "currency", "country"}]``."""
    return consent_identity(connection=connection, access_token=access_token).divisions


def consent_identity_read(*, connection: ExactConnection, access_token: str) -> ConsentIdentity:
    """``consent_identity`` for the callback: a failure or an empty list is a page that says
    so."""
    try:
        identity = consent_identity(connection=connection, access_token=access_token)
    except ExactError as exc:
        raise ConnectFlowError(
            "Could not list divisions",
            f"Exact did not list the divisions: {exc}",
            status=400,
            code="divisions",
            tenant_id=connection.tenant_id,
        ) from exc
    if not identity.divisions:
        raise ConnectFlowError(
            "No division",
            "This consent does not give access to any division.",
            status=400,
            code="no_divisions",
            tenant_id=connection.tenant_id,
        )
    return identity
