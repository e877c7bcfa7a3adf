"""Connecting a tenant's GoCardless account: partner OAuth, a pasted token, Test connection.

Every status change of a connection writes an audit entry (never the token itself); the
status changes themselves live in ``connection_status.py``.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction

from core.audit import Actor, audit_record
from gocardless import errors
from gocardless.client import GoCardlessClient, oauth_exchange_code
from gocardless.connection_status import connection_set_status
from gocardless.models import ConnectionStatus, Environment, GoCardlessConnection

CONNECT_URLS = {
    Environment.LIVE: "https://connect.gocardless.com",
    Environment.SANDBOX: "https://connect-sandbox.gocardless.com",
}
STATE_SALT = "gocardless.oauth.state"
STATE_MAX_AGE = 600  # seconds the user has to complete the GoCardless pages
SESSION_KEY = "gocardless_oauth_nonce"


class ConnectError(Exception):
    """A connect step the user must see (bad state, not configured, refused)."""


class OrganisationTaken(ConnectError):
    """The GoCardless organisation (or its creditor) is already connected to another tenant.

    ``str()`` never names that tenant; ``message_for(user)`` does, for a superuser only."""

    def __init__(self, *, organisation: str, holder: GoCardlessConnection | None):
        self.organisation = organisation
        self.holder = holder
        super().__init__(
            f"This GoCardless account ({organisation}) is already connected to another company "
            "in ml-connector; one GoCardless organisation can belong to one company only. "
            "Nothing was changed. To move it here, that company's GoCardless connection must "
            "be removed first."
        )

    def message_for(self, user) -> str:
        if self.holder is not None and getattr(user, "is_superuser", False):
            return f"{self} It is held by {self.holder.tenant} (connection {self.holder.pk})."
        return str(self)


def organisation_holder(
    *, connection: GoCardlessConnection, organisation_id: str = "", creditor_id: str = ""
) -> GoCardlessConnection | None:
    """Another tenant's connection that already holds this organisation (or creditor: a
    creditor belongs to one organisation), or None. Empty ids are never 'held'."""
    others = GoCardlessConnection.objects.select_related("tenant").exclude(pk=connection.pk)
    if organisation_id:
        found = others.filter(organisation_id=organisation_id).first()
        if found is not None:
            return found
    if creditor_id:
        return others.filter(creditor_id=creditor_id).first()
    return None


def connect_base_url(environment: str) -> str:
    if settings.GOCARDLESS_CONNECT_URL:
        return settings.GOCARDLESS_CONNECT_URL
    try:
        return CONNECT_URLS[environment]
    except KeyError:
        raise ConnectError(
            "Partner OAuth for a custom base URL needs GOCARDLESS_CONNECT_URL."
        ) from None


def connection_test(*, connection: GoCardlessConnection, actor: Actor, client=None) -> dict:
    """Call GET /creditors; on success the connection is connected and the creditor stored.

    Returns {"ok": bool, "creditors": [{"id", "name", "schemes"}], "error": str}; when the
    creditor already belongs to another tenant's connection, also "taken" (OrganisationTaken)
    and nothing is stored.
    """
    try:
        # No auth hook: a 401/403 is recorded below with the user who pressed the button.
        client = client or GoCardlessClient.for_connection(connection, on_auth_error=None)
        creditors = client.creditors_list()
    except errors.GoCardlessError as exc:
        if isinstance(exc, errors.AuthError):
            connection_set_status(
                connection=connection,
                status=ConnectionStatus.NEEDS_REAUTH,
                reason=f"Test connection: {exc.message}",
                actor=actor,
            )
        return {"ok": False, "creditors": [], "error": str(exc)}
    found = [
        {
            "id": c.get("id"),
            "name": c.get("name") or "",
            "schemes": sorted(
                {s.get("scheme") for s in c.get("scheme_identifiers") or [] if s.get("scheme")}
            ),
        }
        for c in creditors
    ]
    holder = (
        organisation_holder(connection=connection, creditor_id=found[0]["id"]) if found else None
    )
    if holder is not None:
        # A pasted token of an account another tenant already uses: same events, same
        # payments. Not stored, not marked connected.
        taken = OrganisationTaken(organisation=f"creditor {found[0]['id']}", holder=holder)
        return {"ok": False, "creditors": found, "error": str(taken), "taken": taken}
    if found and connection.creditor_id != found[0]["id"]:
        connection.creditor_id = found[0]["id"]
        connection.save(update_fields=["creditor_id", "updated_at"])
    connection_set_status(
        connection=connection,
        status=ConnectionStatus.CONNECTED,
        reason="",
        actor=actor,
    )
    return {"ok": True, "creditors": found, "error": ""}


def oauth_authorize_url(*, connection: GoCardlessConnection, session) -> str:
    """Where to send the admin: GoCardless's consent page, with a signed, expiring state
    bound to this browser session and tenant."""
    if not (settings.GOCARDLESS_CLIENT_ID and settings.GOCARDLESS_CLIENT_SECRET):
        raise ConnectError("GOCARDLESS_CLIENT_ID / GOCARDLESS_CLIENT_SECRET are not set.")
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


def oauth_state_connection(*, state: str, session) -> GoCardlessConnection:
    """The connection a callback's ``state`` names; ConnectError when forged/expired/replayed."""
    try:
        data = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature as exc:
        raise ConnectError("The connect link is invalid or has expired; start again.") from exc
    nonce = session.pop(SESSION_KEY, None)
    if not nonce or not secrets.compare_digest(str(nonce), str(data.get("n", ""))):
        raise ConnectError("This connect attempt was not started in this browser session.")
    connection = GoCardlessConnection.objects.select_related("tenant").filter(pk=data["c"]).first()
    if connection is None:
        raise ConnectError("The connection no longer exists.")
    return connection


def oauth_complete(*, connection: GoCardlessConnection, code: str, actor: Actor) -> None:
    """Exchange the code, store the token (encrypted) and organisation id, mark connected."""
    token = oauth_exchange_code(
        token_url=f"{connect_base_url(connection.environment)}/oauth/access_token",
        code=code,
        redirect_uri=settings.GOCARDLESS_REDIRECT_URI,
        client_id=settings.GOCARDLESS_CLIENT_ID,
        client_secret=settings.GOCARDLESS_CLIENT_SECRET,
    )
    access_token = token.get("access_token")
    organisation_id = token.get("organisation_id") or ""
    if not access_token:
        raise ConnectError("GoCardless returned no access token.")
    organisation_id = str(organisation_id)[:40]
    holder = organisation_holder(connection=connection, organisation_id=organisation_id)
    if holder is not None:
        _refuse_taken(connection=connection, organisation_id=organisation_id, actor=actor)
        raise OrganisationTaken(organisation=organisation_id, holder=holder)
    try:
        _oauth_store(connection=connection, access_token=access_token,
                     organisation_id=organisation_id, actor=actor)
    except IntegrityError:
        # Another tenant connected the same organisation at the same moment: the unique
        # constraint decided. Forget what we were about to store.
        connection.refresh_from_db()
        holder = organisation_holder(connection=connection, organisation_id=organisation_id)
        _refuse_taken(connection=connection, organisation_id=organisation_id, actor=actor)
        raise OrganisationTaken(organisation=organisation_id, holder=holder) from None


def _refuse_taken(*, connection: GoCardlessConnection, organisation_id: str, actor: Actor):
    audit_record(
        actor=actor,
        action="gocardlessconnection.connect_refused",
        tenant=connection.tenant,
        obj=connection,
        after={"organisation_id": organisation_id},
        message="organisation already connected to another tenant",
    )


def _oauth_store(
    *, connection: GoCardlessConnection, access_token: str, organisation_id: str, actor: Actor
) -> None:
    with transaction.atomic():
        connection.access_token = access_token
        connection.organisation_id = organisation_id
        connection.save(update_fields=["access_token", "organisation_id", "updated_at"])
        audit_record(
            actor=actor,
            action="gocardlessconnection.oauth_connected",
            tenant=connection.tenant,
            obj=connection,
            after={"organisation_id": connection.organisation_id, "access_token": "set"},
            message="partner OAuth",
        )
        connection_set_status(
            connection=connection, status=ConnectionStatus.CONNECTED, reason="", actor=actor
        )
