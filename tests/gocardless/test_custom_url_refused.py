"""A connection saved with a custom base URL (the simulators) while the installation allowed
it keeps its token at home once the installation no longer does: every background call is
refused before anything is sent, the connection waits for a person with the reason in words,
and the other tenants' work goes on (issue 14's leftover: it used to be a warning, mlc.W010)."""

from __future__ import annotations

import pytest
import requests

from gocardless.client import CUSTOM_URL_REFUSED, GoCardlessClient
from gocardless.errors import AuthError
from gocardless.models import ConnectionStatus
from gocardless.polling import events_poll_all
from tests.gocardless.conftest import sim_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def sends(monkeypatch):
    """Every HTTP request the GoCardless client sends (through its keep-alive session)."""
    sent: list[str] = []
    original = requests.Session.request

    def record(self, method, url, *args, **kwargs):
        sent.append(f"{method} {url}")
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", record)
    return sent


def test_no_call_leaves_once_custom_urls_are_not_allowed(
    settings, gocardless_simulator, tenant_a, sends
):
    connection = sim_connection(gocardless_simulator, tenant=tenant_a)
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = False

    client = GoCardlessClient.for_connection(connection)
    with pytest.raises(AuthError) as refused:
        client.creditors_list()
    assert refused.value.type == "custom_base_url_not_allowed"
    assert sends == []  # the token went nowhere
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_REAUTH
    assert connection.status_reason == CUSTOM_URL_REFUSED
    assert "live or sandbox" in connection.status_reason


def test_allowed_custom_urls_still_reach_the_simulator(
    settings, gocardless_simulator, tenant_a, sends
):
    connection = sim_connection(gocardless_simulator, tenant=tenant_a)
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = True
    GoCardlessClient.for_connection(connection).events_page({})
    assert sends and sends[0].startswith(f"GET {gocardless_simulator.url}")
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED


def test_the_scheduled_poll_skips_the_refused_tenant_and_serves_the_others(
    settings, gocardless_simulator, tenant_a, tenant_b, sends
):
    refused = sim_connection(gocardless_simulator, tenant=tenant_a)
    # Tenant B is on sandbox; its client is pointed at the simulator by the test.
    fine = sim_connection(gocardless_simulator, tenant=tenant_b, environment="sandbox",
                          custom_base_url="", organisation_id="OR_SANDBOX_B")
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = False
    results = events_poll_all(
        client_factory=lambda c: GoCardlessClient(
            access_token=c.access_token, base_url=gocardless_simulator.url)
        if c.pk == fine.pk else None)
    assert "error" in results[tenant_a.pk] and "custom base URL" in results[tenant_a.pk]["error"]
    assert "error" not in results[tenant_b.pk]
    refused.refresh_from_db()
    assert refused.status == ConnectionStatus.NEEDS_REAUTH
    # Needs a person now: the next scheduled poll does not try again.
    assert tenant_a.pk not in events_poll_all(client_factory=lambda c: None)
