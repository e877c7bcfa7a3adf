"""Connecting with partner OAuth, end to end against the GoCardless simulator (its consent
answers "allow"; it is GoCardless Connect and the sandbox API, see ``sim_sandbox``), from the
admin, for any tenant; every refusal logged and audited; Test connection."""

import logging
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.db import connection as db_connection
from django.urls import reverse

from core.models import AuditEntry
from gocardless import connect_oauth
from gocardless.models import ConnectionStatus, Environment, GoCardlessConnection
from tests.conftest import _member
from tests.factories import GoCardlessConnectionFactory, TenantFactory
from tests.gocardless.conftest import (
    messages_of,
    oauth_connect,
    oauth_consent,
    oauth_start,
)

pytestmark = pytest.mark.django_db

REFUSED = "gocardlessconnection.connect_refused"
CALLBACK = "/connect/gocardless/callback/"


def _add(client, tenant, **fields):
    """The admin's add form, as a tenant administrator fills it in."""
    return client.post(reverse("admin:gocardless_gocardlessconnection_add"),
                       {"tenant": tenant.pk, "environment": "sandbox", "access_token": "",
                        "webhook_secret": "", **fields})


def _refusals(**filters):
    return list(AuditEntry.objects.filter(action=REFUSED, **filters).order_by("pk"))


def test_a_tenant_admin_adds_a_connection_and_connects_it_with_partner_oauth(
    client, sim_sandbox, tenant_a, admin_of_a
):
    """The path that answered 500 before: the add form had no tenant or environment."""
    client.force_login(admin_of_a)
    page = client.get(reverse("admin:gocardless_gocardlessconnection_add"))
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "organisation_id" not in form.fields and "creditor_id" not in form.fields
    assert "custom_base_url" not in form.fields  # a tenant admin never chooses the host
    assert [c for c, _ in form.fields["environment"].choices] == ["live", "sandbox"]

    response = _add(client, tenant_a, webhook_secret="whsec-alpha")
    connection = GoCardlessConnection.objects.get(tenant=tenant_a)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:gocardless_gocardlessconnection_change",
                                           args=[connection.pk])
    assert connection.status == ConnectionStatus.DISCONNECTED and not connection.access_token

    authorize = oauth_start(client, connection)
    assert authorize.startswith(f"{sim_sandbox.url}/oauth/authorize?")
    response = client.get(oauth_consent(authorize))
    assert response.status_code == 302
    assert "GoCardless connected (organisation OR000SIM)" in messages_of(response)[-1]

    connection.refresh_from_db()
    [issued] = sim_sandbox.oauth_tokens()
    assert connection.access_token == issued["access_token"]
    assert (connection.organisation_id, connection.creditor_id) == ("OR000SIM", "CR000SIM")
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.webhook_secret == "whsec-alpha"
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM gocardless_gocardlessconnection WHERE id = %s",
                       [connection.pk])
        [raw] = cursor.fetchone()
    assert issued["access_token"] not in raw  # encrypted at rest
    actions = list(AuditEntry.objects.filter(tenant=tenant_a).values_list("action", flat=True))
    assert {"gocardlessconnection.created", "gocardlessconnection.oauth_connected",
            "gocardlessconnection.status_changed"} <= set(actions)
    assert issued["access_token"] not in str(list(AuditEntry.objects.values("before", "after")))

    # The token works: Test connection against the (simulated) sandbox API.
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[connection.pk]))
    assert "Simulated Creditor Ltd (CR000SIM)" in messages_of(response)[-1]


def test_every_tenant_connects_its_own_organisation(client, sim_sandbox, tenant_a, tenant_b,
                                                    admin_of_a):
    second = sim_sandbox.add_organisation(name="Bravo's GoCardless")
    admin_of_b = _member(tenant_b, "admin", "bob-admin")
    for tenant, admin, organisation in ((tenant_a, admin_of_a, "OR000SIM"),
                                        (tenant_b, admin_of_b, second["id"])):
        client.force_login(admin)
        sim_sandbox.configure_oauth(consent_organisation=organisation)
        assert _add(client, tenant).status_code == 302
        connection = GoCardlessConnection.objects.get(tenant=tenant)
        assert "GoCardless connected" in messages_of(oauth_connect(client, connection))[-1]
    found = dict(GoCardlessConnection.objects.values_list("tenant__slug", "organisation_id"))
    assert found == {"alpha": "OR000SIM", "bravo": second["id"]}
    creditors = dict(GoCardlessConnection.objects.values_list("tenant__slug", "creditor_id"))
    assert creditors == {"alpha": "CR000SIM", "bravo": second["creditor_id"]}


def test_the_organisation_is_the_token_answers_whatever_the_request_says(
    client, sim_sandbox, tenant_a, admin_of_a
):
    """Parameters a browser could add to the callback never choose the organisation."""
    connection = GoCardlessConnectionFactory(tenant=tenant_a, environment="sandbox",
                                             organisation_id="", access_token=None,
                                             status="disconnected")
    client.force_login(admin_of_a)
    callback = oauth_consent(oauth_start(client, connection))
    client.get(callback + "&organisation_id=ORSOMEONEELSE&organisation=ORX")
    connection.refresh_from_db()
    assert connection.organisation_id == "OR000SIM"


def test_the_state_is_single_use(client, sim_sandbox, tenant_a, admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             status="disconnected")
    client.force_login(admin_of_a)
    callback = oauth_consent(oauth_start(client, connection))
    assert "GoCardless connected" in messages_of(client.get(callback))[-1]
    response = client.get(callback)
    assert any("not started in this browser session" in m for m in messages_of(response))
    [refusal] = _refusals()
    assert refusal.actor_user == admin_of_a and refusal.tenant == tenant_a
    assert "not started in this browser session" in refusal.message


def test_denied_consent_is_refused_logged_and_audited(client, sim_sandbox, tenant_a,
                                                      admin_of_a, caplog):
    sim_sandbox.configure_oauth(consent="deny")
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             access_token="kept", status="disconnected")
    client.force_login(admin_of_a)
    with caplog.at_level(logging.WARNING, logger="gocardless.connect"):
        response = oauth_connect(client, connection)
    assert response["Location"] == reverse("admin:gocardless_gocardlessconnection_change",
                                           args=[connection.pk])
    assert "access_denied" in messages_of(response)[-1]
    connection.refresh_from_db()
    assert (connection.access_token, connection.status) == ("kept", "disconnected")
    [refusal] = _refusals()
    assert (refusal.tenant, refusal.actor_user) == (tenant_a, admin_of_a)
    assert "access_denied" in refusal.message and "127.0.0.1" in refusal.message
    assert "connect refused" in caplog.text and "access_denied" in caplog.text


def test_a_forged_state_is_refused_and_audited(client, sim_sandbox, tenant_a, admin_of_a):
    GoCardlessConnectionFactory(tenant=tenant_a)
    client.force_login(admin_of_a)
    response = client.get(CALLBACK, {"code": "x", "state": "forged:state"})
    assert response["Location"] == reverse("admin:gocardless_gocardlessconnection_changelist")
    assert any("invalid or has expired" in m for m in messages_of(response))
    [refusal] = _refusals()
    assert refusal.tenant is None and refusal.actor_user == admin_of_a
    assert sim_sandbox.oauth_tokens() == []  # no code was exchanged


def test_an_expired_state_is_refused_and_audited_for_its_tenant(
    client, sim_sandbox, tenant_a, admin_of_a, monkeypatch
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             status="disconnected")
    client.force_login(admin_of_a)
    callback = oauth_consent(oauth_start(client, connection))
    later = time.time() + connect_oauth.STATE_MAX_AGE + 1
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))
    response = client.get(callback)
    assert any("invalid or has expired" in m for m in messages_of(response))
    connection.refresh_from_db()
    assert connection.status == "disconnected" and sim_sandbox.oauth_tokens() == []
    [refusal] = _refusals()
    assert refusal.tenant == tenant_a and "expired" in refusal.message


def test_a_bad_code_is_refused_and_audited(client, sim_sandbox, tenant_a, admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             access_token="kept", status="disconnected")
    client.force_login(admin_of_a)
    callback = oauth_consent(oauth_start(client, connection))
    response = client.get(callback.replace("code=", "code=stolen"))
    assert any("refused the authorisation" in m and "invalid_grant" in m
               for m in messages_of(response))
    connection.refresh_from_db()
    assert (connection.access_token, connection.status) == ("kept", "disconnected")
    [refusal] = _refusals(tenant=tenant_a)
    assert "invalid_grant" in refusal.message and refusal.actor_user == admin_of_a


def test_the_callback_without_a_signed_in_admin_is_audited_as_the_internet(
    client, sim_sandbox, tenant_a, admin_of_a, monkeypatch
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             status="disconnected")
    client.force_login(admin_of_a)
    callback = oauth_consent(oauth_start(client, connection))
    client.logout()

    response = client.get(callback, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    [refusal] = _refusals()
    assert refusal.actor_type == "webhook" and refusal.actor_user is None
    assert "203.0.113.9" in refusal.message and refusal.tenant == tenant_a  # state is ours
    assert sim_sandbox.oauth_tokens() == [] and GoCardlessConnection.objects.get().status == (
        "disconnected")

    # Forged states from the internet: audited up to a cap per hour, then only logged.
    monkeypatch.setattr(connect_oauth, "ANONYMOUS_AUDITS_PER_HOUR", 3)
    for n in range(5):
        client.get(CALLBACK, {"state": f"forged{n}", "code": "x"}, REMOTE_ADDR="198.51.100.7")
    assert len(_refusals()) == 3
    assert _refusals()[-1].tenant is None


def test_a_signed_in_user_who_is_not_staff_is_audited_as_themselves(client, sim_sandbox,
                                                                     tenant_a):
    from tests.factories import UserFactory

    member = UserFactory(username="not-staff", is_staff=False)
    client.force_login(member)
    response = client.get(CALLBACK, {"state": "forged", "code": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    [refusal] = _refusals()
    assert refusal.actor_user == member and "without a signed-in staff user" in refusal.message


def test_a_user_who_does_not_administer_the_tenant_is_refused(
    sim_sandbox, tenant_a, operator_of_a
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="",
                                             status="disconnected")
    session = {}
    authorize = connect_oauth.oauth_authorize_url(connection=connection, session=session)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    with pytest.raises(connect_oauth.ConnectError, match="Only an administrator"):
        connect_oauth.oauth_callback_complete(params={"state": state, "code": "x"},
                                              session=session, user=operator_of_a,
                                              source="192.0.2.1")
    [refusal] = _refusals()
    assert refusal.actor_user == operator_of_a and "does not administer" in refusal.message


def test_an_operator_cannot_start_connecting(client, sim_sandbox, tenant_a, operator_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    client.force_login(operator_of_a)
    response = client.get(reverse("admin:gocardless_gocardlessconnection_connect",
                                  args=[connection.pk]))
    assert response.status_code == 403


def test_connect_for_another_tenant_is_not_found(client, sim_sandbox, tenant_b, admin_of_a):
    other = GoCardlessConnectionFactory(tenant=tenant_b)
    client.force_login(admin_of_a)
    response = client.get(reverse("admin:gocardless_gocardlessconnection_connect",
                                  args=[other.pk]))
    assert response.status_code == 404


def test_connect_urls_by_environment(settings):
    from gocardless.connect import ConnectError
    from gocardless.connect_oauth import connect_base_url

    settings.GOCARDLESS_CONNECT_URL = ""
    assert connect_base_url(Environment.LIVE) == "https://connect.gocardless.com"
    assert connect_base_url(Environment.SANDBOX) == "https://connect-sandbox.gocardless.com"
    with pytest.raises(ConnectError):
        connect_base_url(Environment.CUSTOM)


def test_the_token_exchange_refuses_plain_http_beyond_loopback():
    from gocardless import errors
    from gocardless.client import oauth_exchange_code

    with pytest.raises(errors.ApiUsageError, match="https"):
        oauth_exchange_code(token_url="http://connect.example.test/oauth/access_token",
                            code="c", redirect_uri="r", client_id="i", client_secret="s")


# --- Test connection ------------------------------------------------------------------------


def test_test_connection_button_shows_creditor_and_schemes(
    client, sim_sandbox, tenant_a, admin_of_a
):
    from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

    connection = GoCardlessConnectionFactory(tenant=tenant_a, access_token=SIM_ACCESS_TOKEN,
                                             status=ConnectionStatus.DISCONNECTED)
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[connection.pk]))
    assert response.status_code == 302
    [message] = messages_of(response)
    assert "Simulated Creditor Ltd (CR000SIM): bacs, sepa_core" in message
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED and connection.creditor_id == "CR000SIM"
    assert AuditEntry.objects.filter(action="gocardlessconnection.status_changed",
                                     actor_user=admin_of_a).count() == 1


def test_test_connection_action_with_a_bad_token_needs_reauth(
    client, sim_sandbox, tenant_a, admin_of_a
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, access_token="bad-token")
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_changelist"),
                           {"action": "test_connection", "_selected_action": [connection.pk]})
    assert response.status_code == 302
    assert any("test failed" in m and "401" in m for m in messages_of(response))
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_REAUTH
    entry = AuditEntry.objects.get(action="gocardlessconnection.status_changed")
    assert entry.before == {"status": "connected"} and entry.after == {"status": "needs_reauth"}


def test_change_page_shows_the_buttons_and_no_secret(client, tenant_a, admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, access_token="tok-PLAINTEXT")
    client.force_login(admin_of_a)
    response = client.get(reverse("admin:gocardless_gocardlessconnection_change",
                                  args=[connection.pk]))
    assert response.status_code == 200
    assert b"Test connection" in response.content and b"Connect GoCardless" in response.content
    assert b"PLAINTEXT" not in response.content
    assert str(tenant_a.uuid).encode() in response.content  # the webhook URL to register
    form = response.context["adminform"].form
    assert "tenant" not in form.fields  # a connection never moves to another tenant
    assert "organisation_id" not in form.fields


def test_a_superuser_connects_a_tenant_that_has_no_admin(client, sim_sandbox, superuser):
    lonely = TenantFactory(name="Lonely NV", slug="lonely")
    client.force_login(superuser)
    assert _add(client, lonely).status_code == 302
    connection = GoCardlessConnection.objects.get(tenant=lonely)
    assert "GoCardless connected" in messages_of(oauth_connect(client, connection))[-1]
