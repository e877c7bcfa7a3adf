"""Where the server sends Exact secrets is never a company administrator's choice.

Region "custom" (any base URL) decides where the app's client secret (code exchange), a
company's bearer token (Test, every API call) and its refresh token go. It exists for the
simulators: only where EXACT_ALLOW_CUSTOM_BASE_URL allows it, and only superusers set it.
Each test below runs with DEBUG off; a recording HTTP server on 127.0.0.1 plays the foreign
host and proves that nothing reached it.

And the shared API budget: another host's answers (however absurd) never pause a company.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from exact import oauth
from exact.client import ExactClient, oauth_refresh
from exact.errors import ExactDailyBudgetExhausted, ExactHostNotAllowed
from exact.grants import grant_for_user, grant_tokens_replace
from exact.models import ConnectionStatus, ExactConnection, ExactGrant, ExactRateBudget, Region
from exact.ratelimit import RateLimiter
from exact.tasks import exact_keepalive_task, exact_sync_task
from exact.tokens import token_refresh
from simulators.harness import SimulatorServer
from tests.exact.conftest import connect
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
YEAR_2100_MS = "4102444800000"


class Recorder:
    """A foreign host: answers 200 to anything (so a leak would look like success) and keeps
    every request it got."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = SimulatorServer(self._app)

    def _app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self._lock:
            self.requests.append(
                {"path": environ.get("PATH_INFO"), "body": body,
                 "auth": environ.get("HTTP_AUTHORIZATION", "")}
            )
        payload = json.dumps({"access_token": "x", "refresh_token": "y", "expires_in": "600",
                              "d": {"results": []}}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [payload]

    def start(self) -> Recorder:
        self._server.start()
        return self

    @property
    def url(self) -> str:
        return self._server.url

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def recorder():
    server = Recorder().start()
    yield server
    server.stop()


@pytest.fixture
def production(settings):
    """DEBUG off and custom hosts not allowed: what a real installation runs with."""
    settings.DEBUG = False
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = False
    return settings


def _messages(resp) -> str:
    return " ".join(str(m) for m in get_messages(resp.wsgi_request))


def _change_url(connection) -> str:
    return reverse("admin:exact_exactconnection_change", args=[connection.pk])


def _form(connection, **fields) -> dict:
    return {"tenant": connection.tenant_id, "region": connection.region, **fields}


# --- the admin: a company administrator never sees or sets the base URL --------------------


@pytest.mark.parametrize("allowed", [False, True], ids=["production", "simulator-install"])
def test_company_admin_cannot_set_region_custom_or_a_foreign_host(
    client, tenant_a, admin_of_a, recorder, settings, allowed
):
    settings.DEBUG = False
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = allowed
    mine = ExactConnection.objects.create(tenant=tenant_a, region=Region.NL)
    client.force_login(admin_of_a)
    page = client.get(_change_url(mine))
    assert page.status_code == 200
    assert b'name="custom_base_url"' not in page.content
    assert b'value="custom"' not in page.content
    resp = client.post(
        _change_url(mine), _form(mine, region="custom", custom_base_url=recorder.url)
    )
    assert resp.status_code == 200  # the form again, with the error: never saved
    assert "region" in resp.context["adminform"].form.errors
    mine.refresh_from_db()
    assert (mine.region, mine.custom_base_url) == (Region.NL, "")
    # a foreign host sneaked in with a valid region is ignored (not a field for them)
    resp = client.post(_change_url(mine), _form(mine, region="be", custom_base_url=recorder.url))
    assert resp.status_code == 302
    mine.refresh_from_db()
    assert (mine.region, mine.custom_base_url) == ("be", "")
    assert recorder.requests == []


def test_superuser_sets_custom_only_where_the_installation_allows_it(
    client, tenant_a, superuser, recorder, settings
):
    settings.DEBUG = False
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = False
    mine = ExactConnection.objects.create(tenant=tenant_a, region=Region.NL)
    client.force_login(superuser)
    resp = client.post(
        _change_url(mine), _form(mine, region="custom", custom_base_url=recorder.url)
    )
    assert resp.status_code == 200 and "region" in resp.context["adminform"].form.errors
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True  # a simulator installation
    resp = client.post(
        _change_url(mine), _form(mine, region="custom", custom_base_url=recorder.url)
    )
    assert resp.status_code == 302
    mine.refresh_from_db()
    assert (mine.region, mine.custom_base_url) == ("custom", recorder.url)


# --- nothing leaves for a custom host that is not allowed (connect, test, refresh) ---------


@pytest.fixture
def legacy(tenant_a, recorder, settings):
    """A connection saved while custom hosts were allowed (or before this rule), connected,
    with a grant whose host is the recorder."""
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    grant = grant_for_user(
        client_id=settings.EXACT_CLIENT_ID, region=Region.CUSTOM,
        custom_base_url=recorder.url, exact_user_id="",
    )
    now = timezone.now()
    grant_tokens_replace(
        grant=grant,
        tokens={"access_token": "AT-SECRET", "refresh_token": "RT-SECRET", "expires_in": 600},
        issued_at=now - timedelta(days=2),
        divisions=[{"code": DIVISION, "name": "Legacy"}],
    )
    return ExactConnection.objects.create(
        tenant=tenant_a, region=Region.CUSTOM, custom_base_url=recorder.url,
        division=DIVISION, status=ConnectionStatus.CONNECTED, grant=grant,
    )


def test_connect_sends_nothing_to_a_custom_host_that_is_not_allowed(
    client, legacy, admin_of_a, recorder, production
):
    client.force_login(admin_of_a)
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[legacy.pk]))
    assert resp.status_code == 302 and resp["Location"] == _change_url(legacy)
    assert "Cannot connect" in _messages(resp)
    # a consent started while it was allowed, finished after: the code exchange (which
    # carries the app's client secret) is refused before anything is sent
    production.EXACT_ALLOW_CUSTOM_BASE_URL = True
    started = client.post(reverse("admin:exact_exactconnection_connect", args=[legacy.pk]))
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]
    production.EXACT_ALLOW_CUSTOM_BASE_URL = False
    resp = client.get("/connect/exact/callback/", {"code": "a-code", "state": state})
    assert 400 <= resp.status_code < 500
    assert recorder.requests == []


def test_test_button_sends_no_bearer_token_to_it(client, legacy, admin_of_a, recorder, production):
    client.force_login(admin_of_a)
    resp = client.post(reverse("admin:exact_exactconnection_test", args=[legacy.pk]))
    assert resp.status_code == 302 and "Test failed" in _messages(resp)
    assert "EXACT_ALLOW_CUSTOM_BASE_URL" in _messages(resp)
    page = client.get(_change_url(legacy))  # and the page still renders
    assert page.status_code == 200
    assert recorder.requests == []


def test_no_refresh_token_is_sent_to_it(legacy, recorder, production):
    with pytest.raises(ExactHostNotAllowed):
        token_refresh(grant_id=legacy.grant_id, token_endpoint=oauth_refresh, force=True)
    assert exact_keepalive_task() == 0
    assert exact_sync_task(legacy.tenant_id).startswith("skipped")
    with pytest.raises(ExactHostNotAllowed):
        list(ExactClient(legacy).iter_rows("financial/Journals", select=("Code",)))
    assert recorder.requests == []
    grant = ExactGrant.objects.get(pk=legacy.grant_id)
    assert grant.refresh_token == "RT-SECRET"  # untouched: the chain did not move


def test_the_model_refuses_custom_when_not_allowed(tenant_a, recorder, production):
    from django.core.exceptions import ValidationError

    row = ExactConnection(tenant=tenant_a, region=Region.CUSTOM, custom_base_url=recorder.url)
    with pytest.raises(ValidationError):
        row.full_clean()


def test_system_checks(settings, tenant_a, recorder):
    from exact.checks import check_custom_base_url_setting, check_custom_region_connections

    settings.DEBUG = False
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    assert [e.id for e in check_custom_base_url_setting(None)] == ["mlc.E011"]
    settings.DEBUG = True
    assert check_custom_base_url_setting(None) == []
    settings.DEBUG = False
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = False
    assert check_custom_base_url_setting(None) == []
    assert check_custom_region_connections(None) == []
    ExactConnection.objects.create(
        tenant=tenant_a, region=Region.CUSTOM, custom_base_url=recorder.url,
        division=1, status=ConnectionStatus.CONNECTED,
    )
    [warning] = check_custom_region_connections(None)
    assert warning.id == "mlc.W012" and "alpha" in warning.msg


# --- the shared API budget cannot be poisoned ----------------------------------------------


class FakeExact:
    """Another host claiming to be Exact: every answer says the day's budget is spent until
    the year 2100. Its current/Me names *another company's* division as current."""

    def __init__(self, current_division: int) -> None:
        self.current = current_division
        self._server = SimulatorServer(self._app)

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.endswith("current/Me"):
            rows = [{"UserID": "f00", "FullName": "Fake", "CurrentDivision": self.current}]
        else:
            rows = [{"Code": self.current, "Description": "Not yours"}]
        headers = [
            ("Content-Type", "application/json"),
            ("X-RateLimit-Limit", "5000"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", YEAR_2100_MS),
        ]
        start_response("200 OK", headers)
        return [json.dumps({"d": {"results": rows}}).encode()]

    def start(self) -> FakeExact:
        self._server.start()
        return self

    @property
    def url(self) -> str:
        return self._server.url

    def stop(self) -> None:
        self._server.stop()


def test_another_hosts_answers_never_pause_a_company(
    exact_simulator, tenant_a, tenant_b, settings
):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True  # both hosts are local servers here
    exact_simulator.seed_division(division=DIVISION)
    victim = connect(tenant_a, exact_simulator)
    fake = FakeExact(current_division=DIVISION).start()
    fake_url = fake.url
    try:
        attacker = ExactConnection.objects.create(
            tenant=tenant_b, region=Region.CUSTOM, custom_base_url=fake.url
        )
        # the attacker's consent step reads current/Me and system/Divisions at its host,
        # charged to the division Me calls current: the victim's
        oauth.consent_identity(connection=attacker, access_token="anything")
    finally:
        fake.stop()
    rows = {row.host: row for row in ExactRateBudget.objects.filter(division=DIVISION)}
    assert set(rows) == {fake_url}  # only the fake host's own row took its answers
    assert rows[fake_url].daily_reset_at <= timezone.now() + timedelta(hours=25)
    api = ExactClient(victim, clock=exact_simulator.clock.now, sleep=exact_simulator.advance)
    assert list(api.iter_rows("financial/Journals", select=("Code",)))
    victim.refresh_from_db()
    assert victim.paused_until is None
    assert ExactRateBudget.objects.get(host=exact_simulator.url).daily_remaining > 0


def test_absurd_reset_times_from_the_real_host_are_clamped(
    exact_simulator, tenant_a, settings
):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    exact_simulator.seed_division(division=DIVISION)
    connection = connect(tenant_a, exact_simulator)
    now = timezone.now()
    limiter = RateLimiter(client_id=settings.EXACT_CLIENT_ID, host=exact_simulator.url,
                          division=DIVISION)
    limiter.record({"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "-7",
                    "X-RateLimit-Reset": YEAR_2100_MS,
                    "X-RateLimit-Minutely-Limit": "99999999999999",
                    "X-RateLimit-Minutely-Remaining": "3",
                    "X-RateLimit-Minutely-Reset": YEAR_2100_MS})
    row = ExactRateBudget.objects.get(host=exact_simulator.url)
    assert row.daily_remaining == 0 and row.daily_reset_at <= now + timedelta(hours=25)
    assert row.minutely_reset_at <= now + timedelta(minutes=2)
    assert row.minutely_limit == 1_000_000
    with pytest.raises(ExactDailyBudgetExhausted) as spent:
        list(ExactClient(connection).iter_rows("financial/Journals", select=("Code",)))
    assert spent.value.reset_at <= now + timedelta(hours=25)
    connection.refresh_from_db()
    assert connection.paused_until <= now + timedelta(hours=25)  # not 2100
