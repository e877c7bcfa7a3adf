"""`manage.py tenants connect-gocardless` and `connect-exact`: provisioning a company's
connections headless (issue 14). Secrets come from files, never from arguments; the
organisation comes from GoCardless, never from the operator."""

from __future__ import annotations

import json
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEntry
from gocardless.models import GoCardlessConnection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def secrets_on_disk(tmp_path):
    token, secret = tmp_path / "token", tmp_path / "webhook-secret"
    token.write_text(SIM_ACCESS_TOKEN + "\n")
    secret.write_text("whsec-from-the-dashboard\n")
    return token, secret


def test_connect_gocardless_from_files(gocardless_simulator, settings, tenant_a,
                                       secrets_on_disk):
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = True  # the simulator is a custom base URL
    token, secret = secrets_on_disk
    out = _run("connect-gocardless", "alpha", "--token-file", str(token),
               "--webhook-secret-file", str(secret),
               "--base-url", gocardless_simulator.url, "--json")
    answer = json.loads(out)
    connection = GoCardlessConnection.objects.get(tenant=tenant_a)
    assert answer["organisation_id"] == connection.organisation_id
    assert answer["creditor_id"] == connection.creditor_id != ""  # asked of GoCardless
    assert connection.access_token == SIM_ACCESS_TOKEN
    assert connection.webhook_secret == "whsec-from-the-dashboard"
    assert SIM_ACCESS_TOKEN not in out and "whsec" not in out
    assert answer["webhook_url"].endswith(f"/webhooks/gocardless/{tenant_a.uuid}/")


def test_a_custom_base_url_is_refused_where_the_installation_does_not_allow_it(
    tenant_a, secrets_on_disk, settings
):
    settings.GOCARDLESS_ALLOW_CUSTOM_BASE_URL = False
    token, secret = secrets_on_disk
    with pytest.raises(CommandError):
        _run("connect-gocardless", "alpha", "--token-file", str(token),
             "--webhook-secret-file", str(secret), "--base-url", "http://127.0.0.1:9/")
    assert not GoCardlessConnection.objects.filter(tenant=tenant_a, status="connected").exists()


@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_unreadable_secret_files_are_one_line(tenant_a, tmp_path, problem):
    token = tmp_path / "token"
    if problem == "empty":
        token.write_text("\n")
    with pytest.raises(CommandError) as refused:
        _run("connect-gocardless", "alpha", "--token-file", str(token),
             "--webhook-secret-file", str(token))
    assert str(token) in str(refused.value) and "\n" not in str(refused.value)


def test_unknown_company(secrets_on_disk):
    token, secret = secrets_on_disk
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        _run("connect-gocardless", "nope", "--token-file", str(token),
             "--webhook-secret-file", str(secret))


def test_connect_exact_prints_a_consent_url_of_the_region(tenant_a):
    answer = json.loads(_run("connect-exact", "alpha", "--region", "be", "--json"))
    url = urlsplit(answer["consent_url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "start.exactonline.be",
                                                  "/api/oauth2/auth")
    query = parse_qs(url.query)
    assert query["client_id"] == ["sim-client-id"] and query["state"][0]
    assert "client_secret" not in query
    assert AuditEntry.objects.filter(tenant=tenant_a).exists()  # the connection was created


def test_connect_exact_has_no_custom_region(tenant_a):
    with pytest.raises(CommandError):
        _run("connect-exact", "alpha", "--region", "custom")
