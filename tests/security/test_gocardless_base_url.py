"""Where GoCardless access tokens are sent is the installation's business, not a tenant
administrator's (threat model: a tenant admin is trusted with their own company only, never
with where the server sends requests).

With DEBUG off, a tenant administrator cannot make the server send anything to a host of
their choosing: a recording HTTP server on 127.0.0.1 plays that host and must receive
nothing whatever they try in the admin. The API base URL comes from the environment table;
a custom base URL only where GOCARDLESS_ALLOW_CUSTOM_BASE_URL allows it (default: DEBUG; the
system check mlc.E010 refuses it with DEBUG off), set by superusers only."""

import pytest
from django.test import override_settings
from django.urls import reverse

from core.audit import Actor
from gocardless.checks import check_custom_base_url_connections, check_custom_base_url_setting
from gocardless.connect import ConnectError, connection_connect_with_token, connection_test
from gocardless.models import GoCardlessConnection
from tests.factories import GoCardlessConnectionFactory
from tests.gocardless.conftest import RecordingServer, messages_of, oauth_connect, sim_as_sandbox
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim_sandbox(gocardless_simulator, settings, monkeypatch):
    return sim_as_sandbox(gocardless_simulator, settings, monkeypatch)


@pytest.fixture
def recording_server():
    """The host a tenant admin would like the server to talk to."""
    recorder = RecordingServer()
    recorder.server.start()
    try:
        yield recorder
    finally:
        recorder.server.stop()


@pytest.fixture(autouse=True)
def _production(settings):
    settings.DEBUG = False
    if hasattr(settings, "GOCARDLESS_ALLOW_CUSTOM_BASE_URL"):
        del settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL  # the default: as DEBUG


def _change(client, connection, **fields):
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
    return client.post(url, {"environment": "sandbox", "access_token": "",
                             "webhook_secret": "", **fields})


def test_a_tenant_admin_cannot_send_a_token_to_a_host_of_their_choosing(
    client, sim_sandbox, recording_server, tenant_a, admin_of_a
):
    client.force_login(admin_of_a)
    foreign = recording_server.url
    page = client.get(reverse("admin:gocardless_gocardlessconnection_add"))
    assert "custom_base_url" not in page.context["adminform"].form.fields
    assert b'value="custom"' not in page.content

    # Adding with a custom environment: refused, nothing stored.
    response = client.post(reverse("admin:gocardless_gocardlessconnection_add"),
                           {"tenant": tenant_a.pk, "environment": "custom",
                            "custom_base_url": foreign, "access_token": "tok",
                            "webhook_secret": "w"})
    assert response.status_code == 200
    assert "environment" in response.context["adminform"].form.errors
    assert not GoCardlessConnection.objects.exists()

    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             access_token=SIM_ACCESS_TOKEN)
    # Changing to custom: refused.
    response = _change(client, connection, environment="custom", custom_base_url=foreign,
                       access_token=SIM_ACCESS_TOKEN)
    assert response.status_code == 200
    connection.refresh_from_db()
    assert (connection.environment, connection.custom_base_url) == ("sandbox", "")

    # A base URL posted next to a normal environment is not an input: ignored.
    response = _change(client, connection, custom_base_url=foreign,
                       access_token=SIM_ACCESS_TOKEN)
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.custom_base_url == "" and connection.base_url == sim_sandbox.url

    # Everything that sends the token: checking it, Test connection, partner OAuth.
    client.post(reverse("admin:gocardless_gocardlessconnection_test", args=[connection.pk]))
    oauth_connect(client, connection)
    assert recording_server.requests == []
    assert sim_sandbox.call_counts()  # the requests went to "GoCardless"


def test_a_superuser_cannot_either_unless_the_installation_allows_it(
    client, recording_server, tenant_a, superuser, settings
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    client.force_login(superuser)
    response = _change(client, connection, environment="custom",
                       custom_base_url=recording_server.url)
    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.environment == "sandbox"

    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = True  # the simulators' installations
    response = _change(client, connection, environment="custom",
                       custom_base_url=recording_server.url)
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.environment, connection.base_url) == ("custom", recording_server.url)


def test_with_the_setting_on_a_tenant_admin_still_cannot(client, recording_server, tenant_a,
                                                         admin_of_a, settings):
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = True
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    client.force_login(admin_of_a)
    response = _change(client, connection, environment="custom",
                       custom_base_url=recording_server.url)
    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.environment == "sandbox" and connection.custom_base_url == ""


def test_a_connection_left_on_a_custom_host_sends_nothing_from_the_connect_paths(
    client, recording_server, tenant_a, admin_of_a, settings
):
    """Saved before the restriction (or while allowed): the tenant admin cannot change its
    environment, and neither Test connection nor OAuth sends the token there."""
    settings.GOCARDLESS_CLIENT_ID, settings.GOCARDLESS_CLIENT_SECRET = "id", "secret"
    connection = GoCardlessConnectionFactory(tenant=tenant_a, environment="custom",
                                             custom_base_url=recording_server.url)
    client.force_login(admin_of_a)
    page = client.get(reverse("admin:gocardless_gocardlessconnection_change",
                              args=[connection.pk]))
    assert "environment" not in page.context["adminform"].form.fields
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[connection.pk]))
    assert "does not allow a custom GoCardless base URL" in messages_of(response)[-1]
    response = client.get(reverse("admin:gocardless_gocardlessconnection_connect",
                                  args=[connection.pk]))
    assert response.status_code == 302 and "does not allow" in messages_of(response)[-1]
    result = connection_test(connection=connection, actor=Actor.system("test"))
    assert result["ok"] is False
    assert recording_server.requests == []
    [warning] = check_custom_base_url_connections(None)
    assert warning.id == "mlc.W010" and "alpha" in warning.msg


def test_the_operator_service_refuses_a_custom_host_too(recording_server, tenant_a):
    with pytest.raises(ConnectError, match="does not allow a custom"):
        connection_connect_with_token(
            tenant=tenant_a, access_token="tok", webhook_secret="w", environment="custom",
            custom_base_url=recording_server.url, actor=Actor.system("operator"),
        )
    assert recording_server.requests == []


@pytest.mark.parametrize(
    ("debug", "allowed", "ids"),
    [(False, None, []), (False, False, []), (False, True, ["mlc.E010"]), (True, None, []),
     (True, True, [])],
)
def test_the_system_check(debug, allowed, ids):
    extra = {} if allowed is None else {"GOCARDLESS_ALLOW_CUSTOM_BASE_URL": allowed}
    with override_settings(DEBUG=debug, **extra):
        assert [e.id for e in check_custom_base_url_setting(None)] == ids


def test_the_check_is_registered():
    from django.core import checks

    assert check_custom_base_url_setting in checks.registry.registry.get_checks()
    with override_settings(DEBUG=False, GOCARDLESS_ALLOW_CUSTOM_BASE_URL=True):
        assert "mlc.E010" in [e.id for e in checks.run_checks()]
