"""One GoCardless organisation belongs to one tenant (docs/decisions.md, 2026-11-26).

The partner webhook routes events by organisation; two tenants holding one organisation would
let one of them book the other's payments. Refused at connect time (OAuth callback, the
admin form where an organisation id is typed, Test connection of a pasted token) with a
message, and by a database constraint underneath."""

import pytest
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from core.models import AuditEntry
from gocardless import connect
from gocardless.models import ConnectionStatus, GoCardlessConnection
from tests.factories import GoCardlessConnectionFactory
from tests.gocardless.conftest import sim_connection
from tests.gocardless.test_connect import _messages, _start
from tests.gocardless.test_connect import connect_stub as _connect_stub

connect_stub = _connect_stub  # the loopback GoCardless Connect token endpoint (a fixture)

pytestmark = pytest.mark.django_db

OAUTH_ORG = "OR00OAUTH"  # what the stub token endpoint answers
TAKEN = "already connected to another company"


def _callback(client, connection):
    _, query = _start(client, connection)
    return client.get("/connect/gocardless/callback/",
                      {"code": "good-code", "state": query["state"][0]})


def _fresh_a(tenant_a):
    return GoCardlessConnectionFactory(tenant=tenant_a, access_token="a-token", organisation_id="",
                                       status=ConnectionStatus.DISCONNECTED)


# --- partner OAuth ---------------------------------------------------------------------------


def test_oauth_for_an_organisation_another_tenant_holds_is_refused(
    client, connect_stub, tenant_a, tenant_b, admin_of_a
):
    held = GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG,
                                       access_token="b-token")
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    response = _callback(client, mine)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:gocardless_gocardlessconnection_change",
                                           args=[mine.pk])
    [message] = _messages(response)
    assert TAKEN in message and OAUTH_ORG in message
    assert "Bravo" not in message and "bravo" not in message  # not revealed to a tenant admin
    mine.refresh_from_db()
    assert (mine.access_token, mine.organisation_id, mine.status) == (
        "a-token", "", ConnectionStatus.DISCONNECTED)
    held.refresh_from_db()
    assert (held.access_token, held.organisation_id, held.status) == (
        "b-token", OAUTH_ORG, ConnectionStatus.CONNECTED)
    refused = AuditEntry.objects.get(action="gocardlessconnection.connect_refused")
    assert refused.tenant_id == tenant_a.pk and refused.after == {"organisation_id": OAUTH_ORG}
    assert not AuditEntry.objects.filter(action="gocardlessconnection.oauth_connected").exists()


def test_a_superuser_is_told_which_tenant_holds_it(
    client, connect_stub, tenant_a, tenant_b, superuser
):
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG)
    mine = _fresh_a(tenant_a)
    client.force_login(superuser)
    [message] = _messages(_callback(client, mine))
    assert TAKEN in message and "Bravo Ltd" in message


def test_two_tenants_connecting_at_once_the_constraint_decides(
    client, connect_stub, tenant_a, tenant_b, admin_of_a, monkeypatch
):
    """The check said free, then the other tenant stored it first: still a message."""
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG)
    mine = _fresh_a(tenant_a)
    real = connect.organisation_holder
    calls = []

    def stale_first_answer(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(connect, "organisation_holder", stale_first_answer)
    client.force_login(admin_of_a)
    [message] = _messages(_callback(client, mine))
    assert TAKEN in message
    mine.refresh_from_db()
    assert (mine.access_token, mine.organisation_id) == ("a-token", "")
    assert GoCardlessConnection.objects.filter(organisation_id=OAUTH_ORG).count() == 1


def test_reconnecting_the_same_tenant_to_its_own_organisation_is_fine(
    client, connect_stub, tenant_a, admin_of_a
):
    mine = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id=OAUTH_ORG,
                                       status=ConnectionStatus.NEEDS_REAUTH)
    client.force_login(admin_of_a)
    [message] = _messages(_callback(client, mine))
    assert "GoCardless connected" in message
    mine.refresh_from_db()
    assert mine.status == ConnectionStatus.CONNECTED and mine.organisation_id == OAUTH_ORG


@pytest.mark.parametrize("status", [ConnectionStatus.DISCONNECTED, ConnectionStatus.NEEDS_REAUTH])
def test_a_connection_that_is_not_connected_still_holds_its_organisation(
    client, connect_stub, tenant_a, tenant_b, admin_of_a, status
):
    """Status is not ownership: the partner webhook routes by organisation whatever the
    status, so only removing the connection (or clearing its organisation) releases it."""
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG, status=status)
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    assert TAKEN in _messages(_callback(client, mine))[0]


@pytest.mark.parametrize("release", ["delete", "clear"])
def test_released_organisation_can_be_connected_elsewhere(
    client, connect_stub, tenant_a, tenant_b, admin_of_a, release
):
    held = GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG)
    if release == "delete":
        held.delete()
    else:
        held.organisation_id = ""
        held.save()
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    assert "GoCardless connected" in _messages(_callback(client, mine))[0]
    mine.refresh_from_db()
    assert mine.organisation_id == OAUTH_ORG and mine.status == ConnectionStatus.CONNECTED


# --- pasted access token -----------------------------------------------------------------


def _admin_form(tenant, **fields):
    return {"tenant": tenant.pk, "environment": "sandbox", "custom_base_url": "",
            "organisation_id": "", "creditor_id": "", "access_token": "",
            "webhook_secret": "", **fields}


def test_admin_form_refuses_an_organisation_id_another_tenant_holds(
    client, tenant_a, tenant_b, admin_of_a
):
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORTAKEN")
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[mine.pk])
    response = client.post(url, _admin_form(tenant_a, organisation_id="ORTAKEN",
                                            access_token="pasted-token"))
    assert response.status_code == 200  # the form again, with the error; not a 500
    errors = response.context["adminform"].form.errors
    assert TAKEN in str(errors["organisation_id"]) and "Bravo" not in str(errors)
    mine.refresh_from_db()
    assert (mine.organisation_id, mine.access_token) == ("", "a-token")

    # A free organisation id is stored.
    response = client.post(url, _admin_form(tenant_a, organisation_id="ORFREE"))
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.organisation_id == "ORFREE"


def test_admin_add_form_refuses_it_too(client, tenant_a, tenant_b, superuser):
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORTAKEN")
    client.force_login(superuser)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_add"),
                           _admin_form(tenant_a, organisation_id="ORTAKEN"))
    assert response.status_code == 200
    errors = str(response.context["adminform"].form.errors["organisation_id"])
    assert TAKEN in errors and "Bravo Ltd" in errors  # a superuser may know
    assert not GoCardlessConnection.objects.filter(tenant=tenant_a).exists()


def test_test_connection_of_a_pasted_token_for_a_creditor_another_tenant_holds(
    client, gocardless_simulator, tenant_a, tenant_b, admin_of_a
):
    """A pasted token does not tell us the organisation, but its creditor belongs to exactly
    one: the same creditor at another tenant is the same GoCardless account."""
    held = sim_connection(gocardless_simulator, tenant=tenant_b, creditor_id="CR000SIM")
    mine = sim_connection(gocardless_simulator, tenant=tenant_a, organisation_id="",
                          creditor_id="", status=ConnectionStatus.DISCONNECTED)
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[mine.pk]))
    assert response.status_code == 302
    [message] = _messages(response)
    assert "test failed" in message and TAKEN in message and "CR000SIM" in message
    assert "Bravo" not in message
    mine.refresh_from_db()
    assert mine.status == ConnectionStatus.DISCONNECTED and mine.creditor_id == ""
    assert not AuditEntry.objects.filter(action="gocardlessconnection.status_changed").exists()
    held.refresh_from_db()
    assert held.status == ConnectionStatus.CONNECTED

    # Once the other tenant's connection is gone, the same token connects.
    held.delete()
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[mine.pk]))
    assert "connected. Creditor" in _messages(response)[-1]
    mine.refresh_from_db()
    assert mine.status == ConnectionStatus.CONNECTED and mine.creditor_id == "CR000SIM"


# --- the database constraint and its migration -----------------------------------------


def test_the_database_refuses_a_second_tenant_for_one_organisation(tenant_a, tenant_b):
    GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="ORDUP")
    with pytest.raises(IntegrityError), transaction.atomic():
        GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORDUP")
    # "Not known yet" may repeat.
    GoCardlessConnection.objects.filter(tenant=tenant_a).update(organisation_id="")
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="")


@pytest.mark.django_db(transaction=True)
def test_the_migration_lists_existing_duplicates_and_changes_nothing(tenant_a, tenant_b):
    before = [("gocardless", "0003_lighter_event_indexes")]
    after = [("gocardless", "0004_one_tenant_per_organisation")]
    executor = MigrationExecutor(db_connection)
    executor.migrate(before)
    try:
        GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="ORDUP")
        GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORDUP")
        executor = MigrationExecutor(db_connection)
        with pytest.raises(CommandError) as refused:
            executor.migrate(after)
        text = str(refused.value)
        assert "ORDUP" in text and "'alpha'" in text and "'bravo'" in text
        assert GoCardlessConnection.objects.filter(organisation_id="ORDUP").count() == 2
    finally:
        GoCardlessConnection.objects.filter(tenant=tenant_b).delete()
        MigrationExecutor(db_connection).migrate(after)
    with pytest.raises(IntegrityError):
        GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORDUP")
