"""Connecting a tenant's GoCardless account: partner OAuth, a pasted token, Test connection.

Every status change of a connection writes an audit entry (never the token itself).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from gocardless import errors
from gocardless.client import GoCardlessClient, oauth_exchange_code
from gocardless.models import ConnectionStatus, Environment, GoCardlessConnection
from reconciliation.audit import Actor, audit_record

CONNECT_URLS = {
    Environment.LIVE: "https://connect.gocardless.com",
    Environment.SANDBOX: "https://connect-sandbox.gocardless.com",
}
STATE_SALT = "gocardless.oauth.state"
STATE_MAX_AGE = 600  # seconds the user has to complete the GoCardless pages
SESSION_KEY = "gocardless_oauth_nonce"


class ConnectError(Exception):
    """A connect step the user must see (bad state, not configured, refused)."""


def connect_base_url(environment: str) -> str:
    if settings.GOCARDLESS_CONNECT_URL:
        return settings.GOCARDLESS_CONNECT_URL
    try:
        return CONNECT_URLS[environment]
    except KeyError:
        raise ConnectError(
            "Partner OAuth for a custom base URL needs GOCARDLESS_CONNECT_URL."
        ) from None


def connection_set_status(
    *, connection: GoCardlessConnection, status: str, reason: str = "", actor: Actor
) -> bool:
    """Move the connection to ``status`` (audited); False when it already was there."""
    with transaction.atomic():
        current = GoCardlessConnection.objects.select_for_update().get(pk=connection.pk)
        if current.status == status:
            # Not a transition: keep the newest reason, no audit entry.
            if current.status_reason != reason[:1000]:
                current.status_reason = reason[:1000]
                current.save(update_fields=["status_reason", "updated_at"])
            connection.status, connection.status_reason = current.status, current.status_reason
            return False
        before = {"status": current.status}
        current.status, current.status_reason = status, reason[:1000]
        fields = ["status", "status_reason", "updated_at"]
        if status == ConnectionStatus.CONNECTED:
            current.connected_at = timezone.now()
            fields.append("connected_at")
        current.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="gocardlessconnection.status_changed",
            tenant=current.tenant,
            obj=current,
            before=before,
            after={"status": status},
            message=reason[:500],
        )
    connection.status, connection.status_reason = current.status, current.status_reason
    connection.connected_at = current.connected_at
    return True


def connection_mark_needs_reauth(*, connection: GoCardlessConnection, reason: str) -> bool:
    """GoCardless said 401/403: stop using the token until someone re-connects."""
    return connection_set_status(
        connection=connection,
        status=ConnectionStatus.NEEDS_REAUTH,
        reason=f"GoCardless refused the access token: {reason}",
        actor=Actor.system("gocardless"),
    )


def connection_test(*, connection: GoCardlessConnection, actor: Actor, client=None) -> dict:
    """Call GET /creditors; on success the connection is connected and the creditor stored.

    Returns {"ok": bool, "creditors": [{"id", "name", "schemes"}], "error": str}.
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
    with transaction.atomic():
        connection.access_token = access_token
        connection.organisation_id = str(organisation_id)[:40]
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
