"""System checks and `check --deploy` for the production profile."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from config import checks
from tests.factories import ExactConnectionFactory

ROOT = Path(__file__).resolve().parents[2]


def _ids(errors):
    return [e.id for e in errors]


def test_salt_key_required_outside_debug():
    with override_settings(DEBUG=False, SALT_KEY=[]):
        assert _ids(checks.check_encryption_salt(None)) == ["mlc.E001"]
    with override_settings(DEBUG=True, SALT_KEY=[]):
        assert checks.check_encryption_salt(None) == []
    with override_settings(DEBUG=False, SALT_KEY=["salt"]):
        assert checks.check_encryption_salt(None) == []


@pytest.mark.parametrize(
    ("timeout", "retry", "ok"), [(300, 360, True), (300, 300, False), (300, 60, False)]
)
def test_q_cluster_retry_must_exceed_timeout(timeout, retry, ok):
    with override_settings(Q_CLUSTER={"timeout": timeout, "retry": retry}):
        assert _ids(checks.check_q_cluster_retry(None)) == ([] if ok else ["mlc.E002"])


@pytest.mark.django_db
def test_exact_credentials_required_once_a_tenant_is_connected(tenant_a):
    with override_settings(EXACT_CLIENT_ID="", EXACT_CLIENT_SECRET=""):
        assert checks.check_exact_app_credentials(None) == []
        ExactConnectionFactory(tenant=tenant_a, status="connected")
        assert _ids(checks.check_exact_app_credentials(None)) == ["mlc.E003"]
    with override_settings(EXACT_CLIENT_ID="id", EXACT_CLIENT_SECRET="secret"):
        assert checks.check_exact_app_credentials(None) == []


def _production_env(tmp_path) -> dict:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "prod-" + "k3y" * 20,
        "SALT_KEY": "prod-salt",
        "ALLOWED_HOSTS": "connector.example.com",
        "PUBLIC_BASE_URL": "https://connector.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy-check.sqlite3'}",
        "EXACT_CLIENT_ID": "id",
        "EXACT_CLIENT_SECRET": "secret",
        "METRICS_TOKEN": "prod-metrics-" + "t0k" * 10,
    }


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_for_the_production_profile(tmp_path):
    result = _manage(_production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_dangerous_production_configuration_refuses_to_start(tmp_path):
    env = {**_production_env(tmp_path), "SALT_KEY": "", "Q_RETRY": "60", "Q_TIMEOUT": "300"}
    result = _manage(env, "check")
    assert result.returncode != 0
    assert "mlc.E001" in result.stderr and "mlc.E002" in result.stderr


@pytest.mark.django_db
def test_warns_when_a_connected_tenant_cannot_verify_gocardless_webhooks(tenant_a, tenant_b):
    from tests.factories import GoCardlessConnectionFactory

    GoCardlessConnectionFactory(tenant=tenant_a, webhook_secret="")
    GoCardlessConnectionFactory(tenant=tenant_b)  # has its own secret
    with override_settings(GOCARDLESS_WEBHOOK_SECRET=""):
        warnings = checks.check_gocardless_webhook_secrets(None)
        assert _ids(warnings) == ["mlc.W004"] and "alpha" in warnings[0].msg
        assert "bravo" not in warnings[0].msg
    with override_settings(GOCARDLESS_WEBHOOK_SECRET="partner-secret"):
        assert checks.check_gocardless_webhook_secrets(None) == []  # routed by organisation


@pytest.mark.parametrize(
    ("debug", "sync", "ids"),
    [(False, True, ["mlc.W005"]), (False, False, []), (True, True, []), (True, False, [])],
)
def test_q_sync_outside_debug_warns(debug, sync, ids):
    with override_settings(DEBUG=debug, Q_CLUSTER={"timeout": 300, "retry": 360, "sync": sync}):
        assert _ids(checks.check_q_sync_outside_debug(None)) == ids


def test_q_sync_in_production_is_reported_at_start(tmp_path):
    env = {**_production_env(tmp_path), "Q_SYNC": "true"}
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "mlc.W005" in result.stderr + result.stdout


def test_check_deploy_warns_when_metrics_are_open(tmp_path):
    env = {**_production_env(tmp_path), "METRICS_TOKEN": ""}
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "mlc.W006" in result.stderr + result.stdout
    with override_settings(DEBUG=False, METRICS_TOKEN=""):
        assert _ids(checks.check_metrics_token(None)) == ["mlc.W006"]
    with override_settings(DEBUG=False, METRICS_TOKEN="t"):
        assert checks.check_metrics_token(None) == []


def test_a_web_worker_without_salt_key_says_so_in_words(tmp_path):
    """gunicorn imports config.wsgi, which derives the encryption keys at start: a missing
    SALT_KEY is refused with mlc.E001's words, not cryptography's MultiFernet traceback."""
    env = {**_production_env(tmp_path), "SALT_KEY": ""}
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: mlc.E001: SALT_KEY" in result.stderr
    assert "MultiFernet" not in result.stderr


@pytest.mark.django_db
def test_secrets_that_the_keys_cannot_decrypt_are_an_error(tenant_a):
    from tests.factories import GoCardlessConnectionFactory

    GoCardlessConnectionFactory(tenant=tenant_a, webhook_secret="whsec-1", access_token="tok")
    assert checks.check_stored_secrets_decrypt(None) == []
    with override_settings(SALT_KEY=["another-salt"]):
        (error,) = checks.check_stored_secrets_decrypt(None)
    assert error.id == "mlc.E004"
    assert "gocardless.GoCardlessConnection.access_token" in error.msg
    with override_settings(SALT_KEY=["another-salt", "test-salt-key"]):  # rotation: old salt kept
        assert checks.check_stored_secrets_decrypt(None) == []


def test_a_wrong_salt_key_stops_every_process_at_start(tmp_path):
    env = _production_env(tmp_path)
    assert _manage(env, "migrate", "-v0").returncode == 0
    seed = (
        "from tenants.models import Tenant;from gocardless.models import GoCardlessConnection;"
        "t=Tenant.objects.create(name='A',slug='a');"
        "GoCardlessConnection.objects.create(tenant=t,access_token='tok',webhook_secret='w')"
    )
    assert _manage(env, "shell", "-c", seed).returncode == 0
    result = _manage({**env, "SALT_KEY": "a-different-salt"}, "check")
    assert result.returncode != 0 and "mlc.E004" in result.stderr

