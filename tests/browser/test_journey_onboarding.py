"""Onboarding in Chromium (issue 15): the installation's superuser adds a company in the
admin, connects Exact Online on its company page (the simulator's consent page, where the
person presses Allow; back to our callback; the division picker) and then GoCardless through
partner OAuth (the simulator's account page, Allow). After each step the database says what
the page says. Screenshots: artifacts/screenshots/test_a_superuser_onboards_a_company/.
"""

from __future__ import annotations

import re

import pytest

from exact.models import ConnectionStatus as ExactStatus
from exact.models import ExactConnection
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import Environment, GoCardlessConnection
from tenants.models import CollectionMode, Membership, Role, Tenant
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
DIVISION = 246810
OTHER_DIVISION = 135791


@pytest.fixture
def installer(db):
    user = UserFactory(username="ingrid-installer", is_superuser=True, is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def _panel(page, heading: str):
    return page.locator("section.mlc-connection", has=page.locator("h2", has_text=heading))


def test_a_superuser_onboards_a_company(journey, installer, live_simulators):
    exact_sim, gocardless_sim = live_simulators.exact, live_simulators.gocardless
    exact_sim.seed_division(division=DIVISION, name="Delta administratie")
    exact_sim.seed_division(division=OTHER_DIVISION, name="Some other administration")
    organisation = gocardless_sim.add_organisation(name="Delta Incasso BV",
                                                   email="finance@delta.test")
    page = journey.page

    # 1. a new company: name, zone, currencies, collection mode
    journey.log_in("ingrid-installer", PASSWORD)
    journey.open("/admin/tenants/tenant/add/")
    assert "Add" in page.locator("h1").first.inner_text()
    page.fill("input[name=name]", "Delta Trading BV")
    page.fill("input[name=time_zone]", "Europe/Amsterdam")
    page.check("input[name=currencies][value=EUR]")
    page.select_option("select[name=collection_mode]", CollectionMode.REVIEW)
    journey.shot("company-form")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    tenant = Tenant.objects.get(name="Delta Trading BV")
    assert (tenant.slug, tenant.time_zone, tenant.currencies, tenant.collection_mode) == (
        "delta-trading-bv", "Europe/Amsterdam", ["EUR"], CollectionMode.REVIEW)
    assert Membership.objects.get(tenant=tenant, user=installer).role == Role.ADMIN
    assert page.url.endswith(f"/admin/tenants/tenant/{tenant.pk}/change/")
    exact_panel, gocardless_panel = _panel(page, "Exact Online"), _panel(page, "GoCardless")
    assert exact_panel.locator(".mlc-connection-status").inner_text() == "Not connected"
    assert gocardless_panel.locator(".mlc-connection-status").inner_text() == "Not connected"
    journey.shot("company-page-new")

    # 2. Connect Exact Online: Exact's consent page (the simulator) asks the person
    with page.expect_navigation():
        exact_panel.get_by_role("button", name="Connect Exact Online").click()
    assert page.url.startswith(exact_sim.url + "/api/oauth2/auth")
    assert page.locator("h1").inner_text() == "Allow access"
    assert "Delta administratie" in page.inner_text("body")
    journey.shot("exact-consent")
    with page.expect_navigation():
        page.get_by_role("button", name="Allow").click()

    # 3. back at our callback: the division picker
    assert page.url.startswith(journey.base_url + "/connect/exact/callback/")
    # (the page shows its title twice: the admin's and its own; docs in the report)
    assert page.locator("#content h1").inner_text() == "Choose the Exact Online division"
    assert "Delta Trading BV" in page.locator("#content-main").inner_text()
    journey.shot("division-picker")
    page.get_by_label(re.compile(rf"{DIVISION}\s+—\s+Delta administratie")).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Use this division").click()
    exact = ExactConnection.objects.get(tenant=tenant)
    assert (exact.status, exact.division, exact.division_name) == (
        ExactStatus.CONNECTED, DIVISION, "Delta administratie")
    messages = page.locator(".messagelist").inner_text()
    assert f"Connected to Exact Online division {DIVISION} (Delta administratie)" in messages
    journey.shot("exact-connected")

    journey.open(f"/admin/tenants/tenant/{tenant.pk}/change/")
    exact_panel, gocardless_panel = _panel(page, "Exact Online"), _panel(page, "GoCardless")
    assert exact_panel.locator(".mlc-connection-status").inner_text() == "Connected"
    assert f"{DIVISION} Delta administratie" in exact_panel.inner_text()
    assert exact_panel.get_by_role("button", name="Reconnect").count() == 1
    journey.shot("company-page-exact-connected")

    # 4. Connect GoCardless: a sandbox account, then GoCardless' own sign-in (partner OAuth)
    with page.expect_navigation():
        gocardless_panel.get_by_role("link", name="Connect GoCardless").click()
    assert "/admin/gocardless/gocardlessconnection/add/" in page.url
    assert "Delta Trading BV" in page.locator(".field-tenant").inner_text()
    page.select_option("select[name=environment]", Environment.SANDBOX)
    journey.shot("gocardless-account-form")
    with page.expect_navigation():
        page.click("input[name=_save]")
    connection = GoCardlessConnection.objects.get(tenant=tenant)
    assert connection.status != GoCardlessStatus.CONNECTED
    assert "Connect GoCardless (OAuth)" in page.locator(".messagelist").inner_text()
    journey.shot("gocardless-account-saved")
    with page.expect_navigation():
        page.get_by_role("link", name="Connect GoCardless (OAuth)").click()
    assert page.url.startswith(gocardless_sim.url + "/oauth/authorize")
    assert page.locator("h1").inner_text() == "Connect your GoCardless account"
    page.get_by_label(re.compile("Delta Incasso BV")).check()
    journey.shot("gocardless-consent")
    with page.expect_navigation():
        page.get_by_role("button", name="Allow").click()
    connection.refresh_from_db()
    assert (connection.status, connection.organisation_id, connection.creditor_id) == (
        GoCardlessStatus.CONNECTED, organisation["id"], organisation["creditor_id"])
    assert (f"GoCardless connected (organisation {organisation['id']})"
            in page.locator(".messagelist").inner_text())
    journey.shot("gocardless-connected")

    # 5. the company page: both connected
    journey.open(f"/admin/tenants/tenant/{tenant.pk}/change/")
    exact_panel, gocardless_panel = _panel(page, "Exact Online"), _panel(page, "GoCardless")
    assert exact_panel.locator(".mlc-connection-status").inner_text() == "Connected"
    assert gocardless_panel.locator(".mlc-connection-status").inner_text() == "Connected"
    assert organisation["id"] in gocardless_panel.inner_text()
    assert organisation["creditor_id"] in gocardless_panel.inner_text()
    journey.shot("company-page-both-connected")
