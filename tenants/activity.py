"""Deactivated tenants get no outbound work: the one place that says "only active tenants".

``tenants deactivate`` (or unticking *Active* in the admin) stops every job that acts for the
tenant: no e-mails to its customers, no Exact Online or GoCardless calls from jobs, no
bookings posted. Nothing is dropped: the rows the jobs would have worked on keep their state
(bookings stay pending, reflections keep their retry state, invitations stay open) and the
next run after ``tenants activate`` picks them up once. Periodic jobs select their rows with
``of_active_tenants``; services that act on one tenant's row ask ``tenant_skip`` first.
"""

from __future__ import annotations

import logging

from django.db.models import QuerySet

logger = logging.getLogger(__name__)

WHAT_DEACTIVATION_STOPS = (
    "An inactive tenant gets no outbound work: no invitation e-mails or reminders to its "
    "customers, no Exact Online sync, no bookings or mandate states written into Exact, no "
    "GoCardless polling, webhooks or collection runs. Pending work keeps its state and resumes "
    "once the tenant is activated again."
)


def of_active_tenants(queryset: QuerySet, *, path: str = "tenant") -> QuerySet:
    """The rows of ``queryset`` (a tenant-owned model) whose tenant is active."""
    return queryset.filter(**{f"{path}__is_active": True})


def of_inactive_tenants(queryset: QuerySet, *, path: str = "tenant") -> QuerySet:
    return queryset.filter(**{f"{path}__is_active": False})


def tenant_skip(tenant, *, job: str, what: str = "") -> bool:
    """True (with one INFO line) when ``tenant`` is inactive: the caller then does nothing
    and changes no state, so the work is done once after the tenant is activated again."""
    if tenant is None or tenant.is_active:
        return False
    logger.info(
        "%s skipped for inactive tenant %s%s", job, tenant.slug, f" ({what})" if what else ""
    )
    return True


def inactive_tenants_log(queryset: QuerySet, *, job: str, path: str = "tenant") -> int:
    """One INFO line for a periodic job: how many rows of inactive tenants it left alone
    (rows selected with the same filter as the job's, but of inactive tenants)."""
    skipped = of_inactive_tenants(queryset, path=path)
    count = skipped.count()
    if count:
        slugs = sorted(set(skipped.order_by().values_list(f"{path}__slug", flat=True)))
        logger.info(
            "%s skipped %d item(s) of inactive tenant(s) %s", job, count, ", ".join(slugs)
        )
    return count
