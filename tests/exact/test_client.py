"""ExactClient against the live simulator: paging, envelopes, conversion, rate limits,
429s, the daily budget, error context and which calls are retried."""

import time
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from exact.client import ExactClient
from exact.connections import connection_require_usable
from exact.errors import (
    ExactBadRequest,
    ExactDailyBudgetExhausted,
    ExactForbidden,
    ExactPaused,
    ExactServerError,
    ExactTransportError,
)
from exact.models import ExactRateBudget
from exact.sync import accounts_sync
from tests.exact.conftest import status_count
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db

SELECT = ("ID", "Code", "Name")


class RecordingSession(requests.Session):
    def __init__(self):
        super().__init__()
        self.urls = []

    def request(self, method, url, *args, **kwargs):
        self.urls.append((method, url, kwargs.get("params")))
        return super().request(method, url, *args, **kwargs)


def _seed_accounts(sim, n):
    for i in range(n):
        sim.seed_account(DIVISION, name=f"Customer {i:03d}", code=str(100 + i))


def test_pages_follow_next_verbatim(sim, connection, sim_sleep):
    _seed_accounts(sim, 130)
    session = RecordingSession()
    api = ExactClient(connection, session=session, clock=sim.clock.now, sleep=sim_sleep)
    pages = list(api.iter_pages("crm/Accounts", select=SELECT, filter="Status eq 'C'"))
    assert [len(p) for p in pages] == [60, 60, 10]
    assert len({r["ID"] for p in pages for r in p}) == 130
    first, second, third = session.urls
    assert first[2] == {"$select": "ID,Code,Name", "$filter": "Status eq 'C'"}
    # the continuation is the server's __next URL, sent as is, with no params of ours
    assert "$skiptoken=" in second[1] and second[2] is None and third[2] is None
    assert api.calls == 3


def test_select_is_always_sent(connection, api):
    with pytest.raises(ValueError):
        list(api.iter_pages("bulk/CRM/Accounts", select=()))


def test_single_entity_and_missing_entity(sim, connection, api):
    account = sim.seed_account(DIVISION, name="Alpha", code="42")
    row = api.get_entity("crm/Accounts", f"guid'{account['ID']}'", select=SELECT)
    assert row["Name"] == "Alpha" and row["Code"].strip() == "42"
    assert (
        api.get_entity("crm/Accounts", "guid'00000000-0000-4000-8000-000000000000'", select=SELECT)
        is None
    )


def test_amounts_and_dates_arrive_exact(sim, connection, api):
    acc = sim.seed_account(DIVISION, name="Beta")
    sim.seed_invoice(DIVISION, acc["ID"], "1234.56", invoice_date="2025-09-01")
    row = next(
        api.iter_rows("bulk/Cashflow/Receivables", select=("AmountFC", "InvoiceDate", "DueDate"))
    )
    from core.money import from_exact_number as to_decimal
    from exact.odata import parse_datetime

    assert to_decimal(row["AmountFC"]) == Decimal("1234.56")
    assert parse_datetime(row["InvoiceDate"]).isoformat() == "2025-09-01T00:00:00+00:00"


def test_waits_for_the_minute_instead_of_provoking_429(sim, connection, api, sim_sleep):
    sim.settings(minutely_limit=5)
    started = time.monotonic()
    for _ in range(12):
        list(api.iter_pages("financial/Journals", select=("Code",)))
    assert status_count(sim, 429) == 0
    assert len(sim_sleep.calls) >= 2  # it waited (on the simulator's clock) for two resets
    assert all(0 < s <= 61 for s in sim_sleep.calls)
    assert time.monotonic() - started < 10  # and never for real
    budget = ExactRateBudget.objects.get(division=DIVISION)
    assert budget.minutely_limit == 5 and budget.daily_limit == 5000


def test_budget_is_shared_between_clients(sim, connection, sim_sleep):
    sim.settings(minutely_limit=4)
    a = ExactClient(connection, clock=sim.clock.now, sleep=sim_sleep)
    b = ExactClient(connection, clock=sim.clock.now, sleep=sim_sleep)
    for _ in range(4):
        list(a.iter_pages("financial/Journals", select=("Code",)))
        list(b.iter_pages("financial/Journals", select=("Code",)))
    assert status_count(sim, 429) == 0
    assert sim_sleep.calls  # b waited for a's spent minute


def test_a_429_waits_until_the_reset_then_retries(sim, connection, api, sim_sleep):
    sim.inject("status", status=429, count=1, path="/financial/Journals")
    rows = list(api.iter_rows("financial/Journals", select=("Code",)))
    assert rows
    assert status_count(sim, 429) == 1
    assert len(sim_sleep.calls) == 1 and 0 < sim_sleep.calls[0] <= 61


def test_daily_budget_pauses_the_tenant(sim, connection, api):
    sim.settings(daily_limit=3)
    for _ in range(3):
        list(api.iter_pages("financial/Journals", select=("Code",)))
    with pytest.raises(ExactDailyBudgetExhausted) as caught:
        list(api.iter_pages("financial/Journals", select=("Code",)))
    assert status_count(sim, 429) == 0  # known from the headers: not even sent
    connection.refresh_from_db()
    assert connection.paused_until == caught.value.reset_at
    assert connection.paused_until > timezone.now()
    with pytest.raises(ExactPaused):
        connection_require_usable(connection=connection)
    with pytest.raises(ExactPaused):
        accounts_sync(connection=connection)


def test_daily_429_pauses_too(sim, connection, api):
    sim.settings(daily_limit=2)
    for _ in range(2):
        list(api.iter_pages("financial/Journals", select=("Code",)))
    ExactRateBudget.objects.all().delete()  # another app instance, no shared knowledge
    fresh = ExactClient(connection, clock=sim.clock.now, sleep=api.sleep)
    with pytest.raises(ExactDailyBudgetExhausted):
        list(fresh.iter_pages("financial/Journals", select=("Code",)))
    assert status_count(sim, 429) == 1
    connection.refresh_from_db()
    assert connection.paused_until is not None


def test_errors_carry_endpoint_status_message_and_reason(sim, connection, api):
    with pytest.raises(ExactBadRequest) as bad:
        api.request("GET", f"{sim.url}/api/v1/{DIVISION}/bulk/CRM/Accounts", division=DIVISION)
    err = bad.value
    assert err.status == 400 and err.method == "GET"
    assert err.endpoint == f"/api/v1/{DIVISION}/bulk/CRM/Accounts"
    assert err.exact_message.startswith("Please add a $select")
    assert "Please add a $select" in str(err) and "HTTP 400" in str(err)

    sim.seed_division(division=999999, users=[])
    with pytest.raises(ExactForbidden) as forbidden:
        list(api.iter_pages("crm/Accounts", select=SELECT, filter="Code eq '1'", division=999999))
    assert forbidden.value.reason == "NoDivisionAccess"
    assert forbidden.value.exact_message == "Forbidden - WrongDivision"


def test_get_is_retried_on_5xx(sim, connection, api, sim_sleep):
    sim.inject("status", status=500, count=2, path="/financial/Journals")
    assert list(api.iter_rows("financial/Journals", select=("Code",)))
    assert api.calls == 3
    assert sim_sleep.calls[:2] == [0.5, 2.0]  # backoff


def test_post_is_never_retried_on_5xx(sim, connection, api):
    sim.inject("status", status=500, count=1, path="/webhooks/WebhookSubscriptions")
    with pytest.raises(ExactServerError):
        api.post(
            "webhooks/WebhookSubscriptions",
            {"CallbackURL": "https://x.example/h/", "Topic": "Accounts"},
        )
    assert api.calls == 1


def test_get_is_retried_after_a_timeout_but_post_is_not(sim, connection, sim_sleep):
    api = ExactClient(connection, clock=sim.clock.now, sleep=sim_sleep, timeout=0.2)
    sim.inject("timeout", count=1, seconds=0.4, path="/financial/Journals")
    assert list(api.iter_rows("financial/Journals", select=("Code",)))
    assert api.calls == 2
    sim.inject("timeout", count=1, seconds=0.4, path="/webhooks/WebhookSubscriptions", process=True)
    with pytest.raises(ExactTransportError) as caught:
        api.post(
            "webhooks/WebhookSubscriptions",
            {"CallbackURL": "https://x.example/h/", "Topic": "Accounts"},
        )
    assert caught.value.status is None and caught.value.method == "POST"
    counts = sim.call_counts()
    assert counts["POST /api/v1/{division}/webhooks/WebhookSubscriptions"]["total"] == 1


def test_put_updates_one_entity(sim, connection, api):
    account = sim.seed_account(DIVISION, name="Before")
    api.put("crm/Accounts", f"guid'{account['ID']}'", {"Name": "After"})
    row = api.get_entity("crm/Accounts", f"guid'{account['ID']}'", select=SELECT)
    assert row["Name"] == "After"


def test_the_environment_is_read_at_the_first_call_not_on_every_call(
    sim, connection, sim_sleep, monkeypatch
):
    """requests rescans the environment for proxies on every call of a session that trusts
    it (about a tenth of a booking post's CPU); our own session reads it once."""
    scans = []
    real = requests.utils.get_environ_proxies

    def counting(*args, **kwargs):
        scans.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    _seed_accounts(sim, 3)
    api = ExactClient(connection, clock=sim.clock.now, sleep=sim_sleep)
    for _ in range(3):
        assert len(list(api.iter_rows("crm/Accounts", select=SELECT, filter="Status eq 'C'"))) == 3
    assert len(scans) == 1 and scans[0].startswith(sim.url)
    assert api.session.trust_env is False


def test_a_proxy_in_the_environment_is_still_used(monkeypatch):
    from core.http import session_environment_pin

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/company-ca.pem")
    session = requests.Session()
    session_environment_pin(session=session, url="https://start.exactonline.nl/api/v1/1/x")
    assert session.proxies["https"] == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/certs/company-ca.pem"
    excluded = requests.Session()
    session_environment_pin(session=excluded, url="https://api.internal.example/x")
    assert "https" not in excluded.proxies
