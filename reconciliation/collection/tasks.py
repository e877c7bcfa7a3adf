"""django-q2 tasks for the collection engine: thin wrappers that load rows and call services.

Receivers and services queue these by dotted path with ``core.queue.enqueue_on_commit``, so a
task never runs before the transaction that asked for it has committed.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def _tenant(tenant_id: int):
    from tenants.models import Tenant

    return Tenant.objects.filter(pk=tenant_id, is_active=True).first()


def run_task(tenant_id: int, trigger: str = "schedule") -> str:
    from reconciliation.collection.runs import RunRefused, run_start

    tenant = _tenant(tenant_id)
    if tenant is None:
        return "no such active tenant"
    try:
        run = run_start(tenant=tenant, trigger=trigger)
    except RunRefused as exc:
        return str(exc)
    return f"run {run.pk}: {run.state}"


def new_invoices_task(tenant_id: int) -> str:
    """An Exact webhook brought new invoices: collect them now when the policy says so."""
    tenant = _tenant(tenant_id)
    if tenant is None or not tenant.collect_new_invoices:
        return "not collecting new invoices on webhooks"
    return run_task(tenant_id, "webhook")


def attempts_check_task(tenant_id: int) -> dict:
    from reconciliation.collection.invoice_changes import attempts_check_against_exact

    tenant = _tenant(tenant_id)
    if tenant is None:
        return {}
    return attempts_check_against_exact(tenant=tenant)


def queued_run_task(run_id: int) -> str:
    """A run queued from the admin (*Approve*, *Collect now*): carry it out."""
    from reconciliation.collection.runs import queued_run_execute

    return queued_run_execute(run_id)


def runs_due_task() -> list[str]:
    """Periodic: resume the live runs whose process died mid-run, resend the payments whose
    outcome was unknown, hand out again the queued runs whose task never started, then queue
    the scheduled run of every tenant whose schedule has a slot due (one run per slot,
    however many clusters sweep: ``scheduled_runs.scheduled_runs_start``)."""
    from reconciliation.collection.runs import (
        dead_runs_resume,
        pending_attempts_resend,
        queued_runs_resume,
    )
    from reconciliation.collection.scheduled_runs import scheduled_runs_start

    said = dead_runs_resume()
    said += pending_attempts_resend()
    said += [f"queued run {pk} handed to the workers again" for pk in queued_runs_resume()]
    return said + scheduled_runs_start()


def attention_digest_task() -> int:
    """Periodic: the daily e-mail of what is new in *needs attention*, per tenant."""
    from reconciliation.collection.attention import attention_digests_send

    return attention_digests_send()
