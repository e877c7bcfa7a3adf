"""The selection's check for invoices a payment link was sent for (docs/failures.md).

While a customer holds an open link (being made, sent, or paid and on its way to the
booking that closes the invoice), a run must not collect the same invoice by Direct Debit:
the customer could pay twice. Two small functions, so the selection loads the open links
once per run and asks per invoice:

- ``pay_links_open(tenant=…, receivable_ids=…)``: one query, receivable guid → detail words;
- ``pay_link_skip(receivable_id, open_links)``: ``(SkipReason.PAY_LINK_SENT, detail)`` or None.
"""

from __future__ import annotations

import zoneinfo

from core.display import local_date_display
from reconciliation.collection.models import (
    OPEN_PAY_LINK_STATES,
    PayLink,
    PayLinkState,
    SkipReason,
)


def pay_links_open(*, tenant, receivable_ids=None) -> dict:
    """Receivable guid → what the run's line says about its open link; one query."""
    rows = PayLink.objects.filter(tenant=tenant, state__in=OPEN_PAY_LINK_STATES)
    if receivable_ids is not None:
        rows = rows.filter(receivable_exact_id__in=list(receivable_ids))
    found: dict = {}
    for receivable, state, sent_at, zone in rows.values_list(
        "receivable_exact_id", "state", "sent_at", "tenant__time_zone"
    ):
        if state == PayLinkState.PAID:
            detail = "paid through the payment link; waiting for the receipt to be booked"
        elif sent_at is not None:
            day = sent_at.astimezone(zoneinfo.ZoneInfo(zone)).date()
            detail = f"payment link e-mailed on {local_date_display(day)}"
        else:
            detail = "payment link being made"
        found[receivable] = detail
    return found


def pay_link_skip(receivable_id, open_links: dict) -> tuple[str, str] | None:
    """Skip an invoice whose customer holds an open payment link."""
    detail = open_links.get(receivable_id)
    if detail is None:
        return None
    return SkipReason.PAY_LINK_SENT, detail
