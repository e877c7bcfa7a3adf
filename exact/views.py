"""HTTP endpoints: the OAuth callback, the division picker, and the webhook receiver. Thin:
exact/consent_flow.py and exact/webhooks.py do the work; these render the outcome."""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import client_address
from exact.consent_flow import (
    ChoiceOutcome,
    connect_refusal_record,
    consent_callback,
    division_choice_apply,
)
from exact.models import ExactConnection
from exact.oauth import ConnectFlowError
from exact.webhooks import delivery_receive

logger = logging.getLogger(__name__)


def failure_page(request, error: ConnectFlowError) -> HttpResponse:
    connect_refusal_record(request=request, error=error)
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


def _change_url(connection: ExactConnection) -> str:
    return reverse("admin:exact_exactconnection_change", args=[connection.pk])


def _finished(request, outcome: ChoiceOutcome) -> HttpResponse:
    """After binding: the admin's change page, or (an operator's link, maybe completed in a
    browser without an admin login) a page that says it is done."""
    chosen = outcome.chosen
    if outcome.by_operator:
        return render(
            request,
            "exact/connected.html",
            {"title": "Exact Online connected", "connection": chosen.connection},
        )
    for warning in chosen.old_division_warnings:
        messages.warning(request, warning)
    connection = chosen.connection
    messages.success(
        request,
        f"Connected to Exact Online division {connection.division} ({connection.division_name}).",
    )
    if chosen.subscribe_error is None:
        messages.info(request, f"Webhook subscriptions: {len(chosen.subscriptions)} active.")
    else:
        messages.warning(request, f"Webhooks could not be subscribed: {chosen.subscribe_error}")
    for attached in outcome.attached:
        messages.success(
            request,
            f"{attached.connection.tenant}: connected to division "
            f"{attached.connection.division} ({attached.connection.division_name}).",
        )
    for problem in outcome.problems:
        messages.warning(request, problem)
    return HttpResponseRedirect(_change_url(connection))


@require_http_methods(["GET"])
def oauth_callback(request):
    """``/connect/exact/callback/``: Exact redirects here with ``code``+``state`` or ``error``."""
    try:
        result = consent_callback(request=request, params=request.GET)
    except ConnectFlowError as error:
        return failure_page(request, error)
    if isinstance(result, ChoiceOutcome):
        return _finished(request, result)
    return render(
        request,
        "exact/division_picker.html",
        {
            "title": "Choose the Exact Online division",
            "connection": result.connection,
            "divisions": result.divisions,
            "preselected": result.preselected,
            "others": result.others,
            "free": [d for d in result.divisions if not d["taken"]],
            "by_operator": result.by_operator,
        },
    )


@require_http_methods(["POST"])
def division_choose(request):
    """The division picker's form: the division must be one this consent listed."""
    try:
        outcome = division_choice_apply(request=request, post=request.POST)
    except ConnectFlowError as error:
        return failure_page(request, error)
    return _finished(request, outcome)


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
            source_address=client_address(request._request),
        )
        return Response(outcome.payload, status=outcome.status)
