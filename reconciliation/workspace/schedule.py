"""*Next collection run* and *API budget left today* for one company.

The next run follows ``collection.schedules.tenants_due_for_run``: a sweep every 15
minutes starts a company's scheduled run once its local ``collection_hour`` has come, once a
day (a refused or failed run does not count). The Exact budget is the row the rate limiter
keeps from Exact's headers (``exact.selectors.connection_budget``); without one, or for
GoCardless (whose limit is per minute and not stored), it says "unknown".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.display import local_time_display
from exact.selectors import connection_budget
from reconciliation.collection.models import CollectionRun, RunState, RunTrigger
from reconciliation.workspace.links import change
from tenants.models import CollectionMode

# How often the collection sweep looks for companies whose hour has come.
SWEEP_MINUTES = 15


@dataclass
class Budget:
    provider: str
    text: str
    url: str = ""


def next_run(tenant, now: dt.datetime, today: dt.date) -> tuple[str, str]:
    """When the scheduled collection starts next (``collection.schedules``: the sweep every
    15 minutes starts a company's run once its local hour has come, once a day)."""
    if not tenant.is_active:
        return "None", "This company is deactivated: nothing is collected or booked."
    if tenant.collection_mode == CollectionMode.OFF:
        return "None", "Collection is switched off in this company's collection policy."
    hour = dt.time(tenant.collection_hour)
    zone = tenant.zone
    what = (
        "A preview for you to approve"
        if tenant.collection_mode == CollectionMode.REVIEW
        else "Collects automatically"
    )
    local = now.astimezone(zone)
    if local.hour < tenant.collection_hour:
        at = dt.datetime.combine(today, hour, tzinfo=zone)
        return f"Today, {local_time_display(at, tenant)}", what
    ran = (
        CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE, as_of=today)
        .exclude(state__in=(RunState.REFUSED, RunState.FAILED))
        .exists()
    )
    if not ran:
        return f"Due now: starts within {SWEEP_MINUTES} minutes", what
    at = dt.datetime.combine(today + dt.timedelta(days=1), hour, tzinfo=zone)
    return f"Tomorrow, {local_time_display(at, tenant)}", what


def budgets_build(tenant, exact, now: dt.datetime) -> list[Budget]:
    budgets = []
    if exact is None or not exact.division:
        budgets.append(Budget("Exact Online", "unknown (not connected)"))
    else:
        budget = connection_budget(connection=exact)
        budgets.append(Budget("Exact Online", _exact_budget_text(budget, tenant, now),
                              change(exact)))
    budgets.append(
        Budget("GoCardless", "unknown (not recorded: GoCardless limits calls per minute, "
               "not per day)")
    )
    return budgets


def _exact_budget_text(budget: dict | None, tenant, now: dt.datetime) -> str:
    if budget is None or budget.get("daily_remaining") is None:
        return "unknown (no call to Exact recorded yet)"
    if budget.get("paused_until"):
        return (
            "spent for today: calls to Exact wait until "
            + local_time_display(budget["paused_until"], tenant)
        )
    limit = budget.get("daily_limit")
    remaining = budget["daily_remaining"]
    reset = budget.get("daily_reset")
    if reset is not None and reset <= now and limit is not None:
        remaining = limit  # a new day began at Exact since the last call
    left = f"{max(remaining, 0):,}"
    text = f"{left} of {limit:,} calls left today" if limit else f"{left} calls left today"
    if reset is not None and reset > now:
        text += f" (renews {local_time_display(reset, tenant)})"
    return text
