"""Connecting a tenant's GoCardless account with a pasted access token, Test connection, and
what both connect flows share (where a token may be sent, who holds an account, refusals).

Partner OAuth is ``connect_oauth.py``. Every status change of a connection writes an audit
entry (never the token itself); the status changes themselves live in
``connection_status.py``.

Two rules every flow keeps:
- **Routing identifiers come from GoCardless, never from a form.** The organisation id is
  the OAuth token answer's; the creditor id is what GET /creditors answers for the token.
  A person can only name an account by proving they hold a working token for it, so no
  message can be used to find out which accounts other companies hold.
- **A token is only sent where the installation allows** (``api_base_url``): GoCardless's
  live or sandbox API, or a custom base URL where GOCARDLESS_ALLOW_CUSTOM_BASE_URL is on
  (the simulators; mlc.E010 refuses it outside DEBUG), set by a superuser.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from core.audit import Actor, audit_record
from gocardless import errors
from gocardless.client import GoCardlessClient
from gocardless.conf import custom_base_url_allowed
from gocardless.connection_status import connection_set_status
from gocardless.models import (
    ENVIRONMENT_URLS,
    ConnectionStatus,
    Environment,
    GoCardlessConnection,
)
from gocardless.payload import ID, safe_text

logger = logging.getLogger(__name__)

REFUSED = "gocardlessconnection.connect_refused"
# GoCardless Connect (partner OAuth) per environment; the admin's Content-Security-Policy
# lets forms lead there (config/settings.py, tests/config/test_security_headers.py).
CONNECT_URLS = {
    Environment.LIVE: "https://connect.gocardless.com",
    Environment.SANDBOX: "https://connect-sandbox.gocardless.com",
}


class ConnectError(Exception):
    """A connect step refused or failed. ``str()`` is safe to show to whoever is connecting;
    ``connection`` is the connection it was about, when known."""

    def __init__(self, message: str, *, connection: GoCardlessConnection | None = None):
        super().__init__(message)
        self.connection = connection

    def message_for(self, user) -> str:
        return str(self)


class OrganisationTaken(ConnectError):
    """The GoCardless account (organisation or creditor) is already connected to another
    tenant. Only raised once the person connecting proved they hold a working token for it.

    ``str()`` never names that tenant; ``message_for(user)`` does, for a superuser only."""

    def __init__(self, *, organisation: str, holder: GoCardlessConnection | None,
                 connection: GoCardlessConnection | None = None):
        self.organisation = organisation
        self.holder = holder
        super().__init__(
            f"This GoCardless account ({organisation}) is already connected to another company "
            "in ml-connector; one GoCardless organisation can belong to one company only. "
            "Nothing was changed. To move it here, that company's GoCardless connection must "
            "be removed first.",
            connection=connection,
        )

    def message_for(self, user) -> str:
        if self.holder is not None and getattr(user, "is_superuser", False):
            return f"{self} It is held by {self.holder.tenant} (connection {self.holder.pk})."
        return str(self)


def connection_holder(
    *, tenant, organisation_id: str = "", creditor_id: str = ""
) -> GoCardlessConnection | None:
    """Another tenant's connection that already holds this organisation (or creditor: a
    creditor belongs to one organisation), or None. Empty ids are never 'held'."""
    others = (
        GoCardlessConnection.objects.select_related("tenant")
        .defer("access_token", "webhook_secret")
        .exclude(tenant_id=getattr(tenant, "pk", tenant))
    )
    if organisation_id:
        found = others.filter(organisation_id=organisation_id).first()
        if found is not None:
            return found
    if creditor_id:
        return others.filter(creditor_id=creditor_id).first()
    return None


def api_base_url(*, environment: str, custom_base_url: str = "") -> str:
    """Where a token of this environment is sent; ConnectError when the installation does
    not allow it (a custom URL without GOCARDLESS_ALLOW_CUSTOM_BASE_URL, or not http(s))."""
    if environment in ENVIRONMENT_URLS:
        return ENVIRONMENT_URLS[environment]
    if environment != Environment.CUSTOM:
        raise ConnectError("Unknown GoCardless environment.")
    if not custom_base_url_allowed():
        raise ConnectError("This installation does not allow a custom GoCardless base URL; "
                           "choose live or sandbox.")
    parts = urlsplit(custom_base_url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError("A custom GoCardless base URL must be an http(s) URL.")
    return custom_base_url.rstrip("/")


def connection_api_base_url(connection: GoCardlessConnection) -> str:
    return api_base_url(environment=connection.environment,
                        custom_base_url=connection.custom_base_url)


def connect_refusal_record(
    *, reason: str, actor: Actor, tenant=None, connection: GoCardlessConnection | None = None,
    source: str = "", details: dict | None = None,
) -> None:
    """Log and audit a refused connect step (who, which tenant, why; never a token)."""
    who = actor.label or actor.type
    where = f" from {safe_text(source, 64)}" if source else ""
    message = safe_text(f"{reason}{where}", 500)
    tenant = tenant if tenant is not None else getattr(connection, "tenant", None)
    logger.warning("gocardless connect refused for tenant %s (by %s): %s",
                   getattr(tenant, "pk", "-"), who, message)
    audit_record(actor=actor, action=REFUSED, tenant=tenant, obj=connection,
                 after=details or None, message=message)


def token_creditor(*, access_token: str, base_url: str, client=None) -> dict:
    """What GoCardless says this token is for: its creditor ``{"id", "name", "schemes"}``
    (GET /creditors). ConnectError when the token is refused, GoCardless cannot be reached or
    answers no creditor."""
    try:
        client = client or GoCardlessClient(access_token=access_token, base_url=base_url)
        creditors = client.creditors_list()
    except errors.AuthError as exc:
        raise ConnectError(
            "GoCardless refused this access token (mistyped, revoked, or of the other "
            f"environment): {exc.message}"
        ) from exc
    except errors.GoCardlessError as exc:
        raise ConnectError(f"GoCardless could not be asked about this token: {exc}") from exc
    first = creditors[0] if creditors and isinstance(creditors[0], dict) else {}
    creditor_id = first.get("id")
    if not isinstance(creditor_id, str) or not ID.fullmatch(creditor_id):
        raise ConnectError("GoCardless answered no creditor for this access token.")
    schemes = sorted({
        s.get("scheme") for s in first.get("scheme_identifiers") or []
        if isinstance(s, dict) and isinstance(s.get("scheme"), str)
    })
    return {"id": creditor_id, "name": safe_text(first.get("name") or ""), "schemes": schemes}


# --- pasted access token -----------------------------------------------------------------


def connection_token_check(
    *, tenant, access_token: str, environment: str, custom_base_url: str = "", actor: Actor,
    connection: GoCardlessConnection | None = None, client=None,
) -> dict:
    """Before a pasted token is stored: where it would be sent is allowed, GoCardless accepts
    it, and its creditor is not another tenant's. Returns the creditor; every refusal is
    logged and audited, then raised as ConnectError."""
    try:
        if not access_token:
            raise ConnectError("An access token is required.")
        base_url = api_base_url(environment=environment, custom_base_url=custom_base_url)
        creditor = token_creditor(access_token=access_token, base_url=base_url, client=client)
        holder = connection_holder(tenant=tenant, creditor_id=creditor["id"])
        if holder is not None:
            raise OrganisationTaken(organisation=f"creditor {creditor['id']}", holder=holder,
                                    connection=connection)
    except ConnectError as exc:
        connect_refusal_record(reason=f"access token: {exc}", actor=actor, tenant=tenant,
                               connection=connection)
        raise
    return creditor


def connection_token_store(
    *, connection: GoCardlessConnection, access_token: str, creditor: dict, actor: Actor
) -> GoCardlessConnection:
    """Store a checked token (encrypted) and its creditor; status → connected (audited).

    A token of another account than the connection's OAuth organisation clears that
    organisation: partner webhooks of the old account must not reach this tenant any more.
    A simultaneous connect of the same account by another tenant is decided by the unique
    constraint: OrganisationTaken, nothing stored (the caller records the refusal, after
    its own transaction, so that the record is kept)."""
    try:
        with transaction.atomic():
            current = GoCardlessConnection.objects.select_for_update().get(pk=connection.pk)
            fields = ["access_token", "creditor_id", "updated_at"]
            if current.creditor_id != creditor["id"] and current.organisation_id:
                current.organisation_id = ""
                fields.append("organisation_id")
            current.access_token, current.creditor_id = access_token, creditor["id"]
            current.save(update_fields=fields)
            audit_record(
                actor=actor, action="gocardlessconnection.token_connected",
                tenant=current.tenant, obj=current,
                after={"creditor_id": creditor["id"], "access_token": "set"},
                message="pasted access token",
            )
            connection_set_status(connection=current, status=ConnectionStatus.CONNECTED,
                                  reason="", actor=actor)
    except IntegrityError:
        holder = connection_holder(tenant=connection.tenant_id, creditor_id=creditor["id"])
        raise OrganisationTaken(organisation=f"creditor {creditor['id']}", holder=holder,
                                connection=connection) from None
    connection.refresh_from_db()
    return connection


def connection_connect_with_token(
    *, tenant, access_token: str, webhook_secret: str, environment: str, actor: Actor,
    custom_base_url: str = "", client=None,
) -> GoCardlessConnection:
    """Connect ``tenant`` with a pasted access token and its webhook endpoint secret (the
    operator command; the admin does the same in two steps). The token is checked with
    GoCardless first; nothing is stored on a refusal (ConnectError, logged and audited).
    Creates the tenant's connection, or replaces the token of the one it has."""
    access_token, webhook_secret = (access_token or "").strip(), (webhook_secret or "").strip()
    existing = (GoCardlessConnection.objects.filter(tenant=tenant)
                .defer("access_token", "webhook_secret").first())
    if not webhook_secret:
        reason = "a webhook secret is required (GoCardless shows it with the webhook endpoint)"
        connect_refusal_record(reason=reason, actor=actor, tenant=tenant, connection=existing)
        raise ConnectError(f"Refused: {reason}.", connection=existing)
    creditor = connection_token_check(
        tenant=tenant, access_token=access_token, environment=environment,
        custom_base_url=custom_base_url, actor=actor, connection=existing, client=client,
    )
    try:
        return _connection_with_token(tenant=tenant, access_token=access_token,
                                      webhook_secret=webhook_secret, environment=environment,
                                      custom_base_url=custom_base_url, creditor=creditor,
                                      actor=actor)
    except OrganisationTaken as taken:  # lost a race: everything above was rolled back
        connect_refusal_record(reason=f"access token: {taken}", actor=actor, tenant=tenant,
                               connection=existing)
        raise


def _connection_with_token(*, tenant, access_token, webhook_secret, environment,
                           custom_base_url, creditor, actor) -> GoCardlessConnection:
    with transaction.atomic():
        connection, created = GoCardlessConnection.objects.select_for_update().get_or_create(
            tenant=tenant,
            defaults={"environment": environment, "custom_base_url": custom_base_url,
                      "webhook_secret": webhook_secret},
        )
        if not created:
            connection.environment, connection.custom_base_url = environment, custom_base_url
            connection.webhook_secret = webhook_secret
            connection.save(update_fields=["environment", "custom_base_url", "webhook_secret",
                                           "updated_at"])
        audit_record(
            actor=actor,
            action=f"gocardlessconnection.{'created' if created else 'changed'}",
            tenant=tenant, obj=connection,
            after={"environment": environment, "custom_base_url": custom_base_url,
                   "webhook_secret": "set"},
            message="connect with access token",
        )
        return connection_token_store(connection=connection, access_token=access_token,
                                      creditor=creditor, actor=actor)


# --- Test connection -----------------------------------------------------------------------


def connection_test(*, connection: GoCardlessConnection, actor: Actor, client=None) -> dict:
    """Call GET /creditors; on success the connection is connected and the creditor stored.

    Returns {"ok": bool, "creditors": [{"id", "name", "schemes"}], "error": str}; when the
    creditor already belongs to another tenant's connection, also "taken" (OrganisationTaken)
    and nothing is stored.
    """
    try:
        # No auth hook: a 401/403 is recorded below with the user who pressed the button.
        if client is None:
            connection_api_base_url(connection)  # refuses a custom URL where not allowed
            client = GoCardlessClient.for_connection(connection, on_auth_error=None)
        creditors = client.creditors_list()
    except ConnectError as exc:
        return {"ok": False, "creditors": [], "error": str(exc)}
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
    creditor_id = found[0]["id"] if found else ""
    holder = connection_holder(tenant=connection.tenant_id, creditor_id=creditor_id)
    if holder is None and creditor_id and connection.creditor_id != creditor_id:
        previous = connection.creditor_id
        try:
            with transaction.atomic():
                connection.creditor_id = creditor_id
                connection.save(update_fields=["creditor_id", "updated_at"])
        except IntegrityError:  # another tenant stored it a moment ago
            connection.creditor_id = previous
            holder = connection_holder(tenant=connection.tenant_id, creditor_id=creditor_id)
    if holder is not None:
        # A pasted token of an account another tenant already uses: same events, same
        # payments. Not stored, not marked connected.
        taken = OrganisationTaken(organisation=f"creditor {creditor_id}", holder=holder,
                                  connection=connection)
        connect_refusal_record(reason=f"Test connection: {taken}", actor=actor,
                               connection=connection)
        return {"ok": False, "creditors": found, "error": str(taken), "taken": taken}
    connection_set_status(
        connection=connection,
        status=ConnectionStatus.CONNECTED,
        reason="",
        actor=actor,
    )
    return {"ok": True, "creditors": found, "error": ""}
