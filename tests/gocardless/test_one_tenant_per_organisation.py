"""One GoCardless organisation (and its creditor) belongs to one tenant (docs/decisions.md,
2026-11-26).

The partner webhook routes events by organisation; two tenants holding one account would let
one of them book the other's payments. Refused at connect time (OAuth callback, a pasted
token, Test connection) with a message, and by database constraints underneath. The
organisation and creditor come from GoCardless only (the token answer, GET /creditors), so a
refusal names an account only to someone who proved they hold a working token for it."""

import pytest
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from core.models import AuditEntry
from gocardless import connect_oauth
from gocardless.models import ConnectionStatus, GoCardlessConnection
from tests.factories import GoCardlessConnectionFactory
from tests.gocardless.conftest import messages_of, oauth_connect
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db

OAUTH_ORG = "OR000SIM"  # the simulator's first organisation (its consent default)
TAKEN = "already connected to another company"


def _fresh_a(tenant_a):
    return GoCardlessConnectionFactory(tenant=tenant_a, access_token="a-token", organisation_id="",
                                       status=ConnectionStatus.DISCONNECTED)


def _callback(client, connection):
    return oauth_connect(client, connection)


# --- partner OAuth ---------------------------------------------------------------------------


def test_oauth_for_an_organisation_another_tenant_holds_is_refused(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a
):
    held = GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG,
                                       access_token="b-token")
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    response = _callback(client, mine)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:gocardless_gocardlessconnection_change",
                                           args=[mine.pk])
    [message] = messages_of(response)
    assert TAKEN in message and OAUTH_ORG in message  # they proved they hold it
    assert "Bravo" not in message and "bravo" not in message  # not revealed to a tenant admin
    mine.refresh_from_db()
    assert (mine.access_token, mine.organisation_id, mine.status) == (
        "a-token", "", ConnectionStatus.DISCONNECTED)
    held.refresh_from_db()
    assert (held.access_token, held.organisation_id, held.status) == (
        "b-token", OAUTH_ORG, ConnectionStatus.CONNECTED)
    refused = AuditEntry.objects.get(action="gocardlessconnection.connect_refused")
    assert refused.tenant_id == tenant_a.pk and refused.after == {"organisation_id": OAUTH_ORG}
    assert refused.actor_user == admin_of_a
    assert not AuditEntry.objects.filter(action="gocardlessconnection.oauth_connected").exists()


def test_oauth_for_an_account_a_pasted_token_tenant_holds_is_refused(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a
):
    """A pasted token's tenant has no organisation, but the same creditor: same account."""
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="", creditor_id="CR000SIM")
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    assert TAKEN in messages_of(_callback(client, mine))[0]
    mine.refresh_from_db()
    assert (mine.organisation_id, mine.creditor_id, mine.access_token) == ("", "", "a-token")


def test_a_superuser_is_told_which_tenant_holds_it(
    client, sim_sandbox, tenant_a, tenant_b, superuser
):
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG)
    mine = _fresh_a(tenant_a)
    client.force_login(superuser)
    [message] = messages_of(_callback(client, mine))
    assert TAKEN in message and "Bravo Ltd" in message


def test_two_tenants_connecting_at_once_the_constraint_decides(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a, monkeypatch
):
    """The check said free, then the other tenant stored it first: still a message."""
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG)
    mine = _fresh_a(tenant_a)
    real = connect_oauth.connection_holder
    calls = []

    def stale_first_answer(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(connect_oauth, "connection_holder", stale_first_answer)
    client.force_login(admin_of_a)
    [message] = messages_of(_callback(client, mine))
    assert TAKEN in message
    mine.refresh_from_db()
    assert (mine.access_token, mine.organisation_id) == ("a-token", "")
    assert GoCardlessConnection.objects.filter(organisation_id=OAUTH_ORG).count() == 1
    assert AuditEntry.objects.filter(action="gocardlessconnection.connect_refused").count() == 1


def test_reconnecting_the_same_tenant_to_its_own_organisation_is_fine(
    client, sim_sandbox, tenant_a, admin_of_a
):
    mine = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id=OAUTH_ORG,
                                       creditor_id="CR000SIM",
                                       status=ConnectionStatus.NEEDS_REAUTH)
    client.force_login(admin_of_a)
    [message] = messages_of(_callback(client, mine))
    assert "GoCardless connected" in message
    mine.refresh_from_db()
    assert mine.status == ConnectionStatus.CONNECTED and mine.organisation_id == OAUTH_ORG


@pytest.mark.parametrize("status", [ConnectionStatus.DISCONNECTED, ConnectionStatus.NEEDS_REAUTH])
def test_a_connection_that_is_not_connected_still_holds_its_organisation(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a, status
):
    """Status is not ownership: the partner webhook routes by organisation whatever the
    status, so only removing the connection releases it."""
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG, status=status)
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    assert TAKEN in messages_of(_callback(client, mine))[0]


@pytest.mark.parametrize("release", ["delete", "clear"])
def test_released_organisation_can_be_connected_elsewhere(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a, release
):
    held = GoCardlessConnectionFactory(tenant=tenant_b, organisation_id=OAUTH_ORG)
    if release == "delete":
        held.delete()
    else:  # an operator's fix in the database: nothing in a form can do it
        GoCardlessConnection.objects.filter(pk=held.pk).update(organisation_id="")
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    assert "GoCardless connected" in messages_of(_callback(client, mine))[0]
    mine.refresh_from_db()
    assert mine.organisation_id == OAUTH_ORG and mine.status == ConnectionStatus.CONNECTED


# --- no form names an organisation -------------------------------------------------------


def _admin_form(**fields):
    return {"environment": "sandbox", "access_token": "", "webhook_secret": "", **fields}


def test_a_typed_organisation_id_is_ignored_and_reveals_nothing(
    client, tenant_a, tenant_b, admin_of_a
):
    """Before, a tenant admin could type any unclaimed organisation id (and receive its
    partner webhooks), and learn from the refusal which ids another company holds."""
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORTAKEN")
    mine = _fresh_a(tenant_a)
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[mine.pk])
    for typed in ("ORTAKEN", "ORFREE"):
        response = client.post(url, _admin_form(organisation_id=typed, creditor_id="CRX"))
        assert response.status_code == 302  # same answer for a held and a free id
        mine.refresh_from_db()
        assert (mine.organisation_id, mine.creditor_id) == ("", "")
    assert TAKEN not in str([messages_of(response)])


def test_the_add_form_ignores_organisation_ids_too(client, tenant_a, tenant_b, superuser):
    GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORTAKEN")
    client.force_login(superuser)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_add"),
                           _admin_form(tenant=tenant_a.pk, organisation_id="ORTAKEN"))
    assert response.status_code == 302
    assert GoCardlessConnection.objects.get(tenant=tenant_a).organisation_id == ""


# --- pasted access token -----------------------------------------------------------------


def test_test_connection_of_a_pasted_token_for_a_creditor_another_tenant_holds(
    client, sim_sandbox, tenant_a, tenant_b, admin_of_a
):
    """A pasted token does not tell us the organisation, but its creditor belongs to exactly
    one: the same creditor at another tenant is the same GoCardless account."""
    held = GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CR000SIM",
                                       access_token=SIM_ACCESS_TOKEN)
    mine = GoCardlessConnectionFactory(tenant=tenant_a, organisation_id="", creditor_id="",
                                       access_token=SIM_ACCESS_TOKEN,
                                       status=ConnectionStatus.DISCONNECTED)
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[mine.pk]))
    assert response.status_code == 302
    [message] = messages_of(response)
    assert "test failed" in message and TAKEN in message and "CR000SIM" in message
    assert "Bravo" not in message
    mine.refresh_from_db()
    assert mine.status == ConnectionStatus.DISCONNECTED and mine.creditor_id == ""
    assert not AuditEntry.objects.filter(action="gocardlessconnection.status_changed").exists()
    assert AuditEntry.objects.filter(action="gocardlessconnection.connect_refused",
                                     tenant=tenant_a).count() == 1
    held.refresh_from_db()
    assert held.status == ConnectionStatus.CONNECTED

    # Once the other tenant's connection is gone, the same token connects.
    held.delete()
    response = client.post(reverse("admin:gocardless_gocardlessconnection_test",
                                   args=[mine.pk]))
    assert "connected. Creditor" in messages_of(response)[-1]
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
        _migrate_to_latest()
    with pytest.raises(IntegrityError):
        GoCardlessConnectionFactory(tenant=tenant_b, organisation_id="ORDUP")


def test_the_database_refuses_a_second_tenant_for_one_creditor(tenant_a, tenant_b):
    GoCardlessConnectionFactory(tenant=tenant_a, creditor_id="CRDUP")
    with pytest.raises(IntegrityError), transaction.atomic():
        GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CRDUP")
    GoCardlessConnection.objects.filter(tenant=tenant_a).update(creditor_id="")
    GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="")


@pytest.mark.django_db(transaction=True)
def test_the_creditor_migration_lists_existing_duplicates_and_changes_nothing(
    tenant_a, tenant_b
):
    before = [("gocardless", "0005_intake_log_and_quarantine")]
    after = [("gocardless", "0006_one_tenant_per_creditor")]
    MigrationExecutor(db_connection).migrate(before)
    try:
        GoCardlessConnectionFactory(tenant=tenant_a, creditor_id="CRDUP")
        GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CRDUP")
        with pytest.raises(CommandError) as refused:
            MigrationExecutor(db_connection).migrate(after)
        text = str(refused.value)
        assert "CRDUP" in text and "'alpha'" in text and "'bravo'" in text
        assert GoCardlessConnection.objects.filter(creditor_id="CRDUP").count() == 2
    finally:
        GoCardlessConnection.objects.filter(tenant=tenant_b).delete()
        _migrate_to_latest()
    with pytest.raises(IntegrityError):
        GoCardlessConnectionFactory(tenant=tenant_b, creditor_id="CRDUP")


def _migrate_to_latest():
    executor = MigrationExecutor(db_connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
