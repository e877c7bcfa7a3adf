"""What the connection's buttons do at Exact, around the state changes of exact/connections.py:
finishing a connect once the division is chosen (webhook subscriptions, the periodic jobs),
*Test connection*, and *Disconnect*. The views and the admin only render the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.audit import Actor
from exact.client import ExactClient
from exact.connections import (
    connection_choose_division,
    connection_mark_disconnected,
    connection_require_usable,
    division_holder,
)
from exact.errors import ExactConnectionUnavailable, ExactDivisionTaken, ExactError
from exact.models import ConnectionStatus, ExactConnection, ExactGrant, Region
from exact.schedules import exact_schedules_ensure
from exact.webhooks import subscriptions_create, subscriptions_remove


@dataclass
class DivisionChosen:
    """The outcome of binding a consent to a division, for the page to report."""

    connection: ExactConnection
    # Subscriptions of the previous division Exact would not remove (already prefixed).
    old_division_warnings: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    subscribe_error: ExactError | None = None


def exact_consent_origin(connection: ExactConnection | None) -> str:
    """Where this connection's Connect button leads when that is not one of the region table's
    hosts (which every page's policy allows): its custom base URL, only where the installation
    allows custom hosts; "" otherwise."""
    if connection is None or connection.region != Region.CUSTOM:
        return ""
    try:
        return connection.base_url  # ExactHostNotAllowed where custom hosts are not allowed
    except ExactConnectionUnavailable:
        return ""


def connection_division_set(
    *,
    connection: ExactConnection,
    division: int,
    division_name: str,
    actor: Actor,
    grant: ExactGrant | None = None,
) -> DivisionChosen:
    """Bind the connection to ``division`` of its consent (or of ``grant``: another company's
    consent by the same Exact user), then subscribe our webhooks and make sure the periodic
    jobs exist, so the new connection is synced from now on. ExactDivisionTaken (nothing
    changed) when another company holds the division.

    Switching administrations first removes our subscriptions in the old one (with the
    consent's token: the connection is between states), so they do not linger."""
    if division_holder(region=connection.region, division=division, exclude_pk=connection.pk):
        raise ExactDivisionTaken(
            f"Division {division} is already connected to another company. A division can "
            "belong to one company only."
        )
    warnings: list[str] = []
    if connection.division and connection.division != division:
        old = connection.division
        if connection.webhook_subscription_ids and connection.grant_id:
            warnings = [
                f"Division {old}: {warning}"
                for warning in subscriptions_remove(
                    connection=connection, division=old, token=connection.grant.access_token
                )
            ]
    connection = connection_choose_division(
        connection=connection,
        division=division,
        division_name=division_name,
        actor=actor,
        grant=grant,
    )
    outcome = DivisionChosen(connection=connection, old_division_warnings=warnings)
    try:
        outcome.subscriptions = subscriptions_create(connection=connection)
    except ExactError as exc:  # the sync sweep still keeps the copy current, only later
        outcome.subscribe_error = exc
    # An installation where nobody ran `manage.py schedules` yet still syncs this tenant.
    exact_schedules_ensure()
    return outcome


def connection_division_attach(
    *, connection: ExactConnection, grant: ExactGrant, division: int, actor: Actor
) -> DivisionChosen:
    """Attach ``division`` of an existing consent (``grant``) to another company without asking
    the Exact user again: an accountant consents once and connects each client company to
    its own division. For an operator (trusted with the installation) or the division picker
    of the user who just gave that consent; never for a company administrator on their own
    (they would reach every division of someone else's consent). The division must be in the
    grant's latest consent and held by no other company."""
    names = {int(d["code"]): d.get("name", "") for d in grant.consented_divisions or []}
    if division not in names:
        raise ExactConnectionUnavailable(
            f"Division {division} is not one of the divisions this consent covers."
        )
    return connection_division_set(
        connection=connection,
        division=division,
        division_name=str(names[division] or division),
        actor=actor,
        grant=grant,
    )


def connection_test(*, connection: ExactConnection, api: ExactClient | None = None) -> dict:
    """Ask Exact who we are and which divisions the consent reaches (two calls). Raises
    ExactError (including "not usable") for the caller to show."""
    connection_require_usable(connection=connection)
    api = api or ExactClient(connection)
    me = api.me()
    codes = {int(d["Code"]) for d in api.divisions(any_division=connection.division)}
    return {
        "user": me.get("FullName") or me.get("UserName"),
        "email": me.get("Email") or "",
        "division": connection.division,
        "division_name": connection.division_name,
        "division_reachable": connection.division in codes,
        "divisions": sorted(codes),
    }


def connection_disconnect(*, connection: ExactConnection, actor: Actor) -> list[str]:
    """Remove webhook subscriptions (best effort), leave the grant (its tokens are deleted
    when no other company of the same Exact user uses it), audit. Returns warnings.

    Nothing else to stop: the sync sweep and the keep-alive only pick connected connections."""
    warnings: list[str] = []
    if connection.status == ConnectionStatus.CONNECTED and connection.grant_id:
        warnings = subscriptions_remove(connection=connection)
    connection_mark_disconnected(connection=connection, actor=actor, warnings=warnings)
    return warnings
