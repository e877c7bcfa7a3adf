"""Partner OAuth (notes §1.5): connecting a tenant's GoCardless account to our partner app
with the authorisation-code flow.

1. The admin's *Connect GoCardless (OAuth)* button (``oauth_authorize_url``) sends the tenant
   administrator to GoCardless's consent page (``connect.gocardless.com``,
   ``connect-sandbox.gocardless.com``, or GOCARDLESS_CONNECT_URL: the simulator) with a
   ``state`` signed by Django (10 minutes) that names the connection and is bound to a
   single-use nonce in the administrator's session.
2. GoCardless sends the browser back to ``/connect/gocardless/callback/``
   (``oauth_callback_complete``): state, nonce, and that the user administers that tenant;
   then the code is exchanged (client.py), the token's creditor is asked of the API, and the
   token (encrypted), the ``organisation_id`` OF THE TOKEN ANSWER and the creditor are
   stored; status → connected (audited).

Every refusal — consent denied, a forged, expired or replayed state, a bad code, an account
another tenant holds, someone not signed in — is logged and audited
(``gocardlessconnection.connect_refused``): the actor is the user, or for a request without
a signed-in staff user the anonymous internet (a webhook-type actor, the source address in
the message; at most ANONYMOUS_AUDITS_PER_HOUR such entries an hour, the rest only logged,
so that the callback cannot be used to fill the audit trail).
"""

from __future__ import annotations

import logging
import re
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction

from core.audit import Actor, audit_record
from gocardless import errors
from gocardless.client import oauth_exchange_code
from gocardless.connect import (
    CONNECT_URLS,
    ConnectError,
    OrganisationTaken,
    connect_refusal_record,
    connection_api_base_url,
    connection_holder,
    token_creditor,
)
from gocardless.connection_status import connection_set_status
from gocardless.intake_budget import budget_take
from gocardless.models import ConnectionStatus, GoCardlessConnection
from gocardless.payload import ID
from tenants.models import Role
from tenants.scoping import role_at_least, tenant_roles

logger = logging.getLogger(__name__)

STATE_SALT = "gocardless.oauth.state"
STATE_MAX_AGE = 600  # seconds the user has to complete the GoCardless pages
SESSION_KEY = "gocardless_oauth_nonce"
ANONYMOUS_AUDITS_PER_HOUR = 100
ANONYMOUS_ACTOR = Actor.webhook("anonymous internet (GoCardless OAuth callback)")


def connect_base_url(environment: str) -> str:
    if settings.GOCARDLESS_CONNECT_URL:
        return settings.GOCARDLESS_CONNECT_URL
    try:
        return CONNECT_URLS[environment]
    except KeyError:
        raise ConnectError(
            "Partner OAuth for a custom base URL needs GOCARDLESS_CONNECT_URL."
        ) from None


def oauth_authorize_url(*, connection: GoCardlessConnection, session) -> str:
    """Where to send the admin: GoCardless's consent page, with a signed, expiring state
    bound to this browser session and connection."""
    if not (settings.GOCARDLESS_CLIENT_ID and settings.GOCARDLESS_CLIENT_SECRET):
        raise ConnectError("GOCARDLESS_CLIENT_ID / GOCARDLESS_CLIENT_SECRET are not set.")
    connection_api_base_url(connection)  # the token must be usable here before we ask for one
    nonce = secrets.token_urlsafe(16)
    session[SESSION_KEY] = nonce
    state = signing.dumps({"c": connection.pk, "n": nonce}, salt=STATE_SALT)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.GOCARDLESS_CLIENT_ID,
            "redirect_uri": settings.GOCARDLESS_REDIRECT_URI,
            "scope": settings.GOCARDLESS_OAUTH_SCOPE,
            "state": state,
        }
    )
    return f"{connect_base_url(connection.environment)}/oauth/authorize?{query}"


def _connection(pk) -> GoCardlessConnection | None:
    if not isinstance(pk, int):
        return None
    return (GoCardlessConnection.objects.select_related("tenant")
            .defer("access_token", "webhook_secret").filter(pk=pk).first())


def _state_data(state: str, *, max_age) -> dict | None:
    data = signing.loads(state, salt=STATE_SALT, max_age=max_age)
    return data if isinstance(data, dict) else None


def oauth_state_connection(*, state: str, session) -> GoCardlessConnection:
    """The connection a callback's ``state`` names; ConnectError when forged, expired or not
    started in this session (with the connection when the state is ours but stale)."""
    try:
        data = _state_data(state, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired:
        data = _state_data(state, max_age=None)  # ours, only too old: say for which tenant
        raise ConnectError("The connect link is invalid or has expired; start again.",
                           connection=_connection((data or {}).get("c"))) from None
    except signing.BadSignature:
        raise ConnectError("The connect link is invalid or has expired; start again.") from None
    connection = _connection((data or {}).get("c"))
    nonce = session.pop(SESSION_KEY, None)
    if not nonce or not secrets.compare_digest(str(nonce), str((data or {}).get("n", ""))):
        raise ConnectError("This connect attempt was not started in this browser session.",
                           connection=connection)
    if connection is None:
        raise ConnectError("The connection no longer exists.")
    return connection


def oauth_callback_complete(*, params, session, user, source: str) -> GoCardlessConnection:
    """The callback for a signed-in staff user: returns the connected connection, or raises
    ConnectError (``connection`` set when the user may see it); every refusal is recorded."""
    actor = Actor.for_user(user)
    try:
        connection = oauth_state_connection(state=str(params.get("state", "")), session=session)
    except ConnectError as exc:
        connect_refusal_record(reason=f"OAuth callback: {exc}", actor=actor,
                               connection=exc.connection, source=source)
        exc.connection = None  # not shown: the user may not administer it
        raise
    role = tenant_roles(user).get(connection.tenant_id)
    if not (user.is_superuser or role_at_least(role, Role.ADMIN)):
        connect_refusal_record(reason="OAuth callback: the user does not administer this "
                               "tenant", actor=actor, connection=connection, source=source)
        raise ConnectError("Only an administrator of this company may connect it.")
    if params.get("error"):
        code = re.sub(r"[^a-z_]", "", str(params.get("error")))[:60] or "error"
        connect_refusal_record(reason=f"OAuth callback: GoCardless answered {code} "
                               "(consent denied or failed)", actor=actor,
                               connection=connection, source=source)
        raise ConnectError(f"GoCardless did not connect the account ({code}).",
                           connection=connection)
    try:
        oauth_complete(connection=connection, code=str(params.get("code", "")), actor=actor)
    except ConnectError as exc:
        exc.connection = connection  # the user administers it: back to its page
        details = ({"organisation_id": exc.organisation}
                   if isinstance(exc, OrganisationTaken) else None)
        connect_refusal_record(reason=f"OAuth callback: {exc}", actor=actor,
                               connection=connection, source=source, details=details)
        raise
    return connection


def oauth_callback_anonymous(*, params, source: str, user=None) -> None:
    """Someone without a signed-in staff session reached the callback (the view sends them
    to the login page). Logged; audited as that user when signed in (not staff), else as the
    anonymous internet, with the tenant when the state is ours, up to
    ANONYMOUS_AUDITS_PER_HOUR entries an hour."""
    connection = None
    try:
        connection = _connection((_state_data(str(params.get("state", "")),
                                              max_age=None) or {}).get("c"))
    except signing.BadSignature:
        pass
    reason = "OAuth callback without a signed-in staff user"
    if not budget_take(key="audit:oauth-callback-anonymous", amount=1,
                       limit=ANONYMOUS_AUDITS_PER_HOUR):
        logger.warning("gocardless connect refused (not audited: hourly cap): %s from %s",
                       reason, source)
        return
    signed_in = user is not None and user.is_authenticated
    connect_refusal_record(reason=reason, actor=Actor.for_user(user) if signed_in
                           else ANONYMOUS_ACTOR, connection=connection,
                           source=source or "an unknown address")


def _token_answer(token: dict, connection: GoCardlessConnection) -> tuple[str, str]:
    access_token, organisation_id = token.get("access_token"), token.get("organisation_id")
    if not isinstance(access_token, str) or not 0 < len(access_token) <= 4096:
        raise ConnectError("GoCardless returned no access token.", connection=connection)
    if not isinstance(organisation_id, str) or not ID.fullmatch(organisation_id):
        raise ConnectError("GoCardless returned no organisation for the access token.",
                           connection=connection)
    return access_token, organisation_id


def oauth_complete(*, connection: GoCardlessConnection, code: str, actor: Actor) -> None:
    """Exchange the code; check the token's creditor with the API; refuse an account another
    tenant holds; store token (encrypted), organisation and creditor; mark connected."""
    if not code or len(code) > 1024:
        raise ConnectError("GoCardless sent no authorisation code; start again.",
                           connection=connection)
    base_url = connection_api_base_url(connection)
    try:
        token = oauth_exchange_code(
            token_url=f"{connect_base_url(connection.environment)}/oauth/access_token",
            code=code,
            redirect_uri=settings.GOCARDLESS_REDIRECT_URI,
            client_id=settings.GOCARDLESS_CLIENT_ID,
            client_secret=settings.GOCARDLESS_CLIENT_SECRET,
        )
    except errors.AuthError as exc:
        raise ConnectError(f"GoCardless refused the authorisation ({exc.message}); start "
                           "again.", connection=connection) from exc
    except errors.GoCardlessError as exc:
        raise ConnectError(f"GoCardless could not be reached to finish connecting "
                           f"({exc.message}); start again.", connection=connection) from exc
    access_token, organisation_id = _token_answer(token, connection)
    creditor = token_creditor(access_token=access_token, base_url=base_url)
    holder = connection_holder(tenant=connection.tenant_id, organisation_id=organisation_id,
                               creditor_id=creditor["id"])
    if holder is not None:
        raise OrganisationTaken(organisation=organisation_id, holder=holder,
                                connection=connection)
    try:
        _oauth_store(connection=connection, access_token=access_token,
                     organisation_id=organisation_id, creditor_id=creditor["id"], actor=actor)
    except IntegrityError:
        # Another tenant connected the same account at the same moment: the unique
        # constraints decided. Nothing was stored.
        holder = connection_holder(tenant=connection.tenant_id,
                                   organisation_id=organisation_id,
                                   creditor_id=creditor["id"])
        raise OrganisationTaken(organisation=organisation_id, holder=holder,
                                connection=connection) from None
    connection.refresh_from_db()


def _oauth_store(*, connection: GoCardlessConnection, access_token: str, organisation_id: str,
                 creditor_id: str, actor: Actor) -> None:
    with transaction.atomic():
        current = GoCardlessConnection.objects.select_for_update().get(pk=connection.pk)
        current.access_token = access_token
        current.organisation_id, current.creditor_id = organisation_id, creditor_id
        current.save(update_fields=["access_token", "organisation_id", "creditor_id",
                                    "updated_at"])
        audit_record(
            actor=actor,
            action="gocardlessconnection.oauth_connected",
            tenant=current.tenant,
            obj=current,
            after={"organisation_id": organisation_id, "creditor_id": creditor_id,
                   "access_token": "set"},
            message="partner OAuth",
        )
        connection_set_status(
            connection=current, status=ConnectionStatus.CONNECTED, reason="", actor=actor
        )
