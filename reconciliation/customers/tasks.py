"""django-q2 tasks for customers and mandates: thin wrappers that load rows and call services.

Receivers and services queue these by dotted path with ``core.queue.enqueue_on_commit``, so a
task never runs before the transaction that asked for it has committed, and no service
module imports this one.
"""

from __future__ import annotations

import logging

from core.audit import Actor
from reconciliation.customers.customer_refresh import link_customer_refresh
from reconciliation.customers.exact_push import links_push_exact_changes
from reconciliation.customers.exact_reflection import link_reflect_into_exact, reflections_retry_due
from reconciliation.customers.invitations import invitations_tick
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import CustomerLink
from reconciliation.customers.registration import registration_run_all
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def link_reflect_task(link_id: int) -> str:
    link = CustomerLink.objects.select_related("tenant").filter(pk=link_id).first()
    if link is None:
        return "no link"
    return link_reflect_into_exact(link=link)


def reflections_sweep_task() -> int:
    """Periodic: Exact writes that failed (or were never run) and are due again."""
    return reflections_retry_due()


def link_customer_refresh_task(link_id: int) -> str:
    link = CustomerLink.objects.select_related("tenant").filter(pk=link_id).first()
    if link is None:
        return "no link"
    return link_customer_refresh(link=link)


def customers_match_task(tenant_id: int) -> dict:
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return {}
    return customers_match(tenant=tenant, actor=Actor.schedule("customers.match")).as_dict()


def registration_run_task(tenant_id: int | None = None) -> dict:
    return registration_run_all(tenant_id=tenant_id, actor=Actor.schedule("customers.register"))


def invitations_tick_task() -> dict:
    return invitations_tick(actor=Actor.schedule("customers.invitations"))


def links_push_exact_changes_task(tenant_id: int) -> dict:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return {}
    return links_push_exact_changes(tenant=tenant, actor=Actor.system("exact.sync"))
