"""The connect flow end to end through our real views and the simulator's consent page
(non-interactive), and each failure page."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection as db_connection
from django.urls import reverse
from django_q.models import Schedule

from core.models import AuditEntry
from exact.models import ConnectionStatus, Region
from exact.schedules import connections_due_for_sync
from simulators.exact_online import Simulator
from tests.factories import ExactConnectionFactory, UserFactory
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
CALLBACK = "/connect/exact/callback/"


@pytest.fixture
def fresh(tenant_a, sim):
    return ExactConnectionFactory(
        tenant=tenant_a,
        region=Region.CUSTOM,
        custom_base_url=sim.url,
        division=None,
        division_name="",
        access_token=None,
        refresh_token=None,
        status=ConnectionStatus.DISCONNECTED,
    )


def _start(client, connection):
    """Press the Connect button; return Exact's authorize URL."""
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[connection.pk]))
    assert resp.status_code == 302
    return resp["Location"]


def _consent(authorize_url):
    """The browser at Exact: consent (non-interactive) redirects back to our callback."""
    resp = requests.get(authorize_url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    back = urlsplit(resp.headers["Location"])
    assert back.path == CALLBACK
    return back.query


def test_connect_end_to_end(client, fresh, sim, admin_of_a, django_capture_on_commit_callbacks):
    sim.seed_division(division=654321, name="Second administration")
    client.force_login(admin_of_a)
    authorize = _start(client, fresh)
    assert authorize.startswith(f"{sim.url}/api/oauth2/auth?")
    params = parse_qs(urlsplit(authorize).query)
    assert params["client_id"] == ["sim-client-id"] and params["response_type"] == ["code"]
    assert params["redirect_uri"] == ["https://connector.example.test/connect/exact/callback/"]

    page = client.get(f"{CALLBACK}?{_consent(authorize)}")
    assert page.status_code == 200
    assert str(DIVISION).encode() in page.content and b"Second administration" in page.content
    fresh.refresh_from_db()
    assert fresh.refresh_token and fresh.token_issued_at  # stored (encrypted) already
    assert fresh.status == ConnectionStatus.DISCONNECTED  # not usable before the choice
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT refresh_token FROM exact_exactgrant WHERE id = %s", [fresh.grant_id])
        stored = cursor.fetchone()[0]
    assert stored and fresh.refresh_token not in stored  # the column holds ciphertext

    resp = client.post(reverse("exact:division-choose"), {"division": "654321"})
    assert resp.status_code == 302
    assert resp["Location"] == reverse("admin:exact_exactconnection_change", args=[fresh.pk])
    fresh.refresh_from_db()
    assert (fresh.status, fresh.division) == (ConnectionStatus.CONNECTED, 654321)
    assert fresh.division_name == "Second administration"
    assert len(fresh.webhook_subscription_ids) == 2
    # the sync sweep exists (even if nobody ran `manage.py schedules`) and picks the tenant
    assert Schedule.objects.filter(name="exact.sync_due").exists()
    assert not Schedule.objects.filter(name__startswith="exact-sync:").exists()
    assert [c.tenant_id for c in connections_due_for_sync()] == [fresh.tenant_id]
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"exact_connection.consent_received", "exact_connection.connected"} <= actions

    # the change page shows token health and offers Reconnect / Test / Disconnect
    page = client.get(resp["Location"])
    assert b"Reconnect Exact Online" in page.content and b"Test connection" in page.content
    assert fresh.access_token.encode() not in page.content
    assert fresh.refresh_token.encode() not in page.content


def test_denied_consent(client, fresh, sim, admin_of_a):
    sim.settings(consent="deny")
    client.force_login(admin_of_a)
    resp = client.get(f"{CALLBACK}?{_consent(_start(client, fresh))}")
    assert resp.status_code == 400
    assert b"Consent was not given" in resp.content
    fresh.refresh_from_db()
    assert fresh.refresh_token is None


def test_tampered_state(client, fresh, admin_of_a):
    client.force_login(admin_of_a)
    query = _consent(_start(client, fresh)).replace("state=", "state=x")
    resp = client.get(f"{CALLBACK}?{query}")
    assert resp.status_code == 400 and b"State mismatch" in resp.content


def test_expired_state(client, fresh, admin_of_a, monkeypatch):
    client.force_login(admin_of_a)
    query = _consent(_start(client, fresh))
    later = time.time() + 700
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    resp = client.get(f"{CALLBACK}?{query}")
    assert resp.status_code == 400 and b"expired" in resp.content


def test_state_of_another_users_session(client, fresh, tenant_a, admin_of_a):
    client.force_login(admin_of_a)
    query = _consent(_start(client, fresh))
    other = UserFactory(username="mallory")
    from tests.factories import MembershipFactory

    MembershipFactory(user=other, tenant=tenant_a, role="admin")
    client.force_login(other)
    resp = client.get(f"{CALLBACK}?{query}")
    assert resp.status_code == 403 and b"another user" in resp.content


def test_state_replayed_in_a_new_session(client, fresh, admin_of_a):
    client.force_login(admin_of_a)
    query = _consent(_start(client, fresh))
    client.logout()
    client.force_login(admin_of_a)  # same user, a new session without the nonce
    resp = client.get(f"{CALLBACK}?{query}")
    assert resp.status_code == 403


def test_reused_code(client, fresh, sim, admin_of_a):
    client.force_login(admin_of_a)
    first = _consent(_start(client, fresh))
    assert client.get(f"{CALLBACK}?{first}").status_code == 200
    code = parse_qs(first)["code"][0]
    second = parse_qs(_consent(_start(client, fresh)))
    resp = client.get(CALLBACK, {"code": code, "state": second["state"][0]})
    assert resp.status_code == 400 and b"already used" in resp.content
    # and Exact itself refuses it too, when our session does not know it
    client.logout()
    client.force_login(admin_of_a)
    third = parse_qs(_consent(_start(client, fresh)))
    resp = client.get(CALLBACK, {"code": code, "state": third["state"][0]})
    assert resp.status_code == 400 and b"rejected" in resp.content


def test_expired_code(client, fresh, sim, admin_of_a, monkeypatch):
    client.force_login(admin_of_a)
    query = _consent(_start(client, fresh))
    sim.advance(200)  # Exact's codes live ~3 minutes
    later = time.time() + 200
    monkeypatch.setattr("exact.oauth.time.time", lambda: later)
    resp = client.get(f"{CALLBACK}?{query}")
    assert resp.status_code == 400 and b"Authorization code expired" in resp.content


def test_wrong_region(client, fresh, admin_of_a):
    """The user consented at another Exact host: our host's token endpoint rejects the code."""
    other = Simulator(auto_consent=True).start()
    try:
        other.seed_division(division=DIVISION)
        client.force_login(admin_of_a)
        ours = urlsplit(_start(client, fresh))
        elsewhere = f"{other.url}{ours.path}?{ours.query}"
        resp = client.get(f"{CALLBACK}?{_consent(elsewhere)}")
    finally:
        other.stop()
    assert resp.status_code == 400
    assert b"wrong region" in resp.content


def test_division_outside_the_consent(client, fresh, sim, admin_of_a):
    sim.seed_division(division=654321)
    sim.settings(consent_divisions=[DIVISION])
    client.force_login(admin_of_a)
    page = client.get(f"{CALLBACK}?{_consent(_start(client, fresh))}")
    assert page.status_code == 200 and b"654321" not in page.content
    resp = client.post(reverse("exact:division-choose"), {"division": "654321"})
    assert resp.status_code == 403 and b"not one of the divisions" in resp.content
    fresh.refresh_from_db()
    assert fresh.status != ConnectionStatus.CONNECTED and fresh.division is None


def test_only_tenant_admins_may_connect(client, fresh, operator_of_a):
    client.force_login(operator_of_a)
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[fresh.pk]))
    assert resp.status_code == 403


def test_other_tenants_connection_is_invisible(client, fresh, tenant_b):
    from tests.factories import MembershipFactory

    user = UserFactory(username="bob")
    MembershipFactory(user=user, tenant=tenant_b, role="admin")
    client.force_login(user)
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[fresh.pk]))
    assert resp.status_code == 404


def test_anonymous_callback_is_refused(client, fresh, admin_of_a):
    client.force_login(admin_of_a)
    query = _consent(_start(client, fresh))
    client.logout()
    resp = client.get(f"{CALLBACK}?{query}")
    assert resp.status_code == 403


def test_reconnect_to_another_division_moves_the_subscriptions(client, sim, connection, admin_of_a):
    from exact.models import ExactAccount
    from exact.webhooks import subscriptions_create
    from tests.exact.factories import ExactAccountFactory

    subscriptions_create(connection=connection)
    ExactAccountFactory(tenant=connection.tenant)  # a mirror row of the old division
    sim.seed_division(division=654321)
    client.force_login(admin_of_a)
    assert client.get(f"{CALLBACK}?{_consent(_start(client, connection))}").status_code == 200
    resp = client.post(reverse("exact:division-choose"), {"division": "654321"})
    assert resp.status_code == 302
    connection.refresh_from_db()
    assert connection.division == 654321 and connection.status == ConnectionStatus.CONNECTED
    divisions = sorted(s.division for s in sim.state.subscriptions.values())
    assert divisions == [654321, 654321]  # the old division's subscriptions are gone
    assert not ExactAccount.objects.filter(tenant=connection.tenant).exists()
