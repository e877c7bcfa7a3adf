"""Issue 15: the collection pages in words. No scheme, skip reason, attempt state, payment
status or failure cause as a code; every amount with its currency; times in the company's
zone; GoCardless and Exact ids linked to the page that finds them. What counts as machine form
is tests/workspace/page_words.py's (the walk over the demo uses the same rules)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from reconciliation.collection import attention
from reconciliation.collection.models import (
    AttemptState,
    Decision,
    RunKind,
    RunState,
    SkipReason,
)
from tenants.models import Role
from tests.factories import MembershipFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionItemFactory,
    CollectionRunFactory,
)
from tests.workspace.page_words import findings

pytestmark = pytest.mark.django_db

CODES = {
    "sepa_core",
    "bacs",
    "no_customer_link",
    "not_due",
    "paid_out",
    "needs_attention",
    "insufficient_funds",
    "refer_to_payer",
    "awaiting_approval",
    "collect",
    "skip",
    "live",
    "preview",
}


@pytest.fixture
def world(tenant_a):
    tenant_a.time_zone = "Europe/Amsterdam"
    tenant_a.save()
    started = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # 06:00 in Amsterdam
    run = CollectionRunFactory(
        tenant=tenant_a,
        kind=RunKind.LIVE,
        state=RunState.COMPLETED,
        evaluated=3,
        to_collect=1,
        skipped=2,
        submitted=1,
        planned=1,
        totals={"EUR": "1320.00"},
        submitted_totals={"EUR": "1320.00"},
        finished_at=started + dt.timedelta(minutes=3),
    )
    type(run).objects.filter(pk=run.pk).update(started_at=started)
    collect = CollectionItemFactory(
        tenant=tenant_a,
        run=run,
        outstanding=Decimal("1320.00"),
        amount=Decimal("1320.00"),
        scheme="sepa_core",
    )
    skipped = CollectionItemFactory(
        tenant=tenant_a,
        run=run,
        decision=Decision.SKIP,
        reason=SkipReason.NOT_DUE,
        outstanding=Decimal("187.50"),
        amount=Decimal("0.00"),
        scheme="bacs",
        currency="GBP",
    )
    paid = CollectionAttemptFactory(
        tenant=tenant_a,
        run=run,
        amount=Decimal("1320.00"),
        state=AttemptState.PAID_OUT,
        payment_status="paid_out",
        flag="",
    )
    failed = CollectionAttemptFactory(
        tenant=tenant_a,
        run=run,
        amount=Decimal("187.50"),
        currency="GBP",
        state=AttemptState.NEEDS_ATTENTION,
        payment_status="failed",
        failure_cause="refer_to_payer",
        flag="",
    )
    return {"run": run, "collect": collect, "skipped": skipped, "paid": paid, "failed": failed}


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _no_machine_form(html: str) -> None:
    assert findings(html, codes=CODES, minor={132000, 18750}) == []


def test_collection_pages_and_their_filters_read_as_words(client, world, viewer_of_a):
    client.force_login(viewer_of_a)
    run = world["run"]
    pages = [
        reverse("admin:collection_collectionrun_changelist"),
        reverse("admin:collection_collectionrun_change", args=[run.pk]),
        reverse("admin:collection_collectionitem_changelist"),
        reverse("admin:collection_collectionitem_changelist") + "?scheme__exact=sepa_core",
        reverse("admin:collection_collectionitem_changelist") + "?reason__exact=not_due",
        reverse("admin:collection_collectionattempt_changelist"),
        reverse("admin:collection_collectionattempt_changelist") + "?state=paid_out",
    ]
    pages += [
        reverse("admin:collection_collectionitem_change", args=[world[name].pk])
        for name in ("collect", "skipped")
    ]
    pages += [
        reverse("admin:collection_collectionattempt_change", args=[world[name].pk])
        for name in ("paid", "failed")
    ]
    for url in pages:
        _no_machine_form(_page(client, url))


def test_item_page_amounts_with_currency_and_scheme_in_words(client, world, viewer_of_a):
    client.force_login(viewer_of_a)
    skipped = world["skipped"]
    body = _page(client, reverse("admin:collection_collectionitem_change", args=[skipped.pk]))
    assert "GBP 187.50" in body and "GBP 0.00" in body
    assert "Bacs Direct Debit" in body and "Not due within the lead window" in body
    assert f"Invoice {skipped.invoice_number}: Skip (not due within the lead window)" in body
    # The mandate and the Exact ids link to the pages that find them.
    assert f"/admin/gocardless/mandate/?q={skipped.mandate_gocardless_id}" in body
    assert f"/admin/exact/exactreceivable/?q={skipped.receivable_exact_id}" in body
    listing = _page(client, reverse("admin:collection_collectionitem_changelist"))
    assert "SEPA Direct Debit" in listing and ">sepa_core<" not in listing


def test_attempt_page_payment_status_and_cause_in_words(client, world, viewer_of_a):
    client.force_login(viewer_of_a)
    paid, failed = world["paid"], world["failed"]
    body = _page(client, reverse("admin:collection_collectionattempt_change", args=[paid.pk]))
    assert "Collected and paid out" in body
    assert f"/admin/gocardless/payment/?q={paid.payment_gocardless_id}" in body
    body = _page(client, reverse("admin:collection_collectionattempt_change", args=[failed.pk]))
    assert "Refused by the customer&#x27;s bank: ask the customer" in body
    assert "GBP 187.50" in body


def test_run_page_times_are_in_the_companys_zone(client, world, viewer_of_a):
    client.force_login(viewer_of_a)
    run = world["run"]
    body = _page(client, reverse("admin:collection_collectionrun_change", args=[run.pk]))
    assert "Mon 2 Mar 2026, 06:00 CET" in body and "Mon 2 Mar 2026, 06:03 CET" in body
    listing = _page(client, reverse("admin:collection_collectionrun_changelist"))
    assert "Mon 2 Mar 2026, 06:00 CET" in listing
    assert "EUR 1,320.00" in listing


def test_attention_email_says_amounts_with_currency_and_causes_in_words(
    tenant_a, world, django_capture_on_commit_callbacks
):
    MembershipFactory(tenant=tenant_a, role=Role.ADMIN, user__email="finance@example.com")
    mail.outbox = []
    with django_capture_on_commit_callbacks(execute=True):
        attention.attention_digests_send(now=dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC))
    [message] = mail.outbox
    assert "GBP 187.50: Refused by the customer's bank: ask the customer" in message.body
    assert "refer_to_payer" not in message.body
