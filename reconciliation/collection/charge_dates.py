"""The date a payment is charged: a working day of its scheme, never too early.

GoCardless refuses a ``charge_date`` before the mandate's ``next_possible_charge_date`` and
rolls a non-working day forward. We compute the same date ourselves so that the preview
shows, and the attempt stores, the date the customer will actually be charged.
"""

from __future__ import annotations

import datetime as dt

from core.calendars import add_working_days, next_working_day
from reconciliation.collection.schemes import scheme_rule
from tenants.models import ChargeDatePolicy


def earliest_charge_date(
    *,
    scheme: str,
    today: dt.date,
    next_possible: dt.date | None,
    mandate_status: str = "active",
) -> dt.date:
    """The earliest date GoCardless will accept for a payment created today.

    The mirror's ``next_possible_charge_date`` may be stale (it was fetched on an earlier
    day), so the scheme's own lead time counted from today is a floor under it. A mandate
    that is not active yet (pending submission, submitted) needs one more working day.
    """
    rule = scheme_rule(scheme)
    lead = rule.lead_working_days if rule else 3
    if mandate_status != "active":
        lead += 1
    floor = add_working_days(today, lead, scheme)
    if next_possible is not None and next_possible > floor:
        floor = next_possible
    return next_working_day(floor, scheme)


def charge_date_for(
    *,
    scheme: str,
    today: dt.date,
    due_date: dt.date | None,
    next_possible: dt.date | None,
    policy: str,
    mandate_status: str = "active",
) -> dt.date:
    earliest = earliest_charge_date(
        scheme=scheme, today=today, next_possible=next_possible, mandate_status=mandate_status
    )
    if policy == ChargeDatePolicy.DUE_DATE and due_date is not None and due_date > earliest:
        return next_working_day(due_date, scheme)
    return earliest
