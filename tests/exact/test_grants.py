"""Exact grants: one refresh-token chain per (app, Exact user), shared by every company of that
user. Exact obsoletes a user's older chain once a newer consent is used (the simulator models
it, tests/simulators/test_exact_oauth.py), so a second consent must replace the chain for
all the user's companies instead of silently breaking the first one."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.core.management.base import CommandError
from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from exact.client import ExactClient
from exact.connect import connection_disconnect
from exact.errors import ExactNeedsReauth
from exact.models import (
    ConnectionStatus,
    ExactConnection,
    ExactGrant,
    GrantStatus,
    Region,
)
from tests.concurrency import at_once
from tests.exact.conftest import connect, grant_for, token_calls
from tests.factories import MembershipFactory, UserFactory
from tests.plugins.exact_sim import DIVISION, ExactApi

pytestmark = pytest.mark.django_db
SECOND = 654321
CALLBACK = "/connect/exact/callback/"


@pytest.fixture
def two_divisions(sim):
    sim.seed_division(division=SECOND, name="Second administration")
    return sim


def _fresh(tenant, sim):
    return ExactConnection.objects.create(
        tenant=tenant, region=Region.CUSTOM, custom_base_url=sim.url
    )


def browser_connect(client, user, connection, division) -> None:
    """What a person does: Connect, consent at Exact, pick the division."""
    client.force_login(user)
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[connection.pk]))
    assert resp.status_code == 302, resp
    at_exact = requests.get(resp["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_exact.headers["Location"])
    page = client.get(f"{back.path}?{back.query}")
    assert page.status_code == 200, page.content
    resp = client.post(reverse("exact:division-choose"), {"division": str(division)})
    assert resp.status_code == 302, resp.content


def _works(sim, connection) -> bool:
    fresh = ExactConnection.objects.select_related("grant", "tenant").get(pk=connection.pk)
    api = ExactClient(fresh, clock=sim.clock.now, sleep=sim.advance)
    return bool(list(api.iter_rows("financial/Journals", select=("Code",))))


def _age(grant_id, seconds):
    ExactGrant.objects.filter(pk=grant_id).update(
        token_issued_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.fixture
def admin_of_b(tenant_b):
    user = UserFactory(username="bea-admin")
    MembershipFactory(user=user, tenant=tenant_b, role="admin")
    return user


def test_two_companies_of_one_exact_user_survive_reconnects_and_refresh_cycles(
    client, two_divisions, tenant_a, tenant_b, admin_of_a, admin_of_b
):
    sim = two_divisions
    a, b = _fresh(tenant_a, sim), _fresh(tenant_b, sim)
    browser_connect(client, admin_of_a, a, DIVISION)
    browser_connect(client, admin_of_b, b, SECOND)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.grant_id == b.grant_id and ExactGrant.objects.count() == 1
    grant = ExactGrant.objects.get()
    assert grant.exact_user_id and grant.division_codes == {DIVISION, SECOND}
    # the first consent's chain is obsolete at Exact; both companies use the newer one
    chains = sim.token_chains()
    assert [c["obsolete"] for c in chains] == [True, False]
    assert _works(sim, a) and _works(sim, b)

    for reconnecting, other, division, admin in (
        (a, b, DIVISION, admin_of_a),
        (b, a, SECOND, admin_of_b),
        (a, b, DIVISION, admin_of_a),
    ):
        browser_connect(client, admin, reconnecting, division)
        assert _works(sim, other) and _works(sim, reconnecting)
        # a whole refresh cycle on the simulator's clock: one refresh serves both companies
        before = token_calls(sim)
        sim.advance(580)
        _age(grant.pk, 580)
        assert _works(sim, a) and _works(sim, b)
        assert token_calls(sim) == before + 1

    assert set(
        ExactConnection.objects.values_list("status", flat=True)
    ) == {ConnectionStatus.CONNECTED}
    assert not AuditEntry.objects.filter(action="exact_connection.needs_reauth").exists()
    assert ExactGrant.objects.count() == 1


def test_another_exact_user_gets_a_grant_of_their_own(sim, tenant_a, tenant_b):
    sim.seed_division(division=SECOND)
    clerk = sim.seed_user("clerk", divisions=[DIVISION, SECOND])
    a = connect(tenant_a, sim)
    b = connect(tenant_b, sim, division=SECOND,
                grant=grant_for(sim, user_id=clerk["UserID"], divisions=(SECOND,)))
    assert a.grant_id != b.grant_id
    sim.advance(580)
    _age(a.grant_id, 580)
    _age(b.grant_id, 580)
    assert _works(sim, a) and _works(sim, b)
    assert token_calls(sim) == 2


def test_disconnecting_one_company_keeps_the_shared_grant_for_the_other(
    sim, tenant_a, tenant_b
):
    sim.seed_division(division=SECOND)
    grant = grant_for(sim, divisions=(DIVISION, SECOND))
    a = connect(tenant_a, sim, grant=grant)
    b = connect(tenant_b, sim, division=SECOND, grant=grant)
    connection_disconnect(connection=a, actor=_system())
    assert ExactGrant.objects.filter(pk=grant.pk).exists()
    assert a.grant_id is None and a.access_token is None
    assert _works(sim, b)
    connection_disconnect(connection=b, actor=_system())
    assert not ExactGrant.objects.exists()  # the last company gone: the tokens are deleted
    entry = AuditEntry.objects.filter(action="exact_connection.disconnected").latest("pk")
    assert entry.after["grant_deleted"] is True


def _system():
    from core.audit import Actor

    return Actor.system("tests")


def test_a_broken_chain_stops_every_company_of_the_grant_and_tells_each(
    sim, tenant_a, tenant_b, admin_of_a, admin_of_b, exact_mail,
    django_capture_on_commit_callbacks,
):
    sim.seed_division(division=SECOND)
    grant = grant_for(sim, divisions=(DIVISION, SECOND))
    a = connect(tenant_a, sim, grant=grant)
    b = connect(tenant_b, sim, division=SECOND, grant=grant)
    thief = ExactApi(sim)
    thief.tokens = {"refresh_token": grant.refresh_token}
    sim.advance(580)
    assert thief.refresh().status_code == 200  # the chain rotates behind our back
    _age(grant.pk, 580)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ExactNeedsReauth):
        _works(sim, a)
    grant.refresh_from_db()
    assert grant.status == GrantStatus.BROKEN
    for connection in (a, b):
        connection.refresh_from_db()
        assert connection.status == ConnectionStatus.NEEDS_REAUTH
        assert "Old refresh token used" in connection.status_reason
    assert sorted(m.to[0] for m in exact_mail) == sorted([admin_of_a.email, admin_of_b.email])
    # neither company's mail names the other
    for message in exact_mail:
        assert "Bravo" not in message.body or "Alpha" not in message.body


def test_a_new_consent_restores_the_companies_it_covers_and_stops_the_others(
    client, sim, tenant_a, tenant_b, admin_of_a
):
    sim.seed_division(division=SECOND)
    third = TenantFactoryC()
    sim.seed_division(division=777777)
    grant = grant_for(sim, divisions=(DIVISION, SECOND, 777777))
    a = connect(tenant_a, sim, grant=grant)
    b = connect(tenant_b, sim, division=SECOND, grant=grant,
                status=ConnectionStatus.NEEDS_REAUTH, status_reason="Old refresh token used.")
    c = connect(third, sim, division=777777, grant=grant)
    # The user reconnects company A and ticks only DIVISION and SECOND at Exact.
    sim.settings(consent_divisions=[DIVISION, SECOND])
    browser_connect(client, admin_of_a, a, DIVISION)
    b.refresh_from_db()
    c.refresh_from_db()
    assert b.status == ConnectionStatus.CONNECTED  # covered again: restored
    assert c.status == ConnectionStatus.NEEDS_REAUTH and "777777" in c.status_reason
    assert AuditEntry.objects.filter(action="exact_connection.restored", tenant=tenant_b).exists()
    assert _works(sim, b)


def TenantFactoryC():
    from tests.factories import TenantFactory

    return TenantFactory(name="Charlie GmbH", slug="charlie")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_workers_on_two_companies_cause_exactly_one_refresh_of_their_grant(
    sim, tenant_a, tenant_b
):
    sim.seed_division(division=SECOND)
    grant = grant_for(sim, divisions=(DIVISION, SECOND))
    a = connect(tenant_a, sim, grant=grant)
    b = connect(tenant_b, sim, division=SECOND, grant=grant)
    _age(grant.pk, 580)
    sim.advance(580)

    def client_of(connection_id):
        mine = ExactConnection.objects.select_related("grant", "tenant").get(pk=connection_id)
        return ExactClient(mine, clock=sim.clock.now)

    results = at_once(
        *[lambda api: len(list(api.iter_rows("financial/Journals", select=("Code",))))] * 8,
        prepare=[lambda pk=c.pk: client_of(pk) for c in (a, b) * 4],
        timeout=30,
    )
    assert len(results) == 8 and all(results)
    assert token_calls(sim) == 1
    grant.refresh_from_db()
    assert grant.last_refresh_at is not None and grant.status == GrantStatus.ACTIVE


# --- the migration: each connection's tokens become a grant -------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_turns_each_connections_tokens_into_a_grant(tenant_a, tenant_b):
    before = [("exact", "0004_sync_queued_at")]
    executor = MigrationExecutor(db_connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        Old = old_apps.get_model("exact", "ExactConnection")
        now = timezone.now()
        Old.objects.create(
            tenant_id=tenant_a.pk, region="nl", division=11, division_name="A",
            status="connected", access_token="at-a", refresh_token="rt-a",
            token_issued_at=now, access_expires_at=now + timedelta(seconds=600),
        )
        Old.objects.create(
            tenant_id=tenant_b.pk, region="be", division=22, status="needs_reauth",
            status_reason="Old refresh token used.", access_token="at-b", refresh_token="rt-b",
        )
        executor = MigrationExecutor(db_connection)
        executor.migrate([("exact", "0005_grants")])
    finally:
        MigrationExecutor(db_connection).migrate(
            MigrationExecutor(db_connection).loader.graph.leaf_nodes("exact")
        )
    a = ExactConnection.objects.get(tenant=tenant_a)
    b = ExactConnection.objects.get(tenant=tenant_b)
    assert a.grant_id != b.grant_id  # no user id was known: one grant each
    assert (a.grant.access_token, a.grant.refresh_token) == ("at-a", "rt-a")
    assert a.grant.token_issued_at == now and a.grant.region == "nl"
    assert a.grant.status == GrantStatus.ACTIVE and a.grant.division_codes == {11}
    assert b.grant.status == GrantStatus.BROKEN and b.grant.region == "be"
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT refresh_token FROM exact_exactgrant WHERE id = %s", [a.grant_id])
        assert "rt-a" not in cursor.fetchone()[0]  # encrypted at rest


@pytest.mark.django_db(transaction=True)
def test_migration_refuses_two_companies_on_one_division_and_changes_nothing(
    tenant_a, tenant_b
):
    before = [("exact", "0005_grants")]
    after = [("exact", "0006_one_tenant_per_division")]
    executor = MigrationExecutor(db_connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        Old = old_apps.get_model("exact", "ExactConnection")
        Old.objects.create(tenant_id=tenant_a.pk, region="nl", division=55, status="connected")
        Old.objects.create(
            tenant_id=tenant_b.pk, region="nl", division=55, status="needs_reauth"
        )
        executor = MigrationExecutor(db_connection)
        with pytest.raises(CommandError) as refused:
            executor.migrate(after)
        text = str(refused.value)
        assert "nl division 55" in text and "'alpha'" in text and "'bravo'" in text
        assert Old.objects.filter(division=55).count() == 2
    finally:
        ExactConnection.objects.filter(tenant=tenant_b).delete()
        MigrationExecutor(db_connection).migrate(
            MigrationExecutor(db_connection).loader.graph.leaf_nodes("exact")
        )
