"""A headless operator gets a consent URL for a company (no browser session on the server);
completing the consent in any browser finishes the connection. And every refusal of the
connect flow is logged and audited."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from core.models import AuditEntry
from exact import oauth
from exact.models import ConnectionStatus, ExactConnection, Region
from tests.exact.conftest import connect
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
SECOND = 654321
CALLBACK = "/connect/exact/callback/"


@pytest.fixture
def fresh(tenant_a, sim):
    sim.seed_division(division=SECOND, name="Second administration")
    return ExactConnection.objects.create(
        tenant=tenant_a, region=Region.CUSTOM, custom_base_url=sim.url
    )


def _at_exact(url) -> str:
    """The browser at Exact: consent redirects back to our callback; returns its query."""
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    back = urlsplit(resp.headers["Location"])
    assert back.path == CALLBACK
    return back.query


def _refusals():
    return list(AuditEntry.objects.filter(action="exact_connection.connect_refused"))


def test_operator_url_completed_in_a_browser_without_admin_login(client, fresh, sim):
    url = oauth.consent_url_create(connection=fresh, operator="ops@host")
    assert url.startswith(f"{sim.url}/api/oauth2/auth?")
    page = client.get(f"{CALLBACK}?{_at_exact(url)}")  # an anonymous browser
    assert page.status_code == 200 and b"Choose the Exact Online division" in page.content
    resp = client.post(reverse("exact:division-choose"), {"division": str(SECOND)})
    assert resp.status_code == 200 and b"connected to Exact Online division" in resp.content
    fresh.refresh_from_db()
    assert (fresh.status, fresh.division) == (ConnectionStatus.CONNECTED, SECOND)
    assert fresh.grant.refresh_token and len(fresh.webhook_subscription_ids) == 2
    entry = AuditEntry.objects.get(action="exact_connection.connected")
    assert entry.actor_label == "consent link of ops@host"


def test_operator_url_naming_the_division_finishes_at_the_callback(client, fresh):
    url = oauth.consent_url_create(connection=fresh, operator="ops", division=DIVISION)
    resp = client.get(f"{CALLBACK}?{_at_exact(url)}")
    assert resp.status_code == 200 and resp.context["connection"].pk == fresh.pk
    fresh.refresh_from_db()
    assert (fresh.status, fresh.division) == (ConnectionStatus.CONNECTED, DIVISION)


def test_operator_url_naming_a_division_outside_the_consent_is_refused(client, fresh, sim):
    sim.settings(consent_divisions=[SECOND])
    url = oauth.consent_url_create(connection=fresh, operator="ops", division=DIVISION)
    resp = client.get(f"{CALLBACK}?{_at_exact(url)}")
    assert resp.status_code == 403
    # the picker cannot be used to pick another one instead
    resp = client.post(reverse("exact:division-choose"), {"division": str(SECOND)})
    assert resp.status_code == 403
    fresh.refresh_from_db()
    assert fresh.status != ConnectionStatus.CONNECTED
    assert {e.after["code"] for e in _refusals()} == {"division"}


def test_operator_url_works_once_and_a_newer_one_replaces_it(client, fresh):
    first = oauth.consent_url_create(connection=fresh, operator="ops")
    second = oauth.consent_url_create(connection=fresh, operator="ops")
    resp = client.get(f"{CALLBACK}?{_at_exact(first)}")
    assert resp.status_code == 403 and b"newer one" in resp.content
    query = _at_exact(second)
    assert client.get(f"{CALLBACK}?{query}").status_code == 200
    assert client.get(f"{CALLBACK}?{query}").status_code == 403  # used
    assert [e.tenant_id for e in _refusals()] == [fresh.tenant_id, fresh.tenant_id]


def test_operator_url_for_a_custom_host_that_is_not_allowed_is_refused(fresh, settings):
    from django.core.exceptions import ValidationError

    settings.EXACT_ALLOW_CUSTOM_BASE_URL = False
    with pytest.raises(ValidationError):
        oauth.consent_url_create(connection=fresh, operator="ops")


# --- every refusal is logged and audited ----------------------------------------------------


def _start(client, connection):
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[connection.pk]))
    return resp["Location"]


def test_denied_consent_is_audited_for_the_company(client, fresh, sim, admin_of_a, caplog):
    sim.settings(consent="deny")
    client.force_login(admin_of_a)
    with caplog.at_level(logging.WARNING, logger="exact.consent_flow"):
        resp = client.get(f"{CALLBACK}?{_at_exact(_start(client, fresh))}")
    assert resp.status_code == 400
    (entry,) = _refusals()
    assert entry.tenant == fresh.tenant and entry.after["code"] == "denied"
    assert entry.actor_user == admin_of_a and entry.after["source_address"] == "127.0.0.1"
    assert any("denied" in r.getMessage() for r in caplog.records)


def test_forged_state_is_audited_installation_wide(client, fresh, admin_of_a):
    client.force_login(admin_of_a)
    query = _at_exact(_start(client, fresh)).replace("state=", "state=x")
    assert client.get(f"{CALLBACK}?{query}").status_code == 400
    (entry,) = _refusals()
    assert entry.tenant is None and entry.after["code"] == "state_invalid"


def test_anonymous_forged_callback_is_audited_not_a_500(client, db):
    resp = client.get(CALLBACK, {"code": "x", "state": "nonsense"})
    assert resp.status_code == 400
    (entry,) = _refusals()
    assert entry.actor_label == "exact-oauth-callback" and entry.tenant is None


def test_expired_state_is_audited_for_the_company_it_names(client, fresh, admin_of_a, monkeypatch):
    client.force_login(admin_of_a)
    query = _at_exact(_start(client, fresh))
    later = time.time() + 700
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    monkeypatch.setattr("exact.oauth.time.time", lambda: later)
    assert client.get(f"{CALLBACK}?{query}").status_code == 400
    (entry,) = _refusals()
    assert entry.tenant == fresh.tenant and entry.after["code"] == "state_expired"


def test_bad_code_is_audited(client, fresh, admin_of_a):
    client.force_login(admin_of_a)
    state = parse_qs(_at_exact(_start(client, fresh)))["state"][0]
    resp = client.get(CALLBACK, {"code": "sim-code-forged", "state": state})
    assert resp.status_code == 400
    (entry,) = _refusals()
    assert entry.tenant == fresh.tenant and entry.after["code"] == "code_rejected"
    assert "sim-code-forged" not in str(entry.after) + entry.message


def test_refusals_never_hold_a_token(client, sim, tenant_a, tenant_b, admin_of_a):
    connect(tenant_b, sim)  # holds DIVISION
    mine = ExactConnection.objects.create(
        tenant=tenant_a, region=Region.CUSTOM, custom_base_url=sim.url
    )
    client.force_login(admin_of_a)
    client.get(f"{CALLBACK}?{_at_exact(_start(client, mine))}")
    resp = client.post(reverse("exact:division-choose"), {"division": str(DIVISION)})
    assert resp.status_code == 409
    mine.refresh_from_db()
    (entry,) = _refusals()
    assert mine.grant.refresh_token not in str(entry.after) + entry.message
    assert mine.grant.access_token not in str(entry.after) + entry.message


def test_an_operator_prepares_a_company_without_a_connection_and_hands_out_a_link(
    client, sim, tenant_b
):

    from core.audit import Actor
    from exact.connections import connection_ensure
    from exact.errors import ExactConnectionUnavailable

    actor = Actor.system("manage.py exact_consent_url")
    connection = connection_ensure(
        tenant=tenant_b, actor=actor, region=Region.CUSTOM, custom_base_url=sim.url
    )
    assert connection_ensure(tenant=tenant_b, actor=actor).pk == connection.pk  # idempotent
    url = oauth.consent_url_create(connection=connection, operator="ops", division=DIVISION)
    assert client.get(f"{CALLBACK}?{_at_exact(url)}").status_code == 200
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED
    with pytest.raises(ExactConnectionUnavailable, match="disconnect it"):
        connection_ensure(tenant=tenant_b, actor=actor, region=Region.NL)
    actions = list(
        AuditEntry.objects.filter(tenant=tenant_b).order_by("pk").values_list("action", flat=True)
    )
    assert actions[0] == "exact_connection.created" and "exact_connection.connected" in actions


def test_operator_cannot_prepare_a_custom_host_where_it_is_not_allowed(tenant_b, settings):
    from django.core.exceptions import ValidationError

    from core.audit import Actor
    from exact.connections import connection_ensure

    settings.EXACT_ALLOW_CUSTOM_BASE_URL = False
    with pytest.raises(ValidationError):
        connection_ensure(
            tenant=tenant_b, actor=Actor.system("ops"), region=Region.CUSTOM,
            custom_base_url="https://exact.example.com",
        )
    assert not ExactConnection.objects.filter(tenant=tenant_b).exists()
