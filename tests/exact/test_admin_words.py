"""The Exact pages in words (issue 15): amounts with their currency, Exact's codes in words,
times in the company's zone, sync runs with their state and errors as sentences and live
progress while they run, webhook bodies only folded away as what Exact sent."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from exact.admin_mirrors import sync_queued_message
from exact.words import error_sentence, language_words, payment_condition_words
from tests.exact.factories import (
    ExactAccountFactory,
    ExactReceivableFactory,
    ExactWebhookDeliveryFactory,
    SyncRunFactory,
)
from tests.factories import ExactConnectionFactory
from tests.workspace.page_words import findings

pytestmark = pytest.mark.django_db

CODES = {"credit_note", "incremental", "receivables"}


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def test_receivables_show_amounts_with_their_currency(client, tenant_a, viewer_of_a):
    receivable = ExactReceivableFactory(tenant=tenant_a, amount=Decimal("1320.00"),
                                        outstanding=Decimal("0.00"), status=50,
                                        due_date=dt.date(2026, 12, 28))
    ExactReceivableFactory(tenant=tenant_a, amount=Decimal("-210.00"),
                           outstanding=Decimal("-210.00"), kind="credit_note", currency="GBP")
    client.force_login(viewer_of_a)
    changelist = reverse("admin:exact_exactreceivable_changelist")
    page = _page(client, changelist)
    assert "EUR 1,320.00" in page and "EUR 0.00" in page and "-GBP 210.00" in page
    assert findings(page, codes=CODES, minor=set()) == []
    for query in ("?status=50", "?kind__exact=credit_note", "?currency=GBP"):
        assert findings(_page(client, changelist + query), codes=CODES, minor=set()) == []
    change = _page(client, reverse("admin:exact_exactreceivable_change",
                                   args=[receivable.pk]))
    assert "EUR 1,320.00" in change and "Processed" in change and "Mon 28 Dec 2026" in change
    assert findings(change, codes=CODES, minor=set()) == []


def test_accounts_show_language_status_and_payment_condition_in_words(client, tenant_a,
                                                                      viewer_of_a):
    account = ExactAccountFactory(tenant=tenant_a, language="NL", payment_condition="DD",
                                  raw={"PaymentConditionSales": "DD", "ID": "x"})
    client.force_login(viewer_of_a)
    page = _page(client, reverse("admin:exact_exactaccount_change", args=[account.pk]))
    assert "Dutch" in page and "Customer" in page and "Direct debit (DD)" in page
    assert "As received from Exact" in page
    assert findings(page, codes=CODES, minor=set()) == []
    assert language_words("de-DE") == "German" and payment_condition_words("") == ""


def test_a_running_sync_shows_live_progress(client, tenant_a, viewer_of_a):
    run = SyncRunFactory(tenant=tenant_a, entity="receivables", mode="incremental",
                         finished_at=None, pages=3, calls=4,
                         started_at=timezone.now() - dt.timedelta(seconds=5))
    client.force_login(viewer_of_a)
    page = _page(client, reverse("admin:exact_syncrun_change", args=[run.pk]))
    progress = reverse("admin:exact_syncrun_progress", args=[run.pk])
    assert f'data-progress-url="{progress}"' in page
    assert 'data-progress-field="pages"' in page and "Running" in page
    assert findings(page, codes=CODES, minor=set()) == []

    answer = client.get(progress).json()
    assert answer["done"] is False
    assert answer["fields"]["state"] == "Running" and answer["fields"]["pages"] == "3"

    run.finished_at, run.created = timezone.now(), 12
    run.save()
    answer = client.get(progress).json()
    assert answer["done"] is True and answer["fields"]["created"] == "12"
    page = _page(client, reverse("admin:exact_syncrun_change", args=[run.pk]))
    assert "data-progress-url" not in page and "Finished" in page


def test_another_companys_sync_progress_is_not_found(client, tenant_b, viewer_of_a):
    run = SyncRunFactory(tenant=tenant_b, finished_at=None)
    client.force_login(viewer_of_a)
    response = client.get(reverse("admin:exact_syncrun_progress", args=[run.pk]))
    assert response.status_code == 404


def test_sync_runs_list_states_and_errors_as_sentences(client, tenant_a, viewer_of_a):
    SyncRunFactory(tenant=tenant_a, error="ExactApiError: rate_limited by Exact")
    SyncRunFactory(tenant=tenant_a)
    client.force_login(viewer_of_a)
    changelist = reverse("admin:exact_syncrun_changelist")
    page = _page(client, changelist)
    assert "Failed" in page and "Finished" in page and "Rate limited by Exact." in page
    assert findings(page, codes=CODES, minor=set()) == []
    for query in ("?state=failed", "?state=running", "?mode__exact=incremental"):
        assert findings(_page(client, changelist + query), codes=CODES, minor=set()) == []
    assert error_sentence("ValueError: no division chosen") == "No division chosen."


def test_sync_now_says_where_to_follow_the_run(tenant_a):
    message = sync_queued_message(tenant_a)
    assert reverse("admin:exact_syncrun_changelist") in message
    run = SyncRunFactory(tenant=tenant_a)
    message = sync_queued_message(tenant_a)
    assert reverse("admin:exact_syncrun_change", args=[run.pk]) in message


def test_sync_now_action_queues_and_links(client, tenant_a, admin_of_a, monkeypatch):
    connection = ExactConnectionFactory(tenant=tenant_a)
    queued = []
    monkeypatch.setattr("exact.admin.queue.enqueue", lambda *args: queued.append(args))
    monkeypatch.setattr("exact.admin.connection_require_usable", lambda connection: None)
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:exact_exactconnection_changelist"),
                           {"action": "sync_now", "_selected_action": [connection.pk]},
                           follow=True)
    assert queued == [("exact.tasks.exact_sync_task", tenant_a.pk)]
    page = response.content.decode()
    assert f'href="{reverse("admin:exact_syncrun_changelist")}' in page


def test_a_webhook_body_is_shown_only_folded_as_received(client, tenant_a, viewer_of_a):
    body = json.dumps({"Content": {"Topic": "ReceivablesList", "division_code": 1}})
    delivery = ExactWebhookDeliveryFactory(tenant=tenant_a, body=body.encode(),
                                           headers={"x_exact_signature": "abc"})
    client.force_login(viewer_of_a)
    page = _page(client, reverse("admin:exact_exactwebhookdelivery_change",
                                 args=[delivery.pk]))
    assert "As received from Exact" in page and "<details>" in page
    assert 'class="mlc-raw"' in page and "division_code" in page
    assert findings(page, codes=CODES, minor=set()) == []
