"""Payout items whose links GoCardless gives as null: an instant bank payment (a payment
link's, docs/failures.md) has no mandate, and the simulator's items say ``"mandate": null``.
The mirror stores "" (found by the demo: its payout's event failed on NOT NULL)."""

from __future__ import annotations

import pytest

from gocardless.mirrors import payout_items_replace
from gocardless.models import Payout, PayoutItem

pytestmark = pytest.mark.django_db


def test_a_payout_item_without_a_mandate_is_mirrored(tenant_a):
    payout = Payout.objects.create(tenant=tenant_a, gocardless_id="PO1", currency="EUR")
    links = {"payment": "PM1", "mandate": None}
    count = payout_items_replace(
        payout=payout,
        items=[
            {"type": "payment_paid_out", "amount": "245000", "links": links},
            {"type": "gocardless_fee", "amount": "-480", "links": {**links, "refund": None}},
        ],
    )
    assert count == 2
    rows = PayoutItem.objects.filter(payout=payout).order_by("position")
    assert [(r.payment_id, r.mandate_id, r.refund_id) for r in rows] == [
        ("PM1", "", ""),
        ("PM1", "", ""),
    ]
