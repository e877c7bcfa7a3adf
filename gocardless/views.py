"""HTTP endpoints: the webhook receivers (thin: everything is in webhooks.py) and the OAuth
callback (thin: everything is in connect.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from rest_framework.views import APIView

from core.audit import Actor
from gocardless import errors
from gocardless.connect import (
    ConnectError,
    OrganisationTaken,
    oauth_complete,
    oauth_state_connection,
)
from gocardless.models import GoCardlessConnection
from gocardless.webhooks import (
    body_too_large,
    delivery_receive,
    delivery_receive_partner,
    delivery_refuse,
)
from tenants.models import Role
from tenants.scoping import role_at_least, tenant_roles

REASONS = {498: "Token Invalid"}


def _answer(status: int) -> HttpResponse:
    return HttpResponse(status=status, reason=REASONS.get(status))


# non_atomic_requests: the delivery row must survive even if a later step fails.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class _WebhookView(APIView):
    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()


class TenantWebhookView(_WebhookView):
    def post(self, request, tenant_uuid):
        meta = request.META
        connection = (
            GoCardlessConnection.objects.select_related("tenant")
            .filter(tenant__uuid=tenant_uuid, tenant__is_active=True)
            .first()
        )
        if body_too_large(meta):
            tenant = connection.tenant if connection else None
            return _answer(delivery_refuse(status=413, meta=meta, tenant=tenant,
                                           error="body too large").status)
        if connection is None:
            return _answer(delivery_refuse(status=404, meta=meta, error="unknown tenant").status)
        return _answer(delivery_receive(connection=connection, body=request.body, meta=meta).status)


class PartnerWebhookView(_WebhookView):
    def post(self, request):
        meta = request.META
        if body_too_large(meta):
            return _answer(delivery_refuse(status=413, meta=meta, endpoint="partner",
                                           error="body too large").status)
        return _answer(delivery_receive_partner(body=request.body, meta=meta).status)


@staff_member_required
def oauth_callback(request):
    """GoCardless sends the admin back here with ?code&state (or ?error)."""
    changelist = reverse("admin:gocardless_gocardlessconnection_changelist")
    try:
        connection = oauth_state_connection(state=request.GET.get("state", ""),
                                            session=request.session)
    except ConnectError as exc:
        messages.error(request, str(exc))
        return redirect(changelist)
    target = reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
    role = tenant_roles(request.user, request=request).get(connection.tenant_id)
    if not (request.user.is_superuser or role_at_least(role, Role.ADMIN)):
        messages.error(request, "Only an administrator of this company may connect it.")
        return redirect(changelist)
    if request.GET.get("error"):
        messages.error(request, f"GoCardless: {request.GET.get('error')}")
        return redirect(target)
    try:
        oauth_complete(connection=connection, code=request.GET.get("code", ""),
                       actor=Actor.for_user(request.user))
    except OrganisationTaken as exc:
        messages.error(request, f"Connecting GoCardless refused: {exc.message_for(request.user)}")
        return redirect(target)
    except (ConnectError, errors.GoCardlessError) as exc:
        messages.error(request, f"Connecting GoCardless failed: {exc}")
        return redirect(target)
    messages.success(request, f"GoCardless connected (organisation {connection.organisation_id}).")
    return redirect(target)
