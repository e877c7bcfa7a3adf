"""One company per division: the picker offers only the consent's own divisions, marks those
another company holds (without naming it), never pre-selects one, and refuses it with a page
(never a 500); the database constraint decides a race. An accountant may attach several
divisions of one consent to several companies they administer."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse

from core.audit import Actor
from core.models import AuditEntry
from exact import connections
from exact.connect import connection_division_attach
from exact.connections import connection_choose_division
from exact.errors import ExactConnectionUnavailable, ExactDivisionTaken
from exact.models import ConnectionStatus, ExactConnection, Region
from tests.exact.conftest import connect, grant_for
from tests.factories import MembershipFactory
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
SECOND, THIRD = 654321, 777777
CALLBACK = "/connect/exact/callback/"


@pytest.fixture
def divisions(sim):
    sim.seed_division(division=SECOND, name="Second administration")
    sim.seed_division(division=THIRD, name="Third administration")
    return sim


@pytest.fixture
def fresh(tenant_a, sim):
    return ExactConnection.objects.create(
        tenant=tenant_a, region=Region.CUSTOM, custom_base_url=sim.url
    )


def _picker(client, user, connection):
    client.force_login(user)
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[connection.pk]))
    at_exact = requests.get(resp["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_exact.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def _radio(page, code) -> str:
    html = page.content.decode()
    start = html.index(f'value="{code}"')
    return html[html.rindex("<input", 0, start) : html.index(">", start) + 1]


def test_picker_marks_divisions_another_company_holds_and_never_preselects_them(
    client, divisions, fresh, tenant_b, admin_of_a
):
    connect(tenant_b, divisions, division=DIVISION)  # Bravo holds the first division
    page = _picker(client, admin_of_a, fresh)
    assert page.status_code == 200
    assert "disabled" in _radio(page, DIVISION)
    assert b"already connected to another company" in page.content
    assert b"Bravo" not in page.content  # never named
    assert "checked" in _radio(page, SECOND) and "checked" not in _radio(page, DIVISION)


def test_choosing_a_taken_division_is_refused_with_a_page_and_audited(
    client, divisions, fresh, tenant_b, admin_of_a
):
    held = connect(tenant_b, divisions, division=DIVISION)
    assert _picker(client, admin_of_a, fresh).status_code == 200
    resp = client.post(reverse("exact:division-choose"), {"division": str(DIVISION)})
    assert resp.status_code == 409
    assert b"already connected to another company" in resp.content and b"Bravo" not in resp.content
    fresh.refresh_from_db()
    assert fresh.status != ConnectionStatus.CONNECTED and fresh.division is None
    held.refresh_from_db()
    assert held.status == ConnectionStatus.CONNECTED and held.tenant == tenant_b
    entry = AuditEntry.objects.get(action="exact_connection.connect_refused")
    assert entry.tenant == fresh.tenant and entry.after["code"] == "division_taken"


def test_two_companies_choosing_at_once_the_constraint_decides(
    divisions, fresh, tenant_b, monkeypatch
):
    connect(tenant_b, divisions, division=DIVISION)
    fresh.grant = grant_for(divisions, divisions=(DIVISION, SECOND))
    fresh.save()
    # the other company commits between our check and our write
    monkeypatch.setattr(connections, "division_holder", lambda **kwargs: None)
    with pytest.raises(ExactDivisionTaken):
        connection_choose_division(
            connection=fresh, division=DIVISION, division_name="x", actor=Actor.system("t")
        )
    fresh.refresh_from_db()
    assert fresh.division is None and fresh.status == ConnectionStatus.DISCONNECTED


def test_a_disconnected_company_releases_its_division(divisions, fresh, tenant_b):
    held = connect(tenant_b, divisions, division=DIVISION)
    ExactConnection.objects.filter(pk=held.pk).update(status=ConnectionStatus.DISCONNECTED)
    fresh.grant = grant_for(divisions, divisions=(DIVISION,))
    fresh.save()
    connection_choose_division(
        connection=fresh, division=DIVISION, division_name="x", actor=Actor.system("t")
    )
    fresh.refresh_from_db()
    assert fresh.status == ConnectionStatus.CONNECTED and fresh.division == DIVISION


def test_an_accountant_attaches_divisions_of_one_consent_to_several_companies(
    client, divisions, fresh, tenant_b, admin_of_a, django_capture_on_commit_callbacks
):
    MembershipFactory(user=admin_of_a, tenant=tenant_b, role="admin")
    page = _picker(client, admin_of_a, fresh)
    assert b"Also connect other companies you administer" in page.content
    assert b"Bravo Ltd" in page.content  # their own company, by name
    resp = client.post(
        reverse("exact:division-choose"),
        {"division": str(DIVISION), f"division_{tenant_b.pk}": str(SECOND)},
    )
    assert resp.status_code == 302
    a = ExactConnection.objects.get(tenant=fresh.tenant)
    b = ExactConnection.objects.get(tenant=tenant_b)
    assert (a.division, b.division) == (DIVISION, SECOND)
    assert a.status == b.status == ConnectionStatus.CONNECTED
    assert a.grant_id == b.grant_id  # one consent, one chain
    assert divisions.token_chains()[-1]["obsolete"] is False
    assert len(divisions.token_chains()) == 1


def test_the_same_division_twice_or_a_company_not_administered_is_refused(
    client, divisions, fresh, tenant_b, admin_of_a
):
    MembershipFactory(user=admin_of_a, tenant=tenant_b, role="admin")
    _picker(client, admin_of_a, fresh)
    resp = client.post(
        reverse("exact:division-choose"),
        {"division": str(DIVISION), f"division_{tenant_b.pk}": str(DIVISION)},
    )
    assert resp.status_code == 302
    assert not ExactConnection.objects.filter(tenant=tenant_b, status="connected").exists()
    messages = [str(m) for m in resp.wsgi_request._messages]
    assert any("cannot be used" in m for m in messages)


def test_operator_attaches_a_division_of_an_existing_consent(divisions, tenant_a, tenant_b):
    grant = grant_for(divisions, divisions=(DIVISION, SECOND))
    connect(tenant_a, divisions, grant=grant)
    b = ExactConnection.objects.create(
        tenant=tenant_b, region=Region.CUSTOM, custom_base_url=divisions.url
    )
    actor = Actor.system("manage.py exact_connect")
    with pytest.raises(ExactDivisionTaken):
        connection_division_attach(connection=b, grant=grant, division=DIVISION, actor=actor)
    with pytest.raises(ExactConnectionUnavailable, match="not one of the divisions"):
        connection_division_attach(connection=b, grant=grant, division=THIRD, actor=actor)
    chosen = connection_division_attach(connection=b, grant=grant, division=SECOND, actor=actor)
    b.refresh_from_db()
    assert (b.status, b.division, b.grant_id) == (ConnectionStatus.CONNECTED, SECOND, grant.pk)
    assert chosen.subscribe_error is None and len(chosen.subscriptions) == 2
