"""HTTP endpoints: the OAuth callback, the division picker, and the webhook receiver."""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from rest_framework.response import Response
from rest_framework.views import APIView

from core.audit import Actor
from exact import oauth
from exact.connect import DivisionChosen, connection_division_set
from exact.connections import connection_store_consent
from exact.models import ExactConnection
from exact.oauth import ConnectFlowError
from exact.webhooks import delivery_receive
from tenants.models import Role
from tenants.scoping import role_at_least, tenant_roles

logger = logging.getLogger(__name__)


def failure_page(request, error: ConnectFlowError) -> HttpResponse:
    logger.warning("exact connect failed (%s): %s", error.code, error.message)
    return render(
        request,
        "exact/connect_failed.html",
        {
            "title": error.title,
            "message": error.message,
            "code": error.code,
            "admin_url": reverse("admin:exact_exactconnection_changelist"),
        },
        status=error.status,
    )


def _may_configure(user, tenant_id: int) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return role_at_least(tenant_roles(user).get(tenant_id), Role.ADMIN)


def _change_url(connection: ExactConnection) -> str:
    return reverse("admin:exact_exactconnection_change", args=[connection.pk])


def _refusal(error: str) -> ConnectFlowError:
    """Exact came back with ``?error=`` instead of a code."""
    denied = error == "access_denied"
    return ConnectFlowError(
        "Consent was not given" if denied else "Exact reported an error",
        "Access to Exact Online was declined, so nothing was connected."
        if denied
        else f"Exact answered: {error}",
        status=400,
        code="denied" if denied else "error",
    )


@require_http_methods(["GET"])
def oauth_callback(request):
    """``/connect/exact/callback/``: Exact redirects here with ``code``+``state`` or ``error``."""
    try:
        if request.GET.get("error"):
            oauth.state_check(request=request, state=request.GET.get("state", ""))
            raise _refusal(request.GET["error"])
        flow = oauth.state_check(request=request, state=request.GET.get("state", ""))
        connection = (
            ExactConnection.objects.select_related("tenant")
            .filter(pk=flow.connection_id, tenant_id=flow.tenant_id)
            .first()
        )
        if connection is None or not _may_configure(request.user, flow.tenant_id):
            raise ConnectFlowError(
                "Not allowed",
                "Only an administrator of this company can connect it.",
                status=403,
                code="forbidden",
            )
        code = request.GET.get("code", "")
        if not code:
            raise ConnectFlowError("No code", "Exact sent no authorization code.", code="code")
        tokens = oauth.code_exchange(request=request, connection=connection, code=code, flow=flow)
        connection = connection_store_consent(
            connection=connection,
            tokens=tokens,
            issued_at=timezone.now(),
            actor=Actor.for_user(request.user),
        )
        divisions = oauth.consent_divisions_offered(
            connection=connection, access_token=tokens["access_token"]
        )
        request.session[oauth.SESSION_DIVISIONS] = {
            "connection": connection.pk,
            "divisions": {str(d["code"]): d["name"] for d in divisions},
        }
        return render(
            request,
            "exact/division_picker.html",
            {
                "title": "Choose the Exact Online division",
                "connection": connection,
                "divisions": divisions,
                "current": connection.division,
            },
        )
    except ConnectFlowError as error:
        return failure_page(request, error)


@require_http_methods(["POST"])
def division_choose(request):
    """The division picker's form: the division must be one this consent listed."""
    try:
        offered = request.session.get(oauth.SESSION_DIVISIONS) or {}
        connection = (
            ExactConnection.objects.select_related("tenant")
            .filter(pk=offered.get("connection"))
            .first()
        )
        if connection is None or not _may_configure(request.user, connection.tenant_id):
            raise ConnectFlowError(
                "Not allowed",
                "No connection attempt of yours is waiting for a division.",
                status=403,
                code="forbidden",
            )
        choice = request.POST.get("division", "")
        names = offered.get("divisions", {})
        if choice not in names:
            raise ConnectFlowError(
                "Division not in the consent",
                f"Division {choice or '(none)'} is not one of the divisions this consent "
                "gives access to.",
                status=403,
                code="division",
            )
        chosen = connection_division_set(
            connection=connection,
            division=int(choice),
            division_name=names[choice],
            actor=Actor.for_user(request.user),
        )
        request.session.pop(oauth.SESSION_DIVISIONS, None)
        _report_connected(request, chosen)
        return HttpResponseRedirect(_change_url(chosen.connection))
    except ConnectFlowError as error:
        return failure_page(request, error)


def _report_connected(request, chosen: DivisionChosen) -> None:
    connection = chosen.connection
    for warning in chosen.old_division_warnings:
        messages.warning(request, warning)
    messages.success(
        request,
        f"Connected to Exact Online division {connection.division} ({connection.division_name}).",
    )
    if chosen.subscribe_error is None:
        messages.info(request, f"Webhook subscriptions: {len(chosen.subscriptions)} active.")
    else:
        messages.warning(request, f"Webhooks could not be subscribed: {chosen.subscribe_error}")


# --- webhooks -----------------------------------------------------------------------------
# CSRF-exempt and without authentication: Exact signs the body (HashCode) instead.
# non_atomic_requests: the stored delivery must survive any later failure.
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class ExactWebhookView(APIView):
    """``POST /webhooks/exact/<tenant uuid>/`` and the app-wide ``POST /webhooks/exact/``:
    everything happens in ``exact.webhooks.delivery_receive``."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []  # request.data is never used: the raw bytes are the truth

    def post(self, request, tenant_uuid: uuid.UUID | None = None):
        outcome = delivery_receive(
            tenant_uuid=tenant_uuid,
            body_stream=request._request,
            content_length=request._request.META.get("CONTENT_LENGTH"),
            headers=request.headers,
        )
        return Response(outcome.payload, status=outcome.status)
