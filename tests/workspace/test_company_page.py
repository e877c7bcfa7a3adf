"""The company's page shows both connections and connects them (issue 14, Build 1): a second
and a third company are onboarded from the admin through both OAuth flows against the
simulators, by their own administrators."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse

from core.audit import Actor
from exact.connections import connection_ensure
from exact.models import ConnectionStatus, ExactConnection, Region
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import Environment, GoCardlessConnection
from tenants.models import Role, Tenant
from tests.conftest import _member
from tests.gocardless.conftest import oauth_connect, sim_as_sandbox
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db

EXACT_CALLBACK = "/connect/exact/callback/"


def _page(client, tenant) -> str:
    response = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_new_company_shows_two_connect_buttons(client, tenant_a, admin_of_a):
    client.force_login(admin_of_a)
    page = _page(client, tenant_a)
    assert page.count("Not connected") == 2
    assert "Connect Exact Online" in page and "Connect GoCardless" in page


def test_a_viewer_sees_the_state_but_no_buttons(client, tenant_a, viewer_of_a):
    client.force_login(viewer_of_a)
    page = _page(client, tenant_a)
    assert "Not connected" in page and "Connect Exact Online" not in page


def test_an_admin_cannot_connect_another_company(client, tenant_a, tenant_b, admin_of_a):
    client.force_login(admin_of_a)
    response = client.post(reverse("admin:tenants_tenant_connect_exact", args=[tenant_b.pk]))
    assert response.status_code in (403, 404)
    assert not ExactConnection.objects.filter(tenant=tenant_b).exists()


def _exact_onboard(client, tenant, sim, division: int) -> ExactConnection:
    """Press Connect Exact Online on the company page, consent at the simulator, pick the
    division: the connection is live."""
    response = client.post(reverse("admin:tenants_tenant_connect_exact", args=[tenant.pk]))
    assert response.status_code == 302, response
    consent = requests.get(response["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["Location"])
    assert back.path == EXACT_CALLBACK
    picker = client.get(f"{back.path}?{back.query}")
    assert picker.status_code == 200 and str(division) in picker.content.decode()
    chosen = client.post(reverse("exact:division-choose"), {"division": str(division)})
    assert chosen.status_code == 302, chosen.content[:500]
    return ExactConnection.objects.get(tenant=tenant)


def test_two_more_companies_are_onboarded_through_both_oauth_flows(
    client, exact_simulator, gocardless_simulator, settings, monkeypatch, superuser
):
    sim_as_sandbox(gocardless_simulator, settings, monkeypatch)
    second_org = gocardless_simulator.add_organisation(name="Charlie Ltd")
    exact_simulator.seed_division(division=DIVISION, name="Bravo administration")
    exact_simulator.seed_division(division=654321, name="Charlie administration")
    companies = []
    for slug, name in (("bravo", "Bravo Ltd"), ("charlie", "Charlie GmbH")):
        tenant = Tenant.objects.create(name=name, slug=slug)
        admin_user = _member(tenant, Role.ADMIN, f"{slug}-admin")
        # Where Exact lives for the simulators is a superuser's decision (custom host).
        connection_ensure(tenant=tenant, actor=Actor.for_user(superuser), region=Region.CUSTOM,
                          custom_base_url=exact_simulator.url)
        companies.append((tenant, admin_user))

    results = []
    for (tenant, admin_user), division, organisation in (
        (companies[0], DIVISION, None), (companies[1], 654321, second_org["id"]),
    ):
        client.force_login(admin_user)
        exact = _exact_onboard(client, tenant, exact_simulator, division)
        assert (exact.status, exact.division) == (ConnectionStatus.CONNECTED, division)

        gocardless_simulator.configure_oauth(consent="allow", consent_organisation=organisation)
        page = _page(client, tenant)
        assert "Connect GoCardless" in page
        added = client.post(reverse("admin:gocardless_gocardlessconnection_add"),
                            {"tenant": tenant.pk, "environment": Environment.SANDBOX})
        assert added.status_code == 302, added.content.decode()[:2000]
        connection = GoCardlessConnection.objects.get(tenant=tenant)
        answer = oauth_connect(client, connection)
        assert answer.status_code in (200, 302), answer.content[:500]
        connection.refresh_from_db()
        assert connection.status == GoCardlessStatus.CONNECTED
        results.append((exact.division, connection.organisation_id))
        page = _page(client, tenant)
        assert page.count(">Connected<") == 2 and "Reconnect" in page

    # Two companies, two divisions, two GoCardless organisations: nothing shared.
    assert len({division for division, _ in results}) == 2
    assert len({organisation for _, organisation in results}) == 2
    assert all(organisation for _, organisation in results)
