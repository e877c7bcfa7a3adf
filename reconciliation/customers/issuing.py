"""Issuing an invitation: a GoCardless Billing Request and its hosted page, then the e-mail.

An invitation is a Billing Request (``mandate_request`` in the customer's currency,
``verify: recommended``, our Exact account id in metadata) plus a Billing Request Flow (the
hosted page, prefilled from Exact). Both creates carry deterministic idempotency keys
derived from tenant, Exact account and the invitation's attempt number; the invitation row
is written *before* the calls, so a crash and rerun of the same attempt reuses the same keys.
A re-issue (invitations.py, after expiry) makes a new hosted page on the same billing request.

Nothing half-done: the checks (invitation_checks.py) run before any call and skip with a
reason shown in the admin; a GoCardless error on the billing request is stored on the
invitation with its field errors and nothing else happens; an error on the flow cancels the
billing request.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import Actor, audit_record
from gocardless import errors
from gocardless.onboarding import (
    billing_request_cancel,
    billing_request_create,
    billing_request_flow_create,
)
from reconciliation.customers.config import customer_settings_for, gocardless_client_for
from reconciliation.customers.invitation_checks import (
    InvitationSkipped,
    collectable_currencies_for,
    invitation_check,
)
from reconciliation.customers.invitation_email import invitation_send
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    CustomerLink,
    InvitationState,
    MandateInvitation,
)
from reconciliation.customers.normalise import country_code
from reconciliation.customers.selectors import METADATA_KEY

logger = logging.getLogger(__name__)


def invitation_create(
    *,
    link: CustomerLink,
    actor: Actor,
    client=None,
    send: bool = True,
    reissued_from: MandateInvitation | None = None,
    collectable_currencies: set[str] | None = None,
) -> tuple[MandateInvitation | None, str]:
    """Invite the link's customer; returns (invitation or None when skipped, message).

    An open invitation that never got its hosted page (a crash between the calls) is
    resumed with the same attempt number, hence the same idempotency keys: GoCardless
    answers 409 and the client returns the billing request made the first time.
    """
    client = client or gocardless_client_for(tenant=link.tenant)
    if client is None:
        _skip(link, reason="GoCardless is not connected", actor=actor)
        return None, "GoCardless is not connected"
    open_one = link.invitations.filter(state__in=OPEN_INVITATION_STATES).first()
    resume = open_one is not None and not open_one.flow_id
    if open_one is not None and not resume:
        return open_one, f"an invitation is already open ({open_one.state})"
    try:
        if collectable_currencies is None:
            collectable_currencies = collectable_currencies_for(client=client)
        currency, _scheme, language = invitation_check(
            link=link, collectable_currencies=collectable_currencies
        )
    except InvitationSkipped as exc:
        _skip(link, reason=str(exc), actor=actor)
        return None, str(exc)
    except errors.GoCardlessError as exc:
        _skip(link, reason=f"GoCardless could not be asked: {exc.message}", actor=actor)
        return None, str(exc)

    if resume:
        invitation = open_one
        currency, reissued_from = invitation.currency, invitation.reissued_from
    else:
        invitation = _invitation_row(
            link, currency=currency, language=language, reissued_from=reissued_from
        )
        if invitation is None:
            # Another worker (or a person's click) invited this customer a moment ago: the
            # one-open-invitation constraint keeps it to one.
            open_one = link.invitations.filter(state__in=OPEN_INVITATION_STATES).first()
            return open_one, "an invitation is already being made"
    failed = _hosted_page_make(invitation, client=client, actor=actor, reissued_from=reissued_from)
    if failed is not None:
        return failed
    _created_record(invitation, actor=actor, language=language, reissued_from=reissued_from)
    message = f"invitation ready: {invitation.authorisation_url}"
    if send and invitation_send(invitation=invitation, actor=actor):
        message = f"invitation e-mailed to {invitation.email}"
    return invitation, message


def _skip(link: CustomerLink, *, reason: str, actor: Actor) -> None:
    CustomerLink.objects.filter(pk=link.pk).update(registration_note=reason[:500])
    link.registration_note = reason[:500]
    audit_record(
        actor=actor,
        action="customerlink.invitation_skipped",
        tenant=link.tenant,
        obj=link,
        message=reason,
    )


def _invitation_row(
    link: CustomerLink, *, currency: str, language: str, reissued_from
) -> MandateInvitation | None:
    """The new invitation (next attempt number), written before any call; None when another
    open invitation of the link won the race."""
    try:
        with transaction.atomic():
            attempt = (
                link.invitations.order_by("-attempt").values_list("attempt", flat=True).first()
                or 0
            ) + 1
            return MandateInvitation.objects.create(
                tenant=link.tenant,
                link=link,
                attempt=attempt,
                currency=currency,
                language=language,
                email=link.exact_account.email.strip(),
                reissued_from=reissued_from,
            )
    except IntegrityError:
        return None


def _hosted_page_make(
    invitation: MandateInvitation, *, client, actor: Actor, reissued_from
) -> tuple[MandateInvitation, str] | None:
    """The billing request (the one re-issued from, else a new one) and a flow for it, stored
    on the invitation; on a GoCardless error the failed invitation and the message."""
    if reissued_from is not None and reissued_from.billing_request_id:
        billing_request_id = reissued_from.billing_request_id
    else:
        try:
            billing_request_id = _billing_request_create(invitation, client=client)
        except errors.GoCardlessError as exc:
            return _failed(invitation, exc, actor=actor, step="billing request"), _error_text(exc)
    invitation.billing_request_id = billing_request_id
    invitation.save(update_fields=["billing_request_id", "updated_at"])

    try:
        flow = _flow_create(invitation, client=client)
    except errors.InvalidStateError as exc:
        if reissued_from is None:
            _cancel_quietly(client, billing_request_id)
        return _failed(invitation, exc, actor=actor, step="hosted page"), _error_text(exc)
    except errors.GoCardlessError as exc:
        _cancel_quietly(client, billing_request_id)
        return _failed(invitation, exc, actor=actor, step="hosted page"), _error_text(exc)

    invitation.flow_id = flow["id"]
    invitation.authorisation_url = flow.get("authorisation_url") or ""
    expires = flow.get("expires_at")
    invitation.expires_at = (
        parse_datetime(expires) if expires else (timezone.now() + timedelta(days=7))
    )
    invitation.error = ""
    invitation.save()
    return None


def _created_record(
    invitation: MandateInvitation, *, actor: Actor, language: str, reissued_from
) -> None:
    """The link waits for no one any more (note and selection cleared); audited."""
    link = invitation.link
    CustomerLink.objects.filter(pk=link.pk).update(
        registration_note="", selected_for_invitation=False
    )
    audit_record(
        actor=actor,
        action="mandateinvitation.created",
        tenant=link.tenant,
        obj=invitation,
        after={
            "billing_request": invitation.billing_request_id,
            "flow": invitation.flow_id,
            "currency": invitation.currency,
            "language": language,
            "expires_at": invitation.expires_at,
        },
        message=(
            f"re-issued expired invitation {reissued_from.pk}: new hosted page"
            if reissued_from is not None
            else f"billing request {invitation.billing_request_id} and hosted page for {link}"
        ),
    )


def idempotency_key(*, invitation: MandateInvitation, part: str) -> str:
    # ≤ 128 characters (GoCardless' limit): two hex uuids, the attempt and the part.
    return (
        f"mlc-{invitation.tenant.uuid.hex}-{invitation.link.exact_account_guid.hex}-"
        f"{invitation.attempt}-{part}"
    )


def prefilled_customer(*, link: CustomerLink, language: str) -> dict:
    account = link.exact_account
    values = {
        "company_name": account.name,
        "email": account.email.strip(),
        "address_line1": account.address_line1,
        "city": account.city,
        "postal_code": account.postcode,
        "country_code": country_code(account.country),
        "language": language,
    }
    return {k: v for k, v in values.items() if v}


def _error_text(exc) -> str:
    fields = getattr(exc, "field_errors", None) or []
    detail = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in fields)
    return f"{exc.message}" + (f" ({detail})" if detail else "")


def _billing_request_create(invitation: MandateInvitation, *, client) -> str:
    link = invitation.link
    guid = str(link.exact_account_guid)
    params = {
        "mandate_request": {
            "currency": invitation.currency,
            "verify": "recommended",
            "metadata": {METADATA_KEY: guid},
        },
        "metadata": {METADATA_KEY: guid, "invitation": str(invitation.pk)},
    }
    if link.gocardless_customer_id:
        params["links"] = {"customer": link.gocardless_customer.gocardless_id}
    billing_request = billing_request_create(
        client=client,
        params=params,
        idempotency_key=idempotency_key(invitation=invitation, part="brq"),
    )
    return billing_request["id"]


def _flow_create(invitation: MandateInvitation, *, client) -> dict:
    settings = customer_settings_for(tenant=invitation.tenant)
    params = {
        "links": {"billing_request": invitation.billing_request_id},
        "prefilled_customer": prefilled_customer(
            link=invitation.link, language=invitation.language
        ),
        "lock_currency": True,
    }
    if invitation.language:
        params["language"] = invitation.language
    if settings.redirect_uri:
        params["redirect_uri"] = settings.redirect_uri
    if settings.exit_uri:
        params["exit_uri"] = settings.exit_uri
    key = idempotency_key(invitation=invitation, part="flow")
    try:
        return billing_request_flow_create(client=client, params=params, idempotency_key=key)
    except errors.InvalidStateError as exc:
        if "idempotent_creation_conflict" not in exc.reasons:
            raise
    # A flow made under this key before a crash cannot be fetched (no GET for flows); it
    # moves no money, so a new one under a fresh key is safe.
    fresh = f"{key}-{timezone.now():%Y%m%d%H%M%S%f}"
    return billing_request_flow_create(client=client, params=params, idempotency_key=fresh)


def _cancel_quietly(client, billing_request_id: str) -> None:
    try:
        billing_request_cancel(client=client, billing_request_id=billing_request_id)
    except errors.GoCardlessError as exc:  # nothing can be collected through it anyway
        logger.warning("could not cancel billing request %s: %s", billing_request_id, exc)


def _failed(invitation: MandateInvitation, exc, *, actor: Actor, step: str) -> MandateInvitation:
    invitation.state = InvitationState.FAILED
    invitation.error = f"GoCardless refused the {step}: {_error_text(exc)}"[:2000]
    invitation.field_errors = list(getattr(exc, "field_errors", None) or [])
    invitation.save(update_fields=["state", "error", "field_errors", "updated_at"])
    audit_record(
        actor=actor,
        action="mandateinvitation.failed",
        tenant=invitation.tenant,
        obj=invitation,
        after={
            "state": invitation.state,
            "field_errors": invitation.field_errors,
            "request_id": getattr(exc, "request_id", ""),
        },
        message=invitation.error,
    )
    return invitation
