"""Registration: inviting qualifying Exact customers to set up a mandate.

An invitation is a GoCardless Billing Request (``mandate_request`` in the customer's
currency, ``verify: recommended``, our Exact account id in metadata) plus a Billing Request
Flow (the hosted page, prefilled from Exact). Both creates carry deterministic idempotency
keys derived from tenant, Exact account and the invitation's attempt number; the
invitation row is written *before* the calls, so a crash and rerun of the same attempt
reuses the same keys.

Nothing half-done: every check that can fail on our side (no e-mail, blocked, a currency or
country GoCardless cannot collect) runs before any call and skips with a reason shown in
the admin; a GoCardless error on the billing request is stored on the invitation with its
field errors and nothing else happens; an error on the flow cancels the billing request.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import Actor, audit_record
from exact.models import ExactReceivable, ReceivableKind
from reconciliation.customers.config import customer_settings_for, gocardless_client_for
from reconciliation.customers.links import link_ensure
from reconciliation.customers.mandate_sync import METADATA_KEY
from reconciliation.customers.matching import customer_accounts
from reconciliation.customers.models import (
    OPEN_INVITATION_STATES,
    CustomerLink,
    InvitationState,
    LinkState,
    MandateInvitation,
    RegistrationPolicy,
)
from reconciliation.customers.normalise import (
    COUNTRIES_FOR_SCHEME,
    SCHEME_FOR_CURRENCY,
    country_code,
    email_valid,
    gocardless_language,
)
from reconciliation.customers.selectors import USABLE_MANDATE_STATUSES

logger = logging.getLogger(__name__)


class InvitationSkipped(Exception):
    """A reason on our side not to invite (shown to the person, stored on the link)."""


# --- who qualifies ------------------------------------------------------------------------
def _open_receivables(tenant):
    return ExactReceivable.objects.filter(
        tenant=tenant,
        account=OuterRef("pk"),
        is_fully_paid=False,
        kind=ReceivableKind.INVOICE,
        outstanding__gt=0,
    )


def accounts_qualifying(*, tenant, settings=None):
    """Exact accounts the tenant's policy wants invited, not yet covered by a mandate or an
    open invitation, and not waiting for (or refused by) a person."""
    settings = settings or customer_settings_for(tenant=tenant)
    accounts = customer_accounts(tenant=tenant).filter(blocked=False)
    policy = settings.registration_policy
    if policy == RegistrationPolicy.OPEN_RECEIVABLES:
        receivables = _open_receivables(tenant)
        if tenant.currencies:
            receivables = receivables.filter(currency__in=tenant.currencies)
        accounts = accounts.filter(Exists(receivables))
    elif policy == RegistrationPolicy.PAYMENT_CONDITION:
        if not settings.direct_debit_condition:
            return accounts.none()
        accounts = accounts.filter(payment_condition=settings.direct_debit_condition)
    else:
        accounts = accounts.filter(
            customer_links__selected_for_invitation=True,
            customer_links__tenant=tenant,
        )
    covered = CustomerLink.objects.filter(tenant=tenant, exact_account_guid=OuterRef("exact_id"))
    return (
        accounts.exclude(
            Exists(covered.filter(state__in=[LinkState.UNLINKED, LinkState.AMBIGUOUS]))
        )
        .exclude(
            Exists(covered.filter(mandate__status__in=USABLE_MANDATE_STATUSES, stop_reason=""))
        )
        .exclude(
            Exists(
                MandateInvitation.objects.filter(
                    tenant=tenant,
                    link__exact_account_guid=OuterRef("exact_id"),
                    state__in=OPEN_INVITATION_STATES,
                )
            )
        )
    )


def registration_run(*, tenant, actor: Actor, client=None) -> dict:
    counts: Counter = Counter()
    client = client or gocardless_client_for(tenant=tenant)
    if client is None:
        return {"skipped": "gocardless not connected"}
    from gocardless import errors

    try:
        currencies = collectable_currencies_for(client=client)
    except errors.GoCardlessError as exc:
        return {"skipped": f"gocardless: {exc.message}"}
    for account in accounts_qualifying(tenant=tenant):
        link = link_ensure(tenant=tenant, account=account)
        invitation, _message = invitation_create(
            link=link, actor=actor, client=client, collectable_currencies=currencies
        )
        counts[invitation.state if invitation is not None else "skipped"] += 1
    return dict(counts)


def registration_run_all(*, actor: Actor, tenant_id: int | None = None) -> dict:
    from reconciliation.customers.models import CustomerSettings

    results = {}
    rows = CustomerSettings.objects.filter(auto_invite=True, tenant__is_active=True).exclude(
        registration_policy=RegistrationPolicy.MANUAL
    )
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    for row in rows.select_related("tenant"):
        try:
            results[row.tenant.slug] = registration_run(tenant=row.tenant, actor=actor)
        except Exception:  # one tenant's trouble must not stop the others
            logger.exception("registration failed for tenant %s", row.tenant_id)
            results[row.tenant.slug] = {"error": 1}
    return results


# --- one invitation -----------------------------------------------------------------------
def invitation_currency(*, link: CustomerLink) -> str:
    """The account's sales currency; else that of its largest open receivables; else the
    tenant's only collected currency."""
    account = link.exact_account
    if account is not None and account.currency:
        return account.currency.upper()
    if account is not None:
        totals: Counter = Counter()
        for currency, outstanding in ExactReceivable.objects.filter(
            account=account, is_fully_paid=False, kind=ReceivableKind.INVOICE
        ).values_list("currency", "outstanding"):
            if currency:
                totals[currency.upper()] += outstanding
        if totals:
            return totals.most_common(1)[0][0]
    currencies = link.tenant.currencies or []
    return currencies[0] if len(currencies) == 1 else ""


def _check(link: CustomerLink, *, collectable_currencies: set[str]) -> tuple[str, str, str]:
    """(currency, scheme, language) or InvitationSkipped with the reason."""
    account = link.exact_account
    if link.state == LinkState.UNLINKED:
        raise InvitationSkipped("the link was removed by a person; re-link it first")
    if link.state == LinkState.AMBIGUOUS:
        raise InvitationSkipped("several GoCardless customers match; confirm the match first")
    if account is None:
        raise InvitationSkipped("the Exact account no longer exists")
    if account.blocked:
        raise InvitationSkipped("the account is blocked in Exact")
    if link.mandate_id and link.mandate.status in USABLE_MANDATE_STATUSES and not link.stop_reason:
        raise InvitationSkipped(
            f"the customer already has a {link.mandate.status} mandate "
            f"({link.mandate.gocardless_id})"
        )
    if not (account.email or "").strip():
        raise InvitationSkipped("no e-mail address in Exact: add one to the account")
    if not email_valid(account.email):
        raise InvitationSkipped(f"the e-mail address in Exact ({account.email!r}) is not valid")
    currency = invitation_currency(link=link)
    if not currency:
        raise InvitationSkipped("no currency: the account has no sales currency or open items")
    tenant_currencies = link.tenant.currencies or []
    if tenant_currencies and currency not in tenant_currencies:
        raise InvitationSkipped(
            f"{currency} is not a currency this company collects ({', '.join(tenant_currencies)})"
        )
    if currency not in collectable_currencies:
        raise InvitationSkipped(
            f"the GoCardless account cannot collect {currency} (it collects "
            f"{', '.join(sorted(collectable_currencies)) or 'nothing'})"
        )
    scheme = SCHEME_FOR_CURRENCY.get(currency, "")
    country = country_code(account.country)
    if country and scheme and country not in COUNTRIES_FOR_SCHEME.get(scheme, set()):
        raise InvitationSkipped(
            f"GoCardless cannot collect {currency} ({scheme}) from a payer in {country}"
        )
    return currency, scheme, gocardless_language(account.language)


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
    from gocardless import errors
    from gocardless.onboarding import (
        billing_request_cancel,
        billing_request_create,
    )

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
        currency, _scheme, language = _check(link, collectable_currencies=collectable_currencies)
    except InvitationSkipped as exc:
        _skip(link, reason=str(exc), actor=actor)
        return None, str(exc)
    except errors.GoCardlessError as exc:
        _skip(link, reason=f"GoCardless could not be asked: {exc.message}", actor=actor)
        return None, str(exc)

    account = link.exact_account
    if resume:
        invitation = open_one
        currency, reissued_from = invitation.currency, invitation.reissued_from
    else:
        try:
            with transaction.atomic():
                attempt = (
                    link.invitations.order_by("-attempt").values_list("attempt", flat=True).first()
                    or 0
                ) + 1
                invitation = MandateInvitation.objects.create(
                    tenant=link.tenant,
                    link=link,
                    attempt=attempt,
                    currency=currency,
                    language=language,
                    email=account.email.strip(),
                    reissued_from=reissued_from,
                )
        except IntegrityError:
            # Another worker (or a person's click) invited this customer a moment ago: the
            # one-open-invitation constraint keeps it to one.
            open_one = link.invitations.filter(state__in=OPEN_INVITATION_STATES).first()
            return open_one, "an invitation is already being made"
    guid = str(link.exact_account_guid)
    if reissued_from is not None and reissued_from.billing_request_id:
        billing_request_id = reissued_from.billing_request_id
    else:
        params = {
            "mandate_request": {
                "currency": currency,
                "verify": "recommended",
                "metadata": {METADATA_KEY: guid},
            },
            "metadata": {METADATA_KEY: guid, "invitation": str(invitation.pk)},
        }
        if link.gocardless_customer_id:
            params["links"] = {"customer": link.gocardless_customer.gocardless_id}
        try:
            billing_request = billing_request_create(
                client=client,
                params=params,
                idempotency_key=idempotency_key(invitation=invitation, part="brq"),
            )
        except errors.GoCardlessError as exc:
            return _failed(invitation, exc, actor=actor, step="billing request"), _error_text(exc)
        billing_request_id = billing_request["id"]
    invitation.billing_request_id = billing_request_id
    invitation.save(update_fields=["billing_request_id", "updated_at"])

    try:
        flow = _flow_create(invitation, client=client)
    except errors.InvalidStateError as exc:
        if reissued_from is None:
            _cancel_quietly(client, billing_request_id, billing_request_cancel)
        return _failed(invitation, exc, actor=actor, step="hosted page"), _error_text(exc)
    except errors.GoCardlessError as exc:
        _cancel_quietly(client, billing_request_id, billing_request_cancel)
        return _failed(invitation, exc, actor=actor, step="hosted page"), _error_text(exc)

    invitation.flow_id = flow["id"]
    invitation.authorisation_url = flow.get("authorisation_url") or ""
    expires = flow.get("expires_at")
    invitation.expires_at = (
        parse_datetime(expires) if expires else (timezone.now() + timedelta(days=7))
    )
    invitation.error = ""
    invitation.save()
    CustomerLink.objects.filter(pk=link.pk).update(
        registration_note="", selected_for_invitation=False
    )
    audit_record(
        actor=actor,
        action="mandateinvitation.created",
        tenant=link.tenant,
        obj=invitation,
        after={
            "billing_request": billing_request_id,
            "flow": invitation.flow_id,
            "currency": currency,
            "language": language,
            "expires_at": invitation.expires_at,
        },
        message=(
            f"re-issued expired invitation {reissued_from.pk}: new hosted page"
            if reissued_from is not None
            else f"billing request {billing_request_id} and hosted page for {link}"
        ),
    )
    message = f"invitation ready: {invitation.authorisation_url}"
    if send:
        from reconciliation.customers.invitations import invitation_send

        if invitation_send(invitation=invitation, actor=actor):
            message = f"invitation e-mailed to {invitation.email}"
    return invitation, message


def collectable_currencies_for(*, client) -> set[str]:
    from gocardless.onboarding import creditor_currencies

    return creditor_currencies(client=client)


def _flow_create(invitation: MandateInvitation, *, client) -> dict:
    from gocardless.onboarding import billing_request_flow_create

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
    from gocardless import errors

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


def _cancel_quietly(client, billing_request_id: str, cancel) -> None:
    from gocardless import errors

    try:
        cancel(client=client, billing_request_id=billing_request_id)
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
