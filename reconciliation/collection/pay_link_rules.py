"""The selection's check for invoices a payment link was sent for (docs/failures.md).

While a customer holds an open link (being made, sent, or paid and on its way to the
booking that closes the invoice), a run must not collect the same invoice by Direct Debit:
the customer could pay twice. Small functions, so the selection loads the open links once
per run and asks per invoice:

- ``pay_links_open(tenant=…, receivable_ids=…)``: one query, receivable guid → ``OpenLink``;
- ``pay_link_skip(receivable_id, open_links)``: ``(SkipReason.PAY_LINK_SENT, detail)`` or None;
- ``pay_link_money_on_its_way(open_links)``: the paid links' money, by (account, currency)
  and by receivable, which lowers what the customer still owes like an attempt's payment on
  its way (their invoices stay open in Exact until the receipt is booked).
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from core.display import local_date_display
from reconciliation.collection.models import (
    OPEN_PAY_LINK_STATES,
    PayLink,
    PayLinkState,
    SkipReason,
)


@dataclass(frozen=True)
class OpenLink:
    detail: str  # the run line's words
    account_exact_id: object
    currency: str
    paid: Decimal | None  # the amount, once the customer paid through the link


def pay_links_open(*, tenant, receivable_ids=None) -> dict:
    """Receivable guid → its open link (``OpenLink``); one query."""
    rows = PayLink.objects.filter(tenant=tenant, state__in=OPEN_PAY_LINK_STATES)
    if receivable_ids is not None:
        rows = rows.filter(receivable_exact_id__in=list(receivable_ids))
    found: dict = {}
    for receivable, state, sent_at, zone, account, currency, amount in rows.values_list(
        "receivable_exact_id",
        "state",
        "sent_at",
        "tenant__time_zone",
        "account_exact_id",
        "currency",
        "amount",
    ):
        paid = None
        if state == PayLinkState.PAID:
            detail = "paid through the payment link; waiting for the receipt to be booked"
            paid = amount
        elif sent_at is not None:
            day = sent_at.astimezone(zoneinfo.ZoneInfo(zone)).date()
            detail = f"payment link e-mailed on {local_date_display(day)}"
        else:
            detail = "payment link being made"
        found[receivable] = OpenLink(detail, account, currency, paid)
    return found


def pay_link_skip(receivable_id, open_links: dict) -> tuple[str, str] | None:
    """Skip an invoice whose customer holds an open payment link."""
    link = open_links.get(receivable_id)
    if link is None:
        return None
    return SkipReason.PAY_LINK_SENT, link.detail


def pay_link_money_on_its_way(open_links: dict) -> tuple[dict, dict]:
    """((account guid, currency) → amount, receivable guid → amount) of the paid links."""
    by_customer: dict = defaultdict(Decimal)
    by_receivable: dict = defaultdict(Decimal)
    for receivable, link in open_links.items():
        if link.paid is not None:
            by_customer[(link.account_exact_id, link.currency)] += link.paid
            by_receivable[receivable] += link.paid
    return dict(by_customer), dict(by_receivable)
