"""How any page names a GoCardless plan and shows its next payments: "Subscription: Gym
membership" / "Instalment plan: Kitchen" for a payment a plan created (``plan_label``,
``plan_link``, ``plan_names`` for a page of payments at once), and a plan's upcoming payments
as dates in words with their amounts (``upcoming_rows``, ``upcoming_list``). Used by the
plans' own admin (admin_plans.py), the payment and mandate pages (admin_mirrors.py) and the
workspace pages."""

from __future__ import annotations

import datetime as dt

from django.utils.html import format_html, format_html_join

from core.display import NOTHING, local_date_display
from gocardless.admin_display import minor_amount, mirror_url
from gocardless.models import InstalmentSchedule, Subscription

SUBSCRIPTION_LABEL = "Subscription"
SCHEDULE_LABEL = "Instalment plan"


def _day(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def upcoming_rows(upcoming: list | None, currency: str) -> list[tuple[str, str]]:
    """A plan's next payments as (date in words, amount with currency), soonest first."""
    rows = []
    for entry in sorted(upcoming or [], key=lambda e: str(e.get("charge_date") or "")):
        rows.append((local_date_display(_day(entry.get("charge_date"))),
                     minor_amount(entry.get("amount"), currency)))
    return rows


def upcoming_list(upcoming: list | None, currency: str):
    rows = upcoming_rows(upcoming, currency)
    if not rows:
        return "None planned"
    return format_html("<ul class='mlc-upcoming'>{}</ul>", format_html_join(
        "", "<li>{}: {}</li>", rows))


def plan_label(payment, names: dict[tuple[str, str], str] | None = None) -> str:
    """"Subscription: Gym membership" / "Instalment plan: Kitchen" for a payment a plan
    created; "" for any other. ``names``: (kind, GoCardless id) → name, read for a page of
    payments at once (``plan_names``); without it, one query."""
    for kind, plan_id, label in (("subscription", payment.subscription_id, SUBSCRIPTION_LABEL),
                                 ("instalmentschedule", payment.instalment_schedule_id,
                                  SCHEDULE_LABEL)):
        if plan_id:
            if names is None:
                names = plan_names(payments=[payment])
            return f"{label}: {names.get((kind, plan_id)) or plan_id}"
    return ""


def plan_names(*, payments: list) -> dict[tuple[str, str], str]:
    """The names of the plans of ``payments`` (two queries at most, whatever their number)."""
    found: dict[tuple[str, str], str] = {}
    for kind, model, field in (("subscription", Subscription, "subscription_id"),
                               ("instalmentschedule", InstalmentSchedule,
                                "instalment_schedule_id")):
        wanted = {(p.tenant_id, getattr(p, field)) for p in payments if getattr(p, field)}
        if not wanted:
            continue
        rows = model.objects.filter(tenant_id__in={t for t, _ in wanted},
                                    gocardless_id__in={i for _, i in wanted})
        for tenant_id, gid, name in rows.values_list("tenant_id", "gocardless_id", "name"):
            if (tenant_id, gid) in wanted:
                found[(kind, gid)] = name or ("Unnamed subscription" if kind == "subscription"
                                              else "Unnamed instalment plan")
    return found


def plan_link(payment, names: dict | None = None):
    """``plan_label`` linked to the plan's page; a dash for a payment no plan created."""
    label = plan_label(payment, names)
    if not label:
        return NOTHING
    kind, plan_id = (("subscription", payment.subscription_id) if payment.subscription_id
                     else ("instalmentschedule", payment.instalment_schedule_id))
    url = mirror_url(kind, payment.tenant_id, plan_id)
    return format_html('<a href="{}">{}</a>', url, label) if url else label
