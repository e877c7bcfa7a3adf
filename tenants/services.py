"""Tenant provisioning services (used by the CLI, the admin and the demo)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils.text import slugify

from core.audit import Actor, audit_record, model_snapshot, snapshot_diff
from tenants.models import WEEKDAY_NAMES, Tenant

EDITABLE_FIELDS = (
    "name",
    "slug",
    "time_zone",
    "collection_mode",
    "lead_days",
    "minimum_amount",
    "currencies",
    "max_payments_per_run",
    "charge_date_policy",
    "over_maximum_policy",
    "retry_count",
    "retry_spacing_days",
    "use_success_plus",
    "collect_new_invoices",
    "collection_hour",
    "schedule_kind",
    "schedule_weekdays",
    "schedule_month_days",
)


def parse_currencies(value: str) -> list[str]:
    return [c.strip().upper() for c in value.split(",") if c.strip()]


def parse_weekdays(value: str) -> list[int]:
    """'mon,thu' (or 'Monday, Thursday') → [0, 3], Python's weekday numbers as stored."""
    names = {}
    for number, name in enumerate(WEEKDAY_NAMES):
        names[name.lower()] = names[name[:3].lower()] = number
    days = set()
    for part in (p.strip().lower() for p in value.split(",") if p.strip()):
        if part not in names:
            raise ValidationError({"schedule_weekdays": [f"{part!r} is not a weekday name."]})
        days.add(names[part])
    return sorted(days)


def parse_month_days(value: str) -> list[int]:
    """'1, 15' → [1, 15]; the model says which numbers are days of a month."""
    try:
        return sorted({int(p) for p in value.split(",") if p.strip()})
    except ValueError:
        raise ValidationError(
            {"schedule_month_days": [f"{value!r}: give days as numbers, e.g. 1,15."]}
        ) from None


def parse_amount(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise ValidationError(f"{value!r} is not an amount.") from exc


@transaction.atomic
def tenant_create(*, name: str, actor: Actor, slug: str = "", **fields) -> Tenant:
    tenant = Tenant(name=name, slug=slug or slugify(name)[:64], **fields)
    tenant.full_clean()
    tenant.save()
    audit_record(
        actor=actor,
        action="tenant.created",
        tenant=tenant,
        obj=tenant,
        after=model_snapshot(tenant, fields=[*EDITABLE_FIELDS, "is_active"]),
    )
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, actor: Actor, **changes) -> Tenant:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))}.")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = model_snapshot(tenant, fields=list(EDITABLE_FIELDS))
    for key, value in changes.items():
        setattr(tenant, key, value)
    tenant.full_clean()
    tenant.save()
    before, after = snapshot_diff(before, model_snapshot(tenant, fields=list(EDITABLE_FIELDS)))
    if after:
        audit_record(
            actor=actor,
            action="tenant.changed",
            tenant=tenant,
            obj=tenant,
            before=before,
            after=after,
        )
    return tenant


@transaction.atomic
def tenant_set_active(*, tenant: Tenant, active: bool, actor: Actor, reason: str = "") -> Tenant:
    """Deactivating stops all outbound work for the tenant (WHAT_DEACTIVATION_STOPS in
    tenants/activity.py); pending work keeps its state and resumes after activation.

    Nothing to reschedule: every periodic job is an installation-wide sweep that skips
    inactive tenants (tenants/activity.py), so the flag is all there is to change."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.is_active == active:
        return tenant
    tenant.is_active = active
    tenant.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=actor,
        action="tenant.activated" if active else "tenant.deactivated",
        tenant=tenant,
        obj=tenant,
        before={"is_active": not active},
        after={"is_active": active},
        message=reason,
    )
    return tenant


def _connection_summary(tenant: Tenant, accessor: str) -> dict:
    try:
        connection = getattr(tenant, accessor)
    except ObjectDoesNotExist:
        return {"status": "not_configured"}
    return {"status": connection.status}


def tenant_describe(*, tenant: Tenant) -> dict:
    """A JSON-safe description (no secrets) for the CLI and operators."""
    return {
        "name": tenant.name,
        "slug": tenant.slug,
        "uuid": str(tenant.uuid),
        "time_zone": tenant.time_zone,
        "active": tenant.is_active,
        "collection_policy": {
            "mode": tenant.collection_mode,
            "lead_days": tenant.lead_days,
            "minimum_amount": str(tenant.minimum_amount),
            "currencies": tenant.currencies,
        },
        "webhook_urls": {
            "exact": tenant.webhook_url("exact"),
            "gocardless": tenant.webhook_url("gocardless"),
        },
        "connections": {
            "exact": _connection_summary(tenant, "exact_connection"),
            "gocardless": _connection_summary(tenant, "gocardless_connection"),
        },
        "members": tenant.memberships.count(),
        "created_at": tenant.created_at.isoformat(),
    }
