"""The two steps of connecting in a browser, as services the views only render:

1. ``consent_callback``: Exact redirected back with ``code`` + ``state`` (or ``error``). Check
   the state, exchange the code at the connection's region, ask who consented and which
   divisions the consent reaches, store the chain in that Exact user's grant (shared with the
   user's other companies), and offer the division picker — or, for an operator's link that
   names a division, bind it at once.
2. ``division_choice_apply``: the picker's form. The division must be one the consent listed
   and held by no other company; the user may attach further divisions of the same consent to
   other companies they administer (an accountant consents once).

Every refusal is a ``ConnectFlowError`` (a 4xx page, never a 500); ``connect_refusal_record``
logs and audits it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone

from core.audit import Actor, audit_record
from core.http import client_address
from exact import oauth
from exact.connect import DivisionChosen, connection_division_set
from exact.connections import connection_ensure, connection_store_consent, divisions_taken
from exact.errors import ExactConnectionUnavailable, ExactDivisionTaken
from exact.models import ConnectionStatus, ExactConnection, ExactGrant
from exact.oauth import ConnectFlowError
from tenants.models import Role, Tenant
from tenants.scoping import role_at_least, tenant_roles

logger = logging.getLogger(__name__)


@dataclass
class OtherCompany:
    """A company the consenting user also administers, offered a division of this consent."""

    tenant: Tenant
    field: str


@dataclass
class Picker:
    """What the division picker shows."""

    connection: ExactConnection
    divisions: list[dict]  # each with "taken": held by another company (never named)
    preselected: int | None
    others: list[OtherCompany] = field(default_factory=list)
    by_operator: bool = False


@dataclass
class ChoiceOutcome:
    """The picker's result: the main connection, and what happened to the other companies."""

    chosen: DivisionChosen
    by_operator: bool = False
    attached: list[DivisionChosen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- who may ------------------------------------------------------------------------------
def may_configure(user, tenant_id: int) -> bool:
    """A staff user who administers the tenant (or a superuser)."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return role_at_least(tenant_roles(user).get(tenant_id), Role.ADMIN)


def _actor(request, flow_operator: str = "") -> Actor:
    if request.user.is_authenticated:
        return Actor.for_user(request.user)
    return Actor.system(f"consent link of {flow_operator or 'an operator'}")


def _forbidden(message: str, tenant_id: int | None = None) -> ConnectFlowError:
    return ConnectFlowError(
        "Not allowed", message, status=403, code="forbidden", tenant_id=tenant_id
    )


# --- step 1: the callback -----------------------------------------------------------------
def _refusal(error: str, tenant_id: int) -> ConnectFlowError:
    """Exact came back with ``?error=`` instead of a code."""
    denied = error == "access_denied"
    return ConnectFlowError(
        "Consent was not given" if denied else "Exact reported an error",
        "Access to Exact Online was declined, so nothing was connected."
        if denied
        else f"Exact answered: {error[:200]}",
        status=400,
        code="denied" if denied else "error",
        tenant_id=tenant_id,
    )


def consent_callback(*, request, params) -> Picker | ChoiceOutcome:
    """Handle Exact's redirect back (``params``: the query string)."""
    flow = oauth.state_check(request=request, state=params.get("state", ""))
    if params.get("error"):
        raise _refusal(str(params["error"]), flow.tenant_id)
    connection = (
        ExactConnection.objects.select_related("tenant", "grant")
        .filter(pk=flow.connection_id, tenant_id=flow.tenant_id)
        .first()
    )
    if connection is None or not (flow.by_operator or may_configure(request.user, flow.tenant_id)):
        raise _forbidden("Only an administrator of this company can connect it.", flow.tenant_id)
    code = params.get("code", "")
    if not code:
        raise ConnectFlowError(
            "No code", "Exact sent no authorization code.", code="code", tenant_id=flow.tenant_id
        )
    tokens = oauth.code_exchange(request=request, connection=connection, code=code, flow=flow)
    identity = oauth.consent_identity_read(
        connection=connection, access_token=tokens["access_token"]
    )
    connection = connection_store_consent(
        connection=connection,
        tokens=tokens,
        issued_at=timezone.now(),
        actor=_actor(request, flow.operator),
        exact_user_id=identity.user_id,
        exact_user_name=identity.user_name,
        divisions=identity.divisions,
    )
    others = [] if flow.by_operator else _other_companies(request.user, connection)
    request.session[oauth.SESSION_DIVISIONS] = {
        "connection": connection.pk,
        "grant": connection.grant_id,
        "divisions": {str(d["code"]): d["name"] for d in identity.divisions},
        "operator": flow.operator if flow.by_operator else "",
        "pinned": flow.division,
        "others": [o.tenant.pk for o in others],
    }
    if flow.division is not None:  # an operator's link that names the division
        return division_choice_apply(request=request, post={"division": str(flow.division)})
    return _picker(connection, identity.divisions, others, by_operator=flow.by_operator)


def _picker(
    connection: ExactConnection,
    divisions: list[dict],
    others: list[OtherCompany],
    *,
    by_operator: bool,
) -> Picker:
    taken = divisions_taken(
        region=connection.region,
        codes=[d["code"] for d in divisions],
        exclude_pk=connection.pk,
    )
    shown = [{**d, "taken": d["code"] in taken} for d in divisions]
    free = [d["code"] for d in shown if not d["taken"]]
    # Never pre-select a division another company holds.
    preselected = connection.division if connection.division in free else next(iter(free), None)
    return Picker(connection, shown, preselected, others, by_operator)


def _other_companies(user, connection: ExactConnection) -> list[OtherCompany]:
    """Other companies this user administers (by membership) whose Exact connection is not in
    use, in the same region: they may get a division of this consent too."""
    if not user.is_authenticated:
        return []
    ids = [
        tenant_id
        for tenant_id, role in tenant_roles(user).items()
        if role_at_least(role, Role.ADMIN) and tenant_id != connection.tenant_id
    ]
    busy = set(
        ExactConnection.objects.filter(tenant_id__in=ids)
        .filter(status=ConnectionStatus.CONNECTED)
        .values_list("tenant_id", flat=True)
    ) | set(
        ExactConnection.objects.filter(tenant_id__in=ids)
        .exclude(region=connection.region)
        .values_list("tenant_id", flat=True)
    )
    tenants = Tenant.objects.filter(pk__in=set(ids) - busy, is_active=True).order_by("name")
    return [OtherCompany(tenant=t, field=f"division_{t.pk}") for t in tenants]


# --- step 2: the picker's form ------------------------------------------------------------
def division_choice_apply(*, request, post) -> ChoiceOutcome:
    """Bind the chosen division (and any for the user's other companies)."""
    offered = request.session.get(oauth.SESSION_DIVISIONS) or {}
    connection = (
        ExactConnection.objects.select_related("tenant", "grant")
        .filter(pk=offered.get("connection"))
        .first()
    )
    by_operator = bool(offered.get("operator"))
    # An operator's link is the authority for the one connection it named; the session got
    # it by completing that link. Otherwise: an administrator of the company.
    if connection is None or not (by_operator or may_configure(request.user, connection.tenant_id)):
        raise _forbidden("No connection attempt of yours is waiting for a division.")
    names = offered.get("divisions", {})
    choice = str(post.get("division", ""))[:20]
    pinned = offered.get("pinned")
    if choice not in names or (pinned is not None and choice != str(pinned)):
        raise ConnectFlowError(
            "Division not in the consent",
            f"Division {choice or '(none)'} is not one of the divisions this consent gives "
            "access to.",
            status=403,
            code="division",
            tenant_id=connection.tenant_id,
        )
    actor = _actor(request, offered.get("operator", ""))
    try:
        chosen = connection_division_set(
            connection=connection, division=int(choice), division_name=names[choice], actor=actor
        )
    except ExactDivisionTaken as exc:
        raise ConnectFlowError(
            "Division already connected",
            str(exc),
            status=409,
            code="division_taken",
            tenant_id=connection.tenant_id,
        ) from exc
    except ExactConnectionUnavailable as exc:
        raise ConnectFlowError(
            "Consent no longer usable",
            str(exc),
            status=409,
            code="consent_gone",
            tenant_id=connection.tenant_id,
        ) from exc
    request.session.pop(oauth.SESSION_DIVISIONS, None)
    outcome = ChoiceOutcome(chosen=chosen, by_operator=by_operator)
    if not by_operator:
        _attach_others(request, post, offered, chosen.connection, outcome, actor)
    return outcome


def _attach_others(request, post, offered, main: ExactConnection, outcome, actor) -> None:
    """The same consent for other companies the user administers: each a distinct free
    division of the consent. One company's problem is a message; the others go ahead."""
    names = offered.get("divisions", {})
    grant = ExactGrant.objects.filter(pk=main.grant_id).first()
    used = {str(main.division)}
    for tenant_id in offered.get("others", []):
        choice = str(post.get(f"division_{tenant_id}", ""))[:20]
        if not choice:
            continue
        tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
        if tenant is None or not may_configure(request.user, tenant_id):
            outcome.problems.append(f"Company {tenant_id}: not allowed.")
            continue
        if choice not in names or choice in used or grant is None:
            outcome.problems.append(f"{tenant}: division {choice} cannot be used for it.")
            continue
        try:
            connection = connection_ensure(
                tenant=tenant,
                actor=actor,
                region=main.region,
                custom_base_url=main.custom_base_url,
            )
        except (ExactConnectionUnavailable, ValidationError):
            outcome.problems.append(f"{tenant}: its Exact Online connection is in use.")
            continue
        if connection.status == ConnectionStatus.CONNECTED:
            outcome.problems.append(f"{tenant}: its Exact Online connection is in use.")
            continue
        try:
            outcome.attached.append(
                connection_division_set(
                    connection=connection,
                    division=int(choice),
                    division_name=names[choice],
                    actor=actor,
                    grant=grant,
                )
            )
            used.add(choice)
        except (ExactDivisionTaken, ExactConnectionUnavailable) as exc:
            outcome.problems.append(f"{tenant}: {exc}")
            connect_refusal_record(
                request=request,
                error=ConnectFlowError(
                    "Division already connected",
                    str(exc),
                    status=409,
                    code="division_taken",
                    tenant_id=tenant.pk,
                ),
            )


# --- refusals -----------------------------------------------------------------------------
def connect_refusal_record(*, request, error: ConnectFlowError) -> None:
    """Every refusal of the connect flow is logged and audited (in the company's trail when
    the request names one we could verify, else installation-wide), with the sender's
    address: a forged or replayed callback leaves a trace."""
    address = client_address(request)
    logger.warning(
        "exact connect refused (%s, %s) from %s: %s",
        error.code,
        error.status,
        address,
        error.message,
    )
    tenant = Tenant.objects.filter(pk=error.tenant_id).first() if error.tenant_id else None
    user = request.user if request.user.is_authenticated else None
    audit_record(
        actor=Actor.for_user(user) if user else Actor.system("exact-oauth-callback"),
        action="exact_connection.connect_refused",
        tenant=tenant,
        object_type="exact.exactconnection",
        after={"code": error.code, "status": error.status, "source_address": address},
        message=f"{error.title}: {error.message}"[:2000],
    )
