"""Mandate state → Exact: make Exact agree with the link's current state (run as a task).

Per the tenant's settings: the account's payment condition (direct debit while a mandate is
active, the tenant's default once it stopped) and/or one ``cashflow/DirectDebitMandates``
record per GoCardless mandate reference (CancellationDate set when it stopped or was
replaced). The desired state is recomputed from the link every run, so runs are idempotent
and order does not matter; what Exact holds from us is kept in ``link.reflected``, updated
after every write, so a run that fails half-way still knows what it wrote. A failure is
stored on the link and retried with backoff by ``reflections_retry_due``. Audited either
way. Receivers only ask for a run (links.reflection_request); they never call Exact.

Nothing is written for an inactive tenant (tenants/activity.py): the link keeps its
reflection state, attempts and due time, and the sweep after reactivation writes it once.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from exact import account_writes
from gocardless.onboarding import mandate_get
from reconciliation.customers.config import (
    customer_settings_for,
    exact_client_for,
    gocardless_client_for,
)
from reconciliation.customers.models import CustomerLink, LinkState, ReflectionState
from tenants.activity import inactive_tenants_log, of_active_tenants, tenant_skip

REFLECTION_BACKOFF = (60, 300, 1800, 3600, 6 * 3600)


def link_reflect_into_exact(*, link: CustomerLink, api=None) -> str:
    """Make Exact show the link's mandate state. Never raises for a provider failure."""
    if tenant_skip(link.tenant, job="exact reflection", what=f"link {link.pk}"):
        return "tenant inactive"  # state, attempts and due time unchanged: the sweep retries
    settings = customer_settings_for(tenant=link.tenant)
    if not (settings.reflect_payment_condition or settings.reflect_mandate_record):
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.NONE, reflection_due_at=None
        )
        return "nothing configured"
    if link.exact_account_id is None:
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.NONE, reflection_due_at=None
        )
        return "exact account deleted"
    before = dict(link.reflected or {})
    actor = Actor.system("customers.exact_reflection")
    state = "active" if _desired_active(link) else "stopped"
    try:
        api = api or exact_client_for(tenant=link.tenant)
        if api is None:
            raise RuntimeError("Exact Online is not connected (or paused)")
        done = _reflect(link, settings, api)
    except Exception as exc:  # stored and retried; the cause is in the audit entry
        _reflection_failed(link, exc, actor=actor, before=before, state=state)
        return "failed"
    _reflection_done(link, done, actor=actor, before=before, state=state)
    return "done: " + ("; ".join(done) or "already in line")


def reflections_retry_due(*, now=None, limit: int = 200) -> int:
    """Periodic: reflections that are due, of active tenants (the others wait as they are)."""
    now = now or timezone.now()
    due = CustomerLink.objects.filter(
        reflection_state__in=[ReflectionState.PENDING, ReflectionState.FAILED],
        reflection_due_at__lte=now,
    )
    inactive_tenants_log(due, job="exact reflections sweep")
    links = (
        of_active_tenants(due)
        .select_related("tenant", "exact_account", "mandate")
        .order_by("reflection_due_at")[:limit]
    )
    count = 0
    for link in links:
        link_reflect_into_exact(link=link)
        count += 1
    return count


def _reflection_failed(
    link: CustomerLink, exc: Exception, *, actor: Actor, before: dict, state: str
) -> None:
    attempts = link.reflection_attempts + 1
    delay = REFLECTION_BACKOFF[min(attempts - 1, len(REFLECTION_BACKOFF) - 1)]
    with transaction.atomic():
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.FAILED,
            reflection_error=f"{type(exc).__name__}: {exc}"[:2000],
            reflection_attempts=attempts,
            reflection_due_at=timezone.now() + timedelta(seconds=delay),
            reflected=link.reflected,  # what did get written stays known
        )
        audit_record(
            actor=actor,
            action="customerlink.exact_reflection_failed",
            tenant=link.tenant,
            obj=link,
            before=before,
            after=link.reflected,
            message=f"writing mandate state '{state}' into Exact failed (attempt "
            f"{attempts}, retry in {delay} s): {type(exc).__name__}: {exc}"[:2000],
        )


def _reflection_done(
    link: CustomerLink, done: list[str], *, actor: Actor, before: dict, state: str
) -> None:
    with transaction.atomic():
        CustomerLink.objects.filter(pk=link.pk).update(
            reflection_state=ReflectionState.DONE,
            reflection_error="",
            reflection_attempts=0,
            reflection_due_at=None,
            reflected=link.reflected,
        )
        if done:
            audit_record(
                actor=actor,
                action="customerlink.exact_reflected",
                tenant=link.tenant,
                obj=link,
                before=before,
                after=link.reflected,
                message=f"Exact shows mandate state '{state}': {'; '.join(done)}",
            )


def _desired_active(link: CustomerLink) -> bool:
    return (
        link.state == LinkState.MATCHED
        and not link.stop_reason
        and link.mandate_id is not None
        and link.mandate.status == "active"
    )


def _mandate_reference(link: CustomerLink) -> str:
    mandate = link.mandate
    if mandate.reference:
        return mandate.reference
    client = gocardless_client_for(tenant=link.tenant)
    if client is None:
        raise RuntimeError("GoCardless is not connected: cannot read the mandate reference")
    return mandate_get(client=client, mandate_id=mandate.gocardless_id).get("reference") or ""


def _reflect(link: CustomerLink, settings, api) -> list[str]:
    """Bring Exact in line; returns what was written. Updates ``link.reflected`` as it goes
    (``reflected`` and ``records`` are shared with the helpers, which write into them)."""
    reflected = dict(link.reflected or {})
    records: dict = dict(reflected.get("mandates") or {})
    done: list[str] = []
    active = _desired_active(link)
    today = timezone.localdate()
    if settings.reflect_payment_condition:
        done += _payment_condition_reflect(
            link, settings, api, active=active, reflected=reflected, records=records
        )
    if settings.reflect_mandate_record:
        done += _mandate_records_reflect(
            link, api, active=active, today=today, reflected=reflected, records=records
        )
    link.reflected = {**reflected, "mandates": records}
    return done


def _payment_condition_reflect(
    link: CustomerLink, settings, api, *, active: bool, reflected: dict, records: dict
) -> list[str]:
    """Direct debit while active; the default once stopped, but only over our own code (a
    condition someone changed by hand is left alone)."""
    current = reflected.get("payment_condition") or (
        link.exact_account.payment_condition if link.exact_account_id else ""
    )
    target = ""
    if active and settings.direct_debit_condition:
        target = settings.direct_debit_condition
    elif (
        not active
        and settings.default_payment_condition
        and (current == settings.direct_debit_condition)
    ):
        target = settings.default_payment_condition
    mirrored = link.exact_account.payment_condition if link.exact_account_id else ""
    # Write when we have not, or when Exact (as last synced) shows something else —
    # someone may have changed it by hand. A stale mirror costs one idempotent PUT.
    if target and (target != reflected.get("payment_condition") or mirrored != target):
        account_writes.account_payment_condition_set(
            api=api, account_id=str(link.exact_account_guid), condition=target
        )
        reflected["payment_condition"] = target
        link.reflected = {**reflected, "mandates": records}
        return [f"payment condition {target}"]
    return []


def _mandate_records_reflect(
    link: CustomerLink, api, *, active: bool, today: date, reflected: dict, records: dict
) -> list[str]:
    """The active mandate's record open; every other record we keep cancelled."""
    done: list[str] = []
    keep = _mandate_reference(link) if active else ""
    if keep:
        done += _mandate_record_open(link, api, reference=keep, today=today, records=records)
        link.reflected = {**reflected, "mandates": records}
    for reference, record in records.items():
        if reference == keep or record.get("cancelled"):
            continue
        account_writes.direct_debit_mandate_cancellation_set(
            api=api, mandate_id=record["id"], cancelled_on=today
        )
        record["cancelled"] = True
        link.reflected = {**reflected, "mandates": records}
        done.append(f"mandate record {reference} cancelled")
    return done


def _mandate_record_open(
    link: CustomerLink, api, *, reference: str, today: date, records: dict
) -> list[str]:
    """Find the record by its reference before creating one (a lost answer must not make a
    second record); reopen it when it was cancelled."""
    done: list[str] = []
    record = records.get(reference)
    if record is None:
        found = account_writes.direct_debit_mandate_find(api=api, reference=reference)
        if found is None:
            found = _mandate_record_create(link, api, reference=reference, today=today)
            done.append(f"mandate record {reference} created")
        record = {"id": str(found["ID"]), "cancelled": bool(found.get("CancellationDate"))}
        records[reference] = record
    if record.get("cancelled"):
        account_writes.direct_debit_mandate_cancellation_set(
            api=api, mandate_id=record["id"], cancelled_on=None
        )
        record["cancelled"] = False
        done.append(f"mandate record {reference} reopened")
    return done


def _mandate_record_create(link: CustomerLink, api, *, reference: str, today: date) -> dict:
    account_id = str(link.exact_account_guid)
    bank_account = account_writes.account_bank_account_id(api=api, account_id=account_id)
    if bank_account is None:
        raise RuntimeError(
            "the Exact account has no bank account (crm/BankAccounts) to "
            "attach the direct debit mandate to"
        )
    created_at = link.mandate.gocardless_created_at
    return account_writes.direct_debit_mandate_create(
        api=api,
        account_id=account_id,
        bank_account_id=bank_account,
        reference=reference,
        description=f"GoCardless {link.mandate.gocardless_id} ({link.mandate.scheme})",
        signature_date=created_at.date() if created_at else today,
    )
