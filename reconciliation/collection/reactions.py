"""How attempts follow what happens to their payments, mandates and invoices.

- Payment confirmed / paid out → the attempt says so.
- Payment failed (also late, after confirmation) → the tenant's retry policy: a retry on a
  date, or *needs attention* when retries are used up; with Success+ GoCardless retries and
  the attempt waits. A failure the customer disputes and every chargeback → *needs attention*
  (never retried automatically: collecting again what a customer disputed is how a connector
  loses a merchant's Direct Debit facility).
- Payment cancelled at GoCardless (not by us) → *needs attention*.
- Mandate cancelled / failed / expired / blocked → its in-flight attempts are flagged.
- Exact invoice credited, reduced or paid by other means while the payment is still
  ``pending_submission`` → the payment is cancelled and, when something remains to collect,
  collected again for the new amount; if the payment already left (submitted), a person is
  asked to look (a refund may be due).

Receivers of GoCardless signals run inside the event-processing transaction: local writes
only here. Exact-side checks run as a task after each receivables sync.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core.audit import Actor
from core.calendars import tenant_today
from gocardless import errors
from gocardless.actors import actor_for_event
from reconciliation.collection.changes import attempt_change
from reconciliation.collection.models import AttemptState, CollectionAttempt, RunTrigger
from reconciliation.customers.selectors import STOPPED_MANDATE_STATUSES
from tenants.alerts import admin_url, alert_new_objects
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# States a payment event may still move (final states are left alone).
_LIVE_STATES = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
)
_NEVER_RETRIED = ("authorisation_disputed", "charged_back", "refund_requested")


def attempt_for_payment(*, tenant, payment) -> CollectionAttempt | None:
    """The attempt that created ``payment`` (a mirror row or the API's dict), if ours.

    By payment id, or — when a crash lost the id before we saved it — by the attempt key we
    put in the payment's metadata.
    """
    payment_id = payment["id"] if isinstance(payment, dict) else payment.gocardless_id
    metadata = (payment.get("metadata") if isinstance(payment, dict) else payment.metadata) or {}
    found = CollectionAttempt.objects.filter(
        tenant=tenant, payment_gocardless_id=payment_id
    ).first()
    if found is None and metadata.get("mlc_attempt"):
        found = CollectionAttempt.objects.filter(tenant=tenant, key=metadata["mlc_attempt"]).first()
        if found is not None and not found.payment_gocardless_id:
            # A crash lost the id between the create and our save: adopt the payment now.
            found.payment_gocardless_id = payment_id
            found.save(update_fields=["payment_gocardless_id", "updated_at"])
    return found


def _set(attempt: CollectionAttempt, actor: Actor, action: str, message: str, **changes):
    attempt_change(attempt, actor=actor, action=action, message=message, **changes)


def _failure(attempt: CollectionAttempt, *, cause: str, details: dict, actor: Actor, status):
    tenant = attempt.tenant
    description = (details.get("description") or "")[:2000]
    common = {"payment_status": status, "failure_cause": cause[:100]}
    if status == "charged_back" or cause in _NEVER_RETRIED:
        _set(
            attempt,
            actor,
            "collection.attempt_needs_attention",
            f"Payment {status} ({cause or 'no cause given'}): not retried automatically",
            state=AttemptState.NEEDS_ATTENTION,
            failure_description=description,
            flag="Charged back by the customer" if status == "charged_back" else "Disputed",
            **common,
        )
        return
    if tenant.use_success_plus and details.get("will_attempt_retry"):
        # GoCardless resubmits the same payment; the attempt stays with it.
        _set(
            attempt,
            actor,
            "collection.attempt_failed_success_plus",
            f"Payment failed ({cause}); GoCardless Success+ retries it",
            state=AttemptState.SUBMITTED,
            failure_description=description,
            flag="Failed once; GoCardless Success+ retries it",
            **common,
        )
        return
    if (
        attempt.parts == 1
        and not tenant.use_success_plus
        and (attempt.attempt_number <= tenant.retry_count)
    ):
        retry_on = tenant_today(tenant) + dt.timedelta(days=tenant.retry_spacing_days)
        _set(
            attempt,
            actor,
            "collection.attempt_retry_scheduled",
            f"Payment failed ({cause or 'no cause given'}); retry on {retry_on.isoformat()}",
            state=AttemptState.RETRY_SCHEDULED,
            next_retry_on=retry_on,
            failure_description=description,
            **common,
        )
        return
    why = (
        "instalment failed"
        if attempt.parts > 1
        else "retries used up"
        if not tenant.use_success_plus
        else "GoCardless will not retry"
    )
    _set(
        attempt,
        actor,
        "collection.attempt_needs_attention",
        f"Payment failed ({cause or 'no cause given'}); {why}",
        state=AttemptState.NEEDS_ATTENTION,
        failure_description=description,
        flag=f"Payment failed: {why}",
        **common,
    )


def _mandate_status(attempt: CollectionAttempt) -> str:
    from gocardless.models import Mandate

    return (
        Mandate.objects.filter(tenant=attempt.tenant, gocardless_id=attempt.mandate_gocardless_id)
        .values_list("status", flat=True)
        .first()
        or ""
    )


def attempt_payment_changed(
    *, attempt: CollectionAttempt, status: str, details: dict, actor: Actor
) -> None:
    """Apply a payment's new status (from a webhook/poll, or an adopted payment)."""
    if attempt.state not in _LIVE_STATES and not (
        attempt.state == AttemptState.RETRY_SCHEDULED and status == "charged_back"
    ):
        # Final or already handled by a person: record the status only.
        if attempt.payment_status != status:
            attempt.payment_status = status
            attempt.save(update_fields=["payment_status", "updated_at"])
        return
    cause = str(details.get("cause") or "")
    if status == "confirmed":
        _set(
            attempt,
            actor,
            "collection.attempt_confirmed",
            "Payment confirmed",
            state=AttemptState.CONFIRMED,
            payment_status=status,
        )
    elif status == "paid_out":
        _set(
            attempt,
            actor,
            "collection.attempt_paid_out",
            "Payment paid out",
            state=AttemptState.PAID_OUT,
            payment_status=status,
        )
    elif status in ("failed", "charged_back"):
        _failure(attempt, cause=cause, details=details, actor=actor, status=status)
    elif status == "cancelled":
        mandate = _mandate_status(attempt)
        why = (
            f"Mandate {mandate}: GoCardless cancels its pending payments"
            if mandate in STOPPED_MANDATE_STATUSES
            else "Payment cancelled at GoCardless (not by this app)"
        )
        _set(
            attempt,
            actor,
            "collection.attempt_needs_attention",
            why,
            state=AttemptState.NEEDS_ATTENTION,
            payment_status=status,
            failure_cause=cause[:100],
            flag=why,
        )
    elif attempt.state == AttemptState.PENDING and status:
        _set(
            attempt,
            actor,
            "collection.payment_created",
            "Payment found at GoCardless",
            state=AttemptState.SUBMITTED,
            payment_status=status,
        )


def payment_signal_handle(*, tenant, payment, event) -> None:
    """Receiver body for the payment status signals."""
    attempt = attempt_for_payment(tenant=tenant, payment=payment)
    if attempt is None:
        return  # not a payment we created
    details = {}
    if event is not None and event.action in ("failed", "charged_back", "late_failure_settled"):
        details = event.details or {}
    actor = actor_for_event(event, without_event="collection")
    attempt_payment_changed(attempt=attempt, status=payment.status, details=details, actor=actor)


def mandate_stopped_handle(*, tenant, mandate, event) -> int:
    """Flag the in-flight attempts of a mandate that can no longer be charged.

    GoCardless cancels the mandate's pending payments too; whichever event is processed
    first, the attempt ends up in *needs attention* naming the mandate as the reason.
    """
    from django.db.models import Q

    flagged = 0
    why = f"Mandate {mandate.status}: GoCardless cancels its pending payments"
    for attempt in CollectionAttempt.objects.filter(
        Q(state__in=(AttemptState.PENDING, AttemptState.SUBMITTED, AttemptState.RETRY_SCHEDULED))
        | Q(state=AttemptState.NEEDS_ATTENTION, payment_status="cancelled"),
        tenant=tenant,
        mandate_gocardless_id=mandate.gocardless_id,
    ).select_related("tenant"):
        if attempt.flag == why:
            continue
        _set(
            attempt,
            actor_for_event(event, without_event="collection"),
            "collection.attempt_needs_attention",
            f"Mandate {mandate.gocardless_id} {mandate.status}",
            state=AttemptState.NEEDS_ATTENTION,
            flag=why,
        )
        flagged += 1
    return flagged


# --- Exact side: invoices that changed under a payment ----------------------------------------


def _payment_status(attempt: CollectionAttempt) -> str:
    from gocardless.models import Payment

    mirrored = (
        Payment.objects.filter(tenant=attempt.tenant, gocardless_id=attempt.payment_gocardless_id)
        .values_list("status", flat=True)
        .first()
    )
    return mirrored or attempt.payment_status


def attempts_check_against_exact(*, tenant, client=None) -> dict[str, int]:
    """After a receivables sync: cancel or flag payments whose invoice changed under them.

    The amount an in-flight attempt may still collect is what its invoice has outstanding,
    capped by what the customer owes net of credit notes and of the other money on its way
    (the same rule the selection uses).
    """
    from exact.models import ExactReceivable
    from reconciliation.customers.config import gocardless_client_for

    counts = {"checked": 0, "cancelled": 0, "flagged": 0, "recollect": 0}
    in_flight = list(
        CollectionAttempt.objects.filter(tenant=tenant, state=AttemptState.SUBMITTED)
        .exclude(payment_gocardless_id="")
        .select_related("tenant")
    )
    if not in_flight:
        return counts
    open_items = {
        r.exact_id: r
        for r in ExactReceivable.objects.filter(tenant=tenant, is_fully_paid=False).only(
            "exact_id", "outstanding", "account_exact_id", "currency", "kind"
        )
    }
    balance: dict = defaultdict(Decimal)
    for r in open_items.values():
        balance[(r.account_exact_id, r.currency)] += r.outstanding
    on_its_way: dict = defaultdict(Decimal)
    for a in CollectionAttempt.objects.filter(
        tenant=tenant,
        receivable_exact_id__in=list(open_items),
        state__in=(
            AttemptState.PENDING,
            AttemptState.SUBMITTED,
            AttemptState.CONFIRMED,
            AttemptState.PAID_OUT,
        ),
    ).only("account_exact_id", "currency", "amount"):
        on_its_way[(a.account_exact_id, a.currency)] += a.amount

    recollect = []
    actor = Actor.system("collection.exact-check")
    for attempt in in_flight:
        counts["checked"] += 1
        item = open_items.get(attempt.receivable_exact_id)
        key = (attempt.account_exact_id, attempt.currency)
        if item is None:
            allowed = Decimal("0")
            why = "invoice closed in Exact (paid by other means or credited)"
        else:
            others = on_its_way[key] - attempt.amount
            allowed = min(item.outstanding, balance[key] - others)
            why = f"invoice now needs {max(allowed, Decimal('0'))} instead of {attempt.amount}"
        if attempt.parts > 1:
            allowed_total = allowed  # instalments: compare the whole attempt group below
            group_total = sum(
                CollectionAttempt.objects.filter(
                    tenant=tenant,
                    receivable_exact_id=attempt.receivable_exact_id,
                    attempt_number=attempt.attempt_number,
                ).values_list("amount", flat=True),
                Decimal("0"),
            )
            if allowed_total >= group_total:
                continue
        elif allowed >= attempt.amount:
            continue
        status = _payment_status(attempt)
        if status == "pending_submission":
            client = client or gocardless_client_for(tenant=tenant)
            try:
                if client is None:
                    raise errors.GoCardlessError("GoCardless is not connected")
                client.payment_cancel(attempt.payment_gocardless_id)
            except errors.AuthError:
                raise
            except errors.GoCardlessError as exc:
                with transaction.atomic():
                    _set(
                        attempt,
                        actor,
                        "collection.attempt_needs_attention",
                        f"{why}; cancelling failed: {exc}",
                        state=AttemptState.NEEDS_ATTENTION,
                        flag=f"Invoice changed; payment could not be cancelled ({why})"[:300],
                    )
                counts["flagged"] += 1
                continue
            with transaction.atomic():
                _set(
                    attempt,
                    actor,
                    "collection.attempt_superseded",
                    f"Payment {attempt.payment_gocardless_id} cancelled: {why}",
                    state=AttemptState.SUPERSEDED,
                    payment_status="cancelled",
                    flag=why[:300],
                )
            counts["cancelled"] += 1
            if allowed > 0:
                recollect.append(attempt.receivable_exact_id)
        else:
            with transaction.atomic():
                _set(
                    attempt,
                    actor,
                    "collection.attempt_needs_attention",
                    f"{why}, but payment is already {status}: a refund may be due",
                    state=AttemptState.NEEDS_ATTENTION,
                    flag=f"Invoice changed after the payment left ({status}); refund?"[:300],
                )
            counts["flagged"] += 1
    if recollect:
        counts["recollect"] = len(recollect)
        from reconciliation.collection.runs import RunRefused, run_start

        try:
            run_start(
                tenant=tenant, trigger=RunTrigger.CHANGE, only_receivables=recollect, client=client
            )
        except RunRefused as exc:
            logger.info("not re-collecting for %s: %s", tenant, exc)
    return counts


# --- the daily needs-attention e-mail ---------------------------------------------------------

DIGEST_HOUR = 8  # local hour from which a tenant's daily e-mail may go out


def attention_digests_send(*, now: dt.datetime | None = None) -> int:
    """Once a day per active tenant (from ``DIGEST_HOUR`` local time), one e-mail to its
    administrators listing the attempts in *needs attention* that no earlier e-mail listed
    (charged back, disputed, refused by GoCardless, retries used up, mandate stopped with a
    payment in flight, invoice changed after submission...). Attempts can land there by the
    hundred (a mandate wave, a bank's bulk chargebacks), so never one e-mail per attempt.
    "Already e-mailed" and "already sent today" are read from the audit trail
    (tenants/alerts.py). Returns how many attempts were listed."""
    now = now or timezone.now()
    tenants = Tenant.objects.filter(
        is_active=True, collection_attempts__state=AttemptState.NEEDS_ATTENTION
    ).distinct()
    listed = 0
    for tenant in tenants:
        local = now.astimezone(tenant.zone)
        if local.hour < DIGEST_HOUR:
            continue
        listed += alert_new_objects(
            tenant=tenant,
            candidates=CollectionAttempt.objects.filter(
                tenant=tenant, state=AttemptState.NEEDS_ATTENTION
            ).order_by("-updated_at", "-pk"),
            subject=lambda n: f"{n} collection(s) need attention",
            what=(
                "These direct-debit collections stopped and will not be collected again "
                "automatically. Each needs a decision by a person:"
            ),
            line=lambda a: (
                f"Invoice {a.invoice_number or '?'}, {a.account_label or 'unknown customer'}, "
                f"{a.amount} {a.currency}: {a.flag or a.failure_cause or 'see the attempt'}"
            ),
            todo=(
                "open the collections below and, for each, choose Retry now (collect again), "
                'Cancel… or Mark resolved… (settled in another way). Talk to the customer '
                "before retrying a charged-back or disputed payment."
            ),
            link=admin_url(
                "admin:collection_collectionattempt_changelist",
                query=f"state={AttemptState.NEEDS_ATTENTION}",
            ),
            quiet_since=local.replace(hour=0, minute=0, second=0, microsecond=0),
            kind="collection.needs_attention",
        )
    return listed
