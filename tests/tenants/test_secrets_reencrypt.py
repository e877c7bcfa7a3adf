from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from core.models import AuditEntry
from exact.models import ExactGrant
from tests.exact.factories import ExactGrantFactory
from tests.factories import GoCardlessConnectionFactory

pytestmark = pytest.mark.django_db
OLD, NEW = "old-key-" + "o" * 50, "new-key-" + "n" * 50


def _raw(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM exact_exactgrant WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _run(*args):
    out = StringIO()
    call_command("secrets_reencrypt", *args, stdout=out)
    return out.getvalue()


def test_rotation_end_to_end(tenant_a, tenant_b):
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[]):
        exact = ExactGrantFactory(access_token="exact-token")
        GoCardlessConnectionFactory(tenant=tenant_b)
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
        assert "readable" in _run("--check")
        assert _raw(exact.pk) == _raw(exact.pk)  # --check changed nothing
        before = _raw(exact.pk)
        out = _run()
        assert "exact.ExactGrant: 1" in out and "gocardless.GoCardlessConnection: 1" in out
        assert _raw(exact.pk) != before
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):  # fallback removed
        assert ExactGrant.objects.get(pk=exact.pk).access_token == "exact-token"
    assert AuditEntry.objects.filter(action="secrets.reencrypted").count() == 1


def test_unreadable_rows_are_named_and_fail(tenant_a):
    exact = ExactGrantFactory()
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):
        with pytest.raises(CommandError, match=f"exact.ExactGrant#{exact.pk}"):
            _run("--check")
