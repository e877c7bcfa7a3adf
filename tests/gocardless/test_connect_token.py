"""Connecting with a pasted access token + webhook secret: in the admin (the token is checked
with GoCardless before anything is stored) and through ``connection_connect_with_token``
(the service the operator command calls). The simulator is GoCardless's sandbox."""

import pytest
from django.urls import reverse

from core.audit import Actor
from core.models import AuditEntry
from gocardless import connect
from gocardless.connect import ConnectError, OrganisationTaken, connection_connect_with_token
from gocardless.models import ConnectionStatus, GoCardlessConnection
from tests.factories import GoCardlessConnectionFactory
from tests.gocardless.conftest import messages_of
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db

OPERATOR = Actor.system("manage.py tenants connect-gocardless")
REFUSED = "gocardlessconnection.connect_refused"


def _add(client, tenant, **fields):
    return client.post(reverse("admin:gocardless_gocardlessconnection_add"),
                       {"tenant": tenant.pk, "environment": "sandbox", "access_token": "",
                        "webhook_secret": "", **fields})


# --- admin -----------------------------------------------------------------------------------


def test_a_tenant_admin_adds_a_connection_with_a_pasted_token(client, sim_sandbox, tenant_a,
                                                              admin_of_a):
    client.force_login(admin_of_a)
    response = _add(client, tenant_a, access_token=SIM_ACCESS_TOKEN, webhook_secret="whsec")
    assert response.status_code == 302
    assert any("connected with the access token (creditor Simulated Creditor Ltd CR000SIM)"
               in m for m in messages_of(response))
    connection = GoCardlessConnection.objects.get(tenant=tenant_a)
    assert connection.access_token == SIM_ACCESS_TOKEN and connection.webhook_secret == "whsec"
    assert (connection.creditor_id, connection.organisation_id) == ("CR000SIM", "")
    assert connection.status == ConnectionStatus.CONNECTED
    entry = AuditEntry.objects.get(action="gocardlessconnection.token_connected")
    assert entry.actor_user == admin_of_a
    assert entry.after == {"creditor_id": "CR000SIM", "access_token": "set"}


def test_a_refused_token_is_a_form_error_and_nothing_is_stored(client, sim_sandbox, tenant_a,
                                                               admin_of_a):
    client.force_login(admin_of_a)
    response = _add(client, tenant_a, access_token="mistyped-token", webhook_secret="whsec")
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "GoCardless refused this access token" in str(errors["access_token"])
    assert not GoCardlessConnection.objects.exists()
    [refusal] = AuditEntry.objects.filter(action=REFUSED)
    assert refusal.tenant == tenant_a and refusal.actor_user == admin_of_a


def test_a_new_token_on_an_existing_connection_is_checked_too(client, sim_sandbox, tenant_a,
                                                             admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, access_token="old-token",
                                             organisation_id="", status="disconnected")
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
    response = client.post(url, {"environment": "sandbox", "access_token": "wrong",
                                 "webhook_secret": ""})
    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.access_token == "old-token"
    response = client.post(url, {"environment": "sandbox", "access_token": SIM_ACCESS_TOKEN,
                                 "webhook_secret": ""})
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.access_token == SIM_ACCESS_TOKEN and connection.status == "connected"


def test_a_token_of_another_account_clears_the_old_oauth_organisation(
    client, sim_sandbox, tenant_a, admin_of_a
):
    """Partner webhooks of the account this tenant no longer uses must not reach it."""
    connection = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="OROLD",
                                             creditor_id="CROLD")
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
    client.post(url, {"environment": "sandbox", "access_token": SIM_ACCESS_TOKEN,
                      "webhook_secret": ""})
    connection.refresh_from_db()
    assert (connection.organisation_id, connection.creditor_id) == ("", "CR000SIM")


def test_a_token_of_an_account_another_tenant_holds_is_refused_by_name_of_the_creditor(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a
):
    GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CR000SIM")
    client.force_login(admin_of_a)
    response = _add(client, tenant_a, access_token=SIM_ACCESS_TOKEN, webhook_secret="whsec")
    assert response.status_code == 200
    error = str(response.context["adminform"].form.errors["access_token"])
    assert "already connected to another company" in error and "CR000SIM" in error
    assert "Bravo" not in error
    assert not GoCardlessConnection.objects.filter(tenant=tenant_a).exists()


def test_changing_the_environment_without_a_new_token_disconnects(client, sim_sandbox,
                                                                 tenant_a, admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a, environment="sandbox")
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
    assert client.post(url, {"environment": "live", "access_token": "",
                             "webhook_secret": ""}).status_code == 302
    connection.refresh_from_db()
    assert connection.environment == "live" and connection.status == "disconnected"


def test_clearing_the_token_in_the_admin_still_works(client, tenant_a, admin_of_a):
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[connection.pk])
    assert client.post(url, {"environment": "sandbox", "access_token": "", "webhook_secret": "",
                             "clear_access_token": "on"}).status_code == 302
    connection.refresh_from_db()
    assert not connection.access_token


# --- the service the operator command calls -------------------------------------------------


def test_connect_with_token_creates_the_connection(sim_sandbox, tenant_a):
    connection = connection_connect_with_token(
        tenant=tenant_a, access_token=f" {SIM_ACCESS_TOKEN}\n", webhook_secret="whsec\n",
        environment="sandbox", actor=OPERATOR,
    )
    assert isinstance(connection, GoCardlessConnection) and connection.tenant == tenant_a
    assert connection.access_token == SIM_ACCESS_TOKEN and connection.webhook_secret == "whsec"
    assert connection.status == ConnectionStatus.CONNECTED and connection.creditor_id == "CR000SIM"
    actions = list(AuditEntry.objects.filter(tenant=tenant_a).values_list("action", "actor_label"))
    assert ("gocardlessconnection.created", OPERATOR.label) in actions
    assert ("gocardlessconnection.token_connected", OPERATOR.label) in actions

    # Again with a new secret: the same connection, updated.
    again = connection_connect_with_token(
        tenant=tenant_a, access_token=SIM_ACCESS_TOKEN, webhook_secret="whsec-2",
        environment="sandbox", actor=OPERATOR,
    )
    assert again.pk == connection.pk and again.webhook_secret == "whsec-2"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"access_token": ""}, "access token is required"),
        ({"webhook_secret": " "}, "webhook secret is required"),
        ({"access_token": "revoked"}, "GoCardless refused this access token"),
        ({"environment": "custom"}, "does not allow a custom GoCardless base URL"),
        ({"environment": "nowhere"}, "Unknown GoCardless environment"),
    ],
)
def test_connect_with_token_refusals_store_nothing_and_are_audited(sim_sandbox, tenant_a,
                                                                   fields, words, settings):
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = False  # the suite allows the simulators' hosts
    arguments = {"tenant": tenant_a, "access_token": SIM_ACCESS_TOKEN, "webhook_secret": "w",
                 "environment": "sandbox", "actor": OPERATOR, **fields}
    with pytest.raises(ConnectError, match=words):
        connection_connect_with_token(**arguments)
    assert not GoCardlessConnection.objects.exists()
    [refusal] = AuditEntry.objects.filter(action=REFUSED)
    assert refusal.tenant == tenant_a and refusal.actor_label == OPERATOR.label


def test_connect_with_token_refuses_an_account_another_tenant_holds(sim_sandbox, tenant_a,
                                                                    tenant_b):
    GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CR000SIM")
    with pytest.raises(OrganisationTaken):
        connection_connect_with_token(tenant=tenant_a, access_token=SIM_ACCESS_TOKEN,
                                      webhook_secret="w", environment="sandbox", actor=OPERATOR)
    assert not GoCardlessConnection.objects.filter(tenant=tenant_a).exists()


def test_connect_with_token_race_is_decided_by_the_constraint(sim_sandbox, tenant_a, tenant_b,
                                                              monkeypatch):
    GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CR000SIM")
    real, calls = connect.connection_holder, []

    def stale_first_answer(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(connect, "connection_holder", stale_first_answer)
    with pytest.raises(OrganisationTaken):
        connection_connect_with_token(tenant=tenant_a, access_token=SIM_ACCESS_TOKEN,
                                      webhook_secret="w", environment="sandbox", actor=OPERATOR)
    assert not GoCardlessConnection.objects.filter(tenant=tenant_a).exists()  # rolled back
    assert AuditEntry.objects.filter(action=REFUSED, tenant=tenant_a).count() == 1  # kept


def test_connect_with_token_to_a_custom_url_where_allowed(gocardless_simulator, settings,
                                                          tenant_a):
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = True
    connection = connection_connect_with_token(
        tenant=tenant_a, access_token=SIM_ACCESS_TOKEN, webhook_secret="w",
        environment="custom", custom_base_url=gocardless_simulator.url, actor=OPERATOR,
    )
    assert connection.base_url == gocardless_simulator.url
