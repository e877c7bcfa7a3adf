"""HTTP endpoints: the webhook receivers (thin: everything is in webhooks.py) and the OAuth
callback (thin: everything is in connect_oauth.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from rest_framework.views import APIView

from core.http import client_address
from gocardless.connect import ConnectError
from gocardless.connect_oauth import oauth_callback_anonymous, oauth_callback_complete
from gocardless.models import GoCardlessConnection, WebhookEndpoint
from gocardless.webhooks import (
    body_too_large,
    delivery_receive,
    delivery_receive_partner,
    delivery_refuse,
    delivery_unavailable,
)

REASONS = {498: "Token Invalid"}


def _answer(outcome) -> HttpResponse:
    response = HttpResponse(status=outcome.status, reason=REASONS.get(outcome.status))
    if outcome.retry_after:
        response["Retry-After"] = str(outcome.retry_after)
    return response


def _body(request) -> bytes | None:
    """The raw body, or None when the client broke off while sending it."""
    try:
        return request.body
    except (OSError, RequestDataTooBig):
        return None


# non_atomic_requests: the delivery row must survive even if a later step fails.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class _WebhookView(APIView):
    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    endpoint = WebhookEndpoint.TENANT

    def handle_exception(self, exc):
        # The database cannot be reached (a restart, a lost connection, a failover): the
        # delivery could not be stored, so the answer must make GoCardless send it again.
        # Django's answer would be a 500 page and a traceback logged per request; this is a
        # 503 + Retry-After and one log line. Every other error stays an error (a bug must not
        # look like an outage). Django drops the broken connection at the end of the request
        # (close_if_unusable_or_obsolete) and the next request opens a new one.
        if isinstance(exc, (OperationalError, InterfaceError)):
            return _answer(delivery_unavailable(
                error=exc, endpoint=self.endpoint, source=client_address(self.request),
                tenant_uuid=self.kwargs.get("tenant_uuid")))
        return super().handle_exception(exc)


class TenantWebhookView(_WebhookView):
    def post(self, request, tenant_uuid):
        meta, source = request.META, client_address(request)
        connection = (
            GoCardlessConnection.objects.select_related("tenant")
            # Decrypted only when used, so that a key problem is answered 503 (webhooks.py).
            .defer("access_token", "webhook_secret")
            .filter(tenant__uuid=tenant_uuid, tenant__is_active=True)
            .first()
        )
        tenant = connection.tenant if connection else None
        if body_too_large(meta):
            return _answer(delivery_refuse(status=413, meta=meta, tenant=tenant, source=source,
                                           error="body too large"))
        if connection is None:
            return _answer(delivery_refuse(status=404, meta=meta, source=source,
                                           error="unknown tenant"))
        body = _body(request)
        if body is None:
            return _answer(delivery_refuse(status=400, meta=meta, tenant=tenant, source=source,
                                           error="body could not be read"))
        return _answer(delivery_receive(connection=connection, body=body, meta=meta,
                                        source=source))


class PartnerWebhookView(_WebhookView):
    endpoint = WebhookEndpoint.PARTNER

    def post(self, request):
        meta, source = request.META, client_address(request)
        if body_too_large(meta):
            return _answer(delivery_refuse(status=413, meta=meta, endpoint="partner",
                                           source=source, error="body too large"))
        body = _body(request)
        if body is None:
            return _answer(delivery_refuse(status=400, meta=meta, endpoint="partner",
                                           source=source, error="body could not be read"))
        return _answer(delivery_receive_partner(body=body, meta=meta, source=source))


def oauth_callback(request):
    """GoCardless sends the admin back here with ?code&state (or ?error). Thin: the checks,
    the exchange and the refusal records are in connect_oauth.py."""
    user, source = request.user, client_address(request)
    if not (user.is_active and user.is_staff):
        oauth_callback_anonymous(params=request.GET, source=source, user=user)
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    try:
        connection = oauth_callback_complete(params=request.GET, session=request.session,
                                             user=user, source=source)
    except ConnectError as exc:
        messages.error(request, f"Connecting GoCardless refused: {exc.message_for(user)}")
        if exc.connection is None:
            return redirect(reverse("admin:gocardless_gocardlessconnection_changelist"))
        return redirect(_change_url(exc.connection))
    messages.success(request, f"GoCardless connected (organisation {connection.organisation_id}).")
    return redirect(_change_url(connection))


def _change_url(connection) -> str:
    return reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
