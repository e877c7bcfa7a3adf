"""*Next collection run* and *API budget left today* for one company.

The next run is the slot the sweep will start (``collection.schedule_slots``: every day,
chosen weekdays or chosen days of the month at the company's local hour, moved to the next
working day; ``collection.schedules.slots_due_for_run``: a slot that has come and has no run
yet is due, and the sweep every 15 minutes starts it; a refused or failed run does not
count). The Exact budget is the row the rate limiter
keeps from Exact's headers (``exact.selectors.connection_budget``); without one, or for
GoCardless (whose limit is per minute and not stored), it says "unknown".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.display import local_time_display
from exact.selectors import connection_budget
from reconciliation.collection.schedule_slots import (
    Slot,
    schedule_next_slot,
    schedule_slot_due,
)
from reconciliation.collection.schedules import slot_has_run
from reconciliation.workspace.links import change
from tenants.models import CollectionMode

# How often the collection sweep looks for companies whose hour has come.
SWEEP_MINUTES = 15


@dataclass
class Budget:
    provider: str
    text: str
    url: str = ""


def _slot_words(slot: Slot, tenant, today: dt.date) -> str:
    when = local_time_display(slot.at, tenant)
    if slot.day == today:
        when = f"Today, {when}"
    elif slot.day == today + dt.timedelta(days=1):
        when = f"Tomorrow, {when}"
    return f"{when} ({slot.why_moved})" if slot.why_moved else when


def next_run(tenant, now: dt.datetime, today: dt.date) -> tuple[str, str]:
    """When the scheduled collection starts next: the slot due now without its run yet
    ("Due now"), else the next slot of the company's schedule (``schedule_slots``)."""
    if not tenant.is_active:
        return "None", "This company is deactivated: nothing is collected or booked."
    if tenant.collection_mode == CollectionMode.OFF:
        return "None", "Collection is switched off in this company's collection policy."
    what = (
        "A preview for you to approve"
        if tenant.collection_mode == CollectionMode.REVIEW
        else "Collects automatically"
    )
    due = schedule_slot_due(tenant=tenant, now=now)
    if due is not None and not slot_has_run(tenant=tenant, slot=due):
        return f"Due now: starts within {SWEEP_MINUTES} minutes", what
    return _slot_words(schedule_next_slot(tenant=tenant, after=now), tenant, today), what


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
