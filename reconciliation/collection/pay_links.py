"""Pay by link: when Direct Debit will not collect an invoice any more (retries used up, the
mandate gone) and the failure rules say so, the customer gets an e-mail with a GoCardless
hosted page to pay it by bank (docs/failures.md).

1. ``pay_link_prepare`` (inside the event's transaction: local writes only) writes the
   ``PayLink`` with its key and idempotency key, and queues ``pay_link_issue`` after commit.
2. ``pay_link_issue`` creates the billing request (a ``payment_request`` with our three
   metadata keys; instant bank pay where GoCardless offers it, else a mandate and a payment)
   and its flow under keys derived from the row, so a crash and a rerun adopt what was made;
   then e-mails the flow's authorisation URL (pay_link_email.py).
3. The payment the customer makes carries the link's metadata: bookings book its receipt like
   any other (``bookings.rules.payment_owner``), and ``pay_link_payment_changed`` marks the
   link paid (or failed) and the failed attempt with it.
4. ``pay_links_expire`` closes links whose page expired unpaid; ``pay_link_cancel`` is the
   person's way to stop one. Both leave the attempt in *needs attention*.
   ``pay_links_resume`` queues again the links left *being created*.

Every state change writes an audit entry on the link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import Actor, audit_record
from core.money import to_minor_units
from core.queue import enqueue_on_commit
from exact.models import ExactAccount, ExactReceivable
from gocardless import errors
from gocardless.models import BillingRequest
from gocardless.onboarding import (
    billing_request_cancel,
    billing_request_create,
    billing_request_flow_create,
    billing_request_get,
)
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    PayLink,
    PayLinkState,
)
from reconciliation.collection.pay_link_email import pay_link_send
from reconciliation.customers.config import customer_settings_for, gocardless_client_for
from reconciliation.customers.models import CustomerLink
from reconciliation.customers.normalise import country_code
from tenants.activity import tenant_skip

logger = logging.getLogger(__name__)

# Instant Bank Pay: GBP for payers in the UK, EUR for payers in Germany, France and Ireland
# (GoCardless, "Take a one-off Instant bank payment"; docs/failures.md). Elsewhere the page
# sets up a mandate and collects the payment by Direct Debit.
INSTANT_COUNTRIES = {"GBP": {"GB"}, "EUR": {"DE", "FR", "IE"}}
PAID_STATUSES = ("confirmed", "paid_out")
# Audit actions: the generic verbs, read as "Payment link status changed" with the states
# before and after (tenants/audit_words.py); the message says what happened.
STATUS_CHANGED = "paylink.status_changed"
ATTEMPT_STATUS_CHANGED = "collectionattempt.status_changed"
UNPAID_STATUSES = ("failed", "cancelled", "charged_back")


def _audit(link: PayLink, *, actor: Actor, action: str, message: str, before=None, after=None):
    audit_record(
        actor=actor,
        action=action,
        tenant=link.tenant,
        obj=link,
        before=before,
        after=after,
        message=message,
    )


def _change(link: PayLink, *, actor: Actor, action: str, message: str, **changes) -> None:
    before = {k: str(getattr(link, k)) for k in changes}
    for name, value in changes.items():
        setattr(link, name, value)
    with transaction.atomic():
        link.save(update_fields=[*changes, "updated_at"])
        _audit(
            link,
            actor=actor,
            action=action,
            message=message,
            before=before,
            after={k: str(v) for k, v in changes.items()},
        )


def pay_link_key(attempt: CollectionAttempt) -> str:
    """``<receivable>/<attempt>.0``: the shape bookings read (``payment_owner``) naming the
    failed attempt the link stands in for; part 0 is never an instalment's (they count from
    1), so it cannot be a Direct Debit attempt's key."""
    return f"{attempt.receivable_exact_id}/{attempt.attempt_number}.0"


def _idempotency_key(tenant, key: str) -> str:
    digest = hashlib.sha256(f"{tenant.uuid}:{key}".encode()).hexdigest()[:40]
    return f"mlc-link-{digest}"


def _customer_email(attempt: CollectionAttempt) -> str:
    if attempt.account_exact_id is None:
        return ""
    email = (
        ExactAccount.objects.filter(tenant=attempt.tenant, exact_id=attempt.account_exact_id)
        .values_list("email", flat=True)
        .first()
    )
    return (email or "").strip()


def _still_open(attempt: CollectionAttempt) -> Decimal:
    """What the link asks for: the failed attempt's amount, never more than the invoice's
    open amount in our copy of Exact (a part paid by bank transfer meanwhile is not asked
    for again); 0 when the invoice is no longer open there."""
    receivable = (
        ExactReceivable.objects.filter(tenant=attempt.tenant, exact_id=attempt.receivable_exact_id)
        .only("outstanding", "is_fully_paid")
        .first()
    )
    if receivable is None or receivable.is_fully_paid:
        return Decimal("0")
    return min(attempt.amount, receivable.outstanding)


def pay_link_prepare(*, attempt: CollectionAttempt, rule: str, actor: Actor) -> PayLink | None:
    """Write the link for ``attempt`` and queue its issue; None when it cannot be sent (no
    e-mail address in Exact, the invoice no longer open there), so the caller leaves the
    attempt for a person. An invoice that
    already has an open link keeps that one (the customer is not e-mailed twice)."""
    existing = PayLink.objects.filter(
        tenant=attempt.tenant,
        receivable_exact_id=attempt.receivable_exact_id,
        state__in=(PayLinkState.CREATING, PayLinkState.SENT, PayLinkState.PAID),
    ).first()
    if existing is not None:
        return existing
    email = _customer_email(attempt)
    if not email:
        return None
    amount = _still_open(attempt)
    if amount <= 0:
        return None  # paid or credited in Exact since: nothing to ask for
    key = pay_link_key(attempt)
    try:
        with transaction.atomic():
            link = PayLink.objects.create(
                tenant=attempt.tenant,
                attempt=attempt,
                receivable_exact_id=attempt.receivable_exact_id,
                invoice_number=attempt.invoice_number,
                account_exact_id=attempt.account_exact_id,
                amount=amount,
                currency=attempt.currency,
                key=key,
                idempotency_key=_idempotency_key(attempt.tenant, key),
                email=email,
                rule=rule[:300],
            )
    except IntegrityError:
        # This attempt had a link before (expired or cancelled): a person decides now.
        return None
    _audit(
        link,
        actor=actor,
        action="paylink.created",
        message=f"payment link for invoice {attempt.invoice_number} to {email} ({rule})",
        after={"state": link.state, "amount": str(link.amount), "currency": link.currency},
    )
    enqueue_on_commit(
        "reconciliation.collection.pay_link_tasks.pay_link_issue_task", link.pk, group="collection"
    )
    return link


def _instant(link: PayLink) -> bool:
    countries = INSTANT_COUNTRIES.get(link.currency)
    if not countries:
        return False
    account = ExactAccount.objects.filter(
        tenant=link.tenant, exact_id=link.account_exact_id
    ).first()
    return country_code(account.country if account else "") in countries


def _customer_link(link: PayLink) -> CustomerLink | None:
    return (
        CustomerLink.objects.filter(tenant=link.tenant, exact_account_guid=link.account_exact_id)
        .select_related("gocardless_customer", "exact_account")
        .order_by("-pk")
        .first()
    )


def _billing_request_params(link: PayLink, *, instant: bool) -> dict:
    payment_request = {
        "amount": to_minor_units(link.amount, link.currency),
        "currency": link.currency,
        "description": f"Invoice {link.invoice_number}"
        if link.invoice_number is not None
        else "Invoice",
        "metadata": link.payment_metadata,
    }
    params: dict = {"payment_request": payment_request, "metadata": link.payment_metadata}
    if not instant:
        # No instant bank pay for this currency or country: the page sets up a mandate and
        # the payment is collected on it by Direct Debit.
        params["mandate_request"] = {"currency": link.currency}
    customer = _customer_link(link)
    if customer is not None and customer.gocardless_customer_id:
        params["links"] = {"customer": customer.gocardless_customer.gocardless_id}
    return params


def _flow_params(link: PayLink) -> dict:
    settings = customer_settings_for(tenant=link.tenant)
    customer = _customer_link(link)
    prefilled = {"email": link.email}
    if customer is not None and customer.exact_account_id and customer.exact_account.name:
        prefilled["company_name"] = customer.exact_account.name
    params = {
        "links": {"billing_request": link.billing_request_gocardless_id},
        "prefilled_customer": prefilled,
        "lock_currency": True,
    }
    if settings.redirect_uri:
        params["redirect_uri"] = settings.redirect_uri
    if settings.exit_uri:
        params["exit_uri"] = settings.exit_uri
    return params


def _failed(link: PayLink, *, actor: Actor, why: str) -> None:
    _change(
        link,
        actor=actor,
        action=STATUS_CHANGED,
        message=why,
        state=PayLinkState.FAILED,
        error=why[:2000],
    )
    _attempt_back_to_person(link, actor=actor, flag=f"Payment link not sent: {why}")


def _attempt_back_to_person(link: PayLink, *, actor: Actor, flag: str) -> None:
    attempt = CollectionAttempt.objects.select_related("tenant").get(pk=link.attempt_id)
    if attempt.state != AttemptState.PAY_LINK_SENT:
        return
    attempt_change(
        attempt,
        actor=actor,
        action="collection.attempt_needs_attention",
        message=flag,
        state=AttemptState.NEEDS_ATTENTION,
        flag=flag[:300],
    )


def pay_link_issue(*, link: PayLink, actor: Actor, client=None) -> PayLink:
    """Billing request, flow, e-mail; each step only once (a rerun picks up where a crash
    left it: the same idempotency keys, the ids already stored are not asked again)."""
    if link.state != PayLinkState.CREATING:
        return link
    if tenant_skip(link.tenant, job="payment link", what=f"payment link {link.pk}"):
        return link  # stays creating: issued once the tenant is active again
    client = client or gocardless_client_for(tenant=link.tenant)
    if client is None:
        _failed(link, actor=actor, why="GoCardless is not connected")
        return link
    if not link.billing_request_gocardless_id:
        instant = _instant(link)
        try:
            billing_request = billing_request_create(
                client=client,
                params=_billing_request_params(link, instant=instant),
                idempotency_key=f"{link.idempotency_key}-brq",
            )
        except errors.GoCardlessError as exc:
            _failed(link, actor=actor, why=f"GoCardless refused the billing request: {exc.message}")
            return link
        link.billing_request_gocardless_id = billing_request["id"]
        link.instant = instant
        link.save(update_fields=["billing_request_gocardless_id", "instant", "updated_at"])
    if not link.flow_gocardless_id:
        try:
            flow = billing_request_flow_create(
                client=client,
                params=_flow_params(link),
                idempotency_key=f"{link.idempotency_key}-flow",
            )
        except errors.InvalidStateError as exc:
            if "idempotent_creation_conflict" not in exc.reasons:
                _cancel_quietly(client, link.billing_request_gocardless_id)
                _failed(link, actor=actor, why=f"GoCardless refused the page: {exc.message}")
                return link
            # A flow made before a crash cannot be fetched (no GET for flows); a flow moves
            # no money, so a new one under a fresh key is safe.
            flow = billing_request_flow_create(
                client=client,
                params=_flow_params(link),
                idempotency_key=f"{link.idempotency_key}-flow-{timezone.now():%Y%m%d%H%M%S%f}",
            )
        except errors.GoCardlessError as exc:
            _cancel_quietly(client, link.billing_request_gocardless_id)
            _failed(link, actor=actor, why=f"GoCardless refused the page: {exc.message}")
            return link
        link.flow_gocardless_id = flow["id"]
        link.authorisation_url = flow.get("authorisation_url") or ""
        expires = flow.get("expires_at")
        link.expires_at = parse_datetime(expires) if expires else None
        link.save(
            update_fields=[
                "flow_gocardless_id",
                "authorisation_url",
                "expires_at",
                "updated_at",
            ]
        )
    try:
        pay_link_send(link=link)
    except Exception as exc:  # SMTP trouble: the page exists, a person can forward the link
        logger.warning("payment link %s not e-mailed: %s", link.pk, exc)
        _failed(link, actor=actor, why=f"e-mail not sent: {type(exc).__name__}: {exc}")
        return link
    _change(
        link,
        actor=actor,
        action=STATUS_CHANGED,
        message=f"e-mailed to {link.email}: {link.authorisation_url}",
        state=PayLinkState.SENT,
        sent_at=timezone.now(),
        error="",
    )
    return link


def _cancel_quietly(client, billing_request_id: str) -> None:
    try:
        billing_request_cancel(client=client, billing_request_id=billing_request_id)
    except errors.GoCardlessError as exc:  # nothing can be paid through it without a page
        logger.warning("could not cancel billing request %s: %s", billing_request_id, exc)


def _link_for_payment(*, tenant, payment) -> PayLink | None:
    payment_id = payment["id"] if isinstance(payment, dict) else payment.gocardless_id
    metadata = (payment.get("metadata") if isinstance(payment, dict) else payment.metadata) or {}
    found = PayLink.objects.filter(tenant=tenant, payment_gocardless_id=payment_id).first()
    if found is None and metadata.get("mlc_attempt"):
        found = PayLink.objects.filter(
            tenant=tenant, key=metadata["mlc_attempt"], payment_gocardless_id=""
        ).first()
    return found


def pay_link_payment_changed(*, tenant, payment, details: dict, actor: Actor) -> PayLink | None:
    """A payment made through one of our links changed: the link (and the failed attempt it
    stands in for) follow. Receiver body, inside the event's transaction: local writes."""
    link = _link_for_payment(tenant=tenant, payment=payment)
    if link is None:
        return None
    status = payment["status"] if isinstance(payment, dict) else payment.status
    payment_id = payment["id"] if isinstance(payment, dict) else payment.gocardless_id
    if status in PAID_STATUSES and link.state != PayLinkState.PAID:
        _change(
            link,
            actor=actor,
            action=STATUS_CHANGED,
            message=f"paid: payment {payment_id} {status}",
            state=PayLinkState.PAID,
            payment_gocardless_id=payment_id,
            payment_status=status,
        )
        attempt = CollectionAttempt.objects.select_related("tenant").get(pk=link.attempt_id)
        if attempt.state != AttemptState.PAID_BY_LINK:
            attempt_change(
                attempt,
                actor=actor,
                action=ATTEMPT_STATUS_CHANGED,
                message=f"Paid through the payment link (payment {payment_id})",
                state=AttemptState.PAID_BY_LINK,
                flag="",
            )
        return link
    if status in UNPAID_STATUSES and link.state in (PayLinkState.SENT, PayLinkState.PAID):
        cause = str(details.get("cause") or "")
        why = f"the payment made through the link {status}" + (f" ({cause})" if cause else "")
        _change(
            link,
            actor=actor,
            action=STATUS_CHANGED,
            message=why,
            state=PayLinkState.PAYMENT_FAILED,
            payment_gocardless_id=payment_id,
            payment_status=status,
            error=why,
        )
        attempt = CollectionAttempt.objects.select_related("tenant").get(pk=link.attempt_id)
        if attempt.state in (AttemptState.PAY_LINK_SENT, AttemptState.PAID_BY_LINK):
            attempt_change(
                attempt,
                actor=actor,
                action="collection.attempt_needs_attention",
                message=why,
                state=AttemptState.NEEDS_ATTENTION,
                flag=f"Payment link: {why}"[:300],
            )
        return link
    if link.payment_status != status or link.payment_gocardless_id != payment_id:
        link.payment_status = status
        link.payment_gocardless_id = payment_id
        link.save(update_fields=["payment_status", "payment_gocardless_id", "updated_at"])
    return link


RESUME_AFTER = dt.timedelta(minutes=10)


def pay_links_resume(*, now=None) -> int:
    """Queue the issue of links left *being created* (the task was lost, the process died
    between the calls, or the company was inactive) for active companies; the same keys make
    a rerun adopt what GoCardless already made. Returns how many were queued."""
    now = now or timezone.now()
    stuck = PayLink.objects.filter(
        state=PayLinkState.CREATING, updated_at__lt=now - RESUME_AFTER, tenant__is_active=True
    ).values_list("pk", flat=True)
    queued = 0
    for pk in stuck:
        enqueue_on_commit(
            "reconciliation.collection.pay_link_tasks.pay_link_issue_task", pk, group="collection"
        )
        queued += 1
    return queued


def _fulfilled_payment(link: PayLink) -> str | None:
    """The payment of the link's billing request if the customer completed the page (the
    mirror, else GoCardless asked once); "" when not fulfilled; None when unknown now."""
    mirror = BillingRequest.objects.filter(
        tenant=link.tenant, gocardless_id=link.billing_request_gocardless_id
    ).first()
    data = mirror.raw if mirror is not None and mirror.status == "fulfilled" else None
    if data is None:
        client = gocardless_client_for(tenant=link.tenant)
        if client is None:
            return None
        try:
            data = billing_request_get(
                client=client, billing_request_id=link.billing_request_gocardless_id
            )
        except errors.GoCardlessError as exc:
            logger.warning("payment link %s: billing request not read: %s", link.pk, exc)
            return None
        if data.get("status") != "fulfilled":
            return ""
    return (data.get("links") or {}).get("payment_request_payment") or ""


def pay_links_expire(*, now=None) -> int:
    """Links whose hosted page expired unpaid: closed, their attempts back to a person.

    A page completed just before it expired made a payment that may confirm days later (by
    Direct Debit): such a link is not expired; it keeps the payment and stays open."""
    now = now or timezone.now()
    expired = 0
    due = PayLink.objects.filter(
        state=PayLinkState.SENT, expires_at__lt=now, payment_gocardless_id=""
    ).select_related("tenant")
    for link in due:
        paid_with = _fulfilled_payment(link) if link.billing_request_gocardless_id else ""
        if paid_with is None:
            continue  # GoCardless could not be asked: the next sweep tries again
        with transaction.atomic():
            locked = PayLink.objects.select_for_update().select_related("tenant").get(pk=link.pk)
            if locked.state != PayLinkState.SENT or locked.payment_gocardless_id:
                continue
            if paid_with:
                locked.payment_gocardless_id = paid_with
                locked.save(update_fields=["payment_gocardless_id", "updated_at"])
                continue
            actor = Actor.system("collection")
            _change(
                locked,
                actor=actor,
                action=STATUS_CHANGED,
                message="the customer did not pay before the page expired",
                state=PayLinkState.EXPIRED,
            )
            _attempt_back_to_person(
                locked, actor=actor, flag="Payment link expired: the customer did not pay"
            )
            expired += 1
    return expired


class PayLinkRefused(Exception):
    """The link cannot be cancelled now; the message says why."""


def pay_link_cancel(*, link: PayLink, user, client=None) -> None:
    """A person stops a link (the invoice was settled otherwise, or the wrong customer)."""
    with transaction.atomic():
        link = PayLink.objects.select_for_update().select_related("tenant").get(pk=link.pk)
        if link.state not in (PayLinkState.CREATING, PayLinkState.SENT):
            raise PayLinkRefused(f"{link} is {link.get_state_display().lower()}")
        if link.billing_request_gocardless_id:
            client = client or gocardless_client_for(tenant=link.tenant)
            if client is None:
                raise PayLinkRefused("GoCardless is not connected")
            try:
                billing_request_cancel(
                    client=client, billing_request_id=link.billing_request_gocardless_id
                )
            except errors.GoCardlessError as exc:
                raise PayLinkRefused(
                    f"GoCardless did not cancel {link.billing_request_gocardless_id}: {exc.message}"
                ) from exc
        actor = Actor.for_user(user)
        _change(
            link,
            actor=actor,
            action=STATUS_CHANGED,
            message=f"cancelled by {user}",
            state=PayLinkState.CANCELLED,
        )
        _attempt_back_to_person(link, actor=actor, flag="Payment link cancelled by a person")
