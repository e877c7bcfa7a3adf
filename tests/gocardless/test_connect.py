"""Connecting: partner OAuth (against a loopback stand-in for connect.gocardless.com, since
the simulator has no OAuth endpoints), Test connection against the simulator, audited status."""

import json
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.messages import get_messages
from django.db import connection as db_connection
from django.urls import reverse
from werkzeug.wrappers import Request, Response

from core.models import AuditEntry
from gocardless.models import ConnectionStatus, Environment
from simulators.harness import SimulatorServer
from tests.factories import GoCardlessConnectionFactory
from tests.gocardless.conftest import sim_connection

pytestmark = pytest.mark.django_db


class TokenEndpoint:
    """POST /oauth/access_token as GoCardless Connect answers it (notes §1.5)."""

    def __init__(self):
        self.requests = []
        self.server = SimulatorServer(self)

    def __call__(self, environ, start_response):
        request = Request(environ)
        form = request.form.to_dict()
        self.requests.append((request.path, form))
        if request.path != "/oauth/access_token" or form.get("code") != "good-code":
            body, status = {"error": "invalid_grant"}, 400
        else:
            body, status = {
                "access_token": "oauth-token-PLAINTEXT", "token_type": "bearer",
                "scope": "read_write", "organisation_id": "OR00OAUTH", "email": "x@example.test",
            }, 200
        return Response(json.dumps(body), status=status,
                        content_type="application/json")(environ, start_response)


@pytest.fixture
def connect_stub(settings, monkeypatch):
    stub = TokenEndpoint()
    stub.server.start()
    settings.GOCARDLESS_CONNECT_URL = stub.server.url
    settings.GOCARDLESS_CLIENT_ID = "partner-client-id"
    settings.GOCARDLESS_CLIENT_SECRET = "partner-client-secret"
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http only
    yield stub
    stub.server.stop()


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _start(client, connection):
    response = client.get(reverse("admin:gocardless_gocardlessconnection_connect",
                                  args=[connection.pk]))
    assert response.status_code == 302
    target = urlparse(response["Location"])
    return target, parse_qs(target.query)


def test_partner_oauth_stores_the_token_encrypted_and_the_organisation(
    client, connect_stub, tenant_a, admin_of_a
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, access_token=None,
                                             organisation_id="", status="disconnected")
    client.force_login(admin_of_a)
    target, query = _start(client, connection)
    assert target.path == "/oauth/authorize"
    assert query["client_id"] == ["partner-client-id"] and query["scope"] == ["read_write"]
    assert query["redirect_uri"] == ["https://connector.example.test/connect/gocardless/callback/"]

    response = client.get("/connect/gocardless/callback/",
                          {"code": "good-code", "state": query["state"][0]})
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.access_token == "oauth-token-PLAINTEXT"
    assert connection.organisation_id == "OR00OAUTH"
    assert connection.status == ConnectionStatus.CONNECTED
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM gocardless_gocardlessconnection WHERE id = %s",
                       [connection.pk])
        [raw] = cursor.fetchone()
    assert "PLAINTEXT" not in raw  # encrypted at rest
    path, form = connect_stub.requests[-1]
    assert path == "/oauth/access_token"
    assert form["grant_type"] == "authorization_code" and form["client_id"] == "partner-client-id"
    audit = AuditEntry.objects.filter(tenant=tenant_a).values_list("action", "after", "message")
    assert ("gocardlessconnection.status_changed", {"status": "connected"}, "") in list(audit)
    assert "PLAINTEXT" not in str(list(audit))

    # The state is single-use.
    response = client.get("/connect/gocardless/callback/",
                          {"code": "good-code", "state": query["state"][0]})
    assert any("not started in this browser session" in m for m in _messages(response))


def test_a_refused_code_leaves_the_connection_alone(client, connect_stub, tenant_a, admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, status="disconnected")
    client.force_login(admin_of_a)
    _, query = _start(client, connection)
    response = client.get("/connect/gocardless/callback/",
                          {"code": "stolen", "state": query["state"][0]})
    assert any("token exchange refused" in m for m in _messages(response))
    connection.refresh_from_db()
    assert connection.status == "disconnected"


def test_a_forged_state_is_refused(client, connect_stub, tenant_a, admin_of_a):
    GoCardlessConnectionFactory(tenant=tenant_a)
    client.force_login(admin_of_a)
    response = client.get("/connect/gocardless/callback/", {"code": "good-code", "state": "x:y"})
    assert any("invalid or has expired" in m for m in _messages(response))
    assert connect_stub.requests == []


def test_connect_for_another_tenant_is_not_found(client, connect_stub, tenant_b, admin_of_a):
    other = GoCardlessConnectionFactory(tenant=tenant_b)
    client.force_login(admin_of_a)
    response = client.get(reverse("admin:gocardless_gocardlessconnection_connect",
                                  args=[other.pk]))
    assert response.status_code == 404


def test_connect_urls_by_environment(settings):
    from gocardless.connect import ConnectError, connect_base_url

    settings.GOCARDLESS_CONNECT_URL = ""
    assert connect_base_url(Environment.LIVE) == "https://connect.gocardless.com"
    assert connect_base_url(Environment.SANDBOX) == "https://connect-sandbox.gocardless.com"
    with pytest.raises(ConnectError):
        connect_base_url(Environment.CUSTOM)


def test_test_connection_button_shows_creditor_and_schemes(
    client, gocardless_simulator, tenant_a, admin_of_a
):
    connection = sim_connection(gocardless_simulator, tenant=tenant_a,
                                status=ConnectionStatus.DISCONNECTED, creditor_id="")
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[connection.pk]))
    assert response.status_code == 302
    [message] = _messages(response)
    assert "Simulated Creditor Ltd (CR000SIM): bacs, sepa_core" in message
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED and connection.creditor_id == "CR000SIM"
    assert AuditEntry.objects.filter(action="gocardlessconnection.status_changed",
                                     actor_user=admin_of_a).count() == 1


def test_test_connection_action_with_a_bad_token_needs_reauth(
    client, gocardless_simulator, tenant_a, admin_of_a
):
    connection = sim_connection(gocardless_simulator, tenant=tenant_a, access_token="bad-token")
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_changelist"),
                           {"action": "test_connection", "_selected_action": [connection.pk]})
    assert response.status_code == 302
    assert any("test failed" in m and "401" in m for m in _messages(response))
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_REAUTH
    entry = AuditEntry.objects.get(action="gocardlessconnection.status_changed")
    assert entry.before == {"status": "connected"} and entry.after == {"status": "needs_reauth"}


def test_change_page_shows_the_buttons_and_no_secret(client, gocardless_simulator, tenant_a,
                                                     admin_of_a):
    connection = sim_connection(gocardless_simulator, tenant=tenant_a,
                                access_token="tok-PLAINTEXT")
    client.force_login(admin_of_a)
    response = client.get(reverse("admin:gocardless_gocardlessconnection_change",
                                  args=[connection.pk]))
    assert response.status_code == 200
    assert b"Test connection" in response.content and b"Connect GoCardless" in response.content
    assert b"PLAINTEXT" not in response.content
    assert str(tenant_a.uuid).encode() in response.content  # the webhook URL to register
