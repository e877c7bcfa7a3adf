"""Tokens and secrets are encrypted at rest, survive key rotation, and never come back out."""

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from core.fields import EncryptedSecretField, SecretDecryptionError
from core.models import AuditEntry
from exact.models import ExactGrant
from gocardless.models import GoCardlessConnection
from tests.exact.factories import ExactGrantFactory
from tests.factories import GoCardlessConnectionFactory

# Exact tokens live in the Exact user's grant (one chain per user and app), not on the
# company's connection.
SECRET_COLUMNS = {
    ExactGrant: ["access_token", "refresh_token"],
    GoCardlessConnection: ["access_token", "webhook_secret"],
}


def _secret_fields():
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.fields:
            if isinstance(field, EncryptedSecretField):
                yield field


def _raw(model, pk, column):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def test_every_secret_field_is_declared_encrypted():
    declared = {(f.model, f.name) for f in _secret_fields()}
    expected = {(m, c) for m, cols in SECRET_COLUMNS.items() for c in cols}
    assert expected <= declared


@pytest.mark.django_db
def test_raw_columns_hold_no_plaintext(tenant_a):
    exact = ExactGrantFactory()
    gocardless = GoCardlessConnectionFactory(tenant=tenant_a)
    for obj in (exact, gocardless):
        for column in SECRET_COLUMNS[type(obj)]:
            plaintext = getattr(type(obj).objects.get(pk=obj.pk), column)
            raw = _raw(type(obj), obj.pk, column)
            assert plaintext and "PLAINTEXT" in plaintext
            assert "PLAINTEXT" not in raw and plaintext not in raw
            assert raw.startswith("gAAAA")  # a Fernet token


@pytest.mark.django_db
def test_rotating_secret_key_keeps_old_values_readable(tenant_a):
    with override_settings(SECRET_KEY="old-key-" + "x" * 50, SECRET_KEY_FALLBACKS=[]):
        connection_ = ExactGrantFactory(access_token="token-under-old-key")
        old_raw = _raw(ExactGrant, connection_.pk, "access_token")
    with override_settings(
        SECRET_KEY="new-key-" + "y" * 50, SECRET_KEY_FALLBACKS=["old-key-" + "x" * 50]
    ):
        reloaded = ExactGrant.objects.get(pk=connection_.pk)
        assert reloaded.access_token == "token-under-old-key"
        reloaded.save()  # re-encrypts with the new primary key
        assert _raw(ExactGrant, connection_.pk, "access_token") != old_raw
    with override_settings(SECRET_KEY="new-key-" + "y" * 50, SECRET_KEY_FALLBACKS=[]):
        assert ExactGrant.objects.get(pk=connection_.pk).access_token == "token-under-old-key"


@pytest.mark.django_db
def test_a_wrong_key_is_an_error_not_ciphertext(tenant_a):
    connection_ = ExactGrantFactory()
    with override_settings(SECRET_KEY="unrelated-" + "z" * 50, SECRET_KEY_FALLBACKS=[]):
        with pytest.raises(SecretDecryptionError, match=r"ExactGrant\.access_token"):
            ExactGrant.objects.get(pk=connection_.pk)


@pytest.mark.django_db
def test_admin_secret_inputs_are_write_only(client, tenant_a, admin_of_a):
    gc = GoCardlessConnectionFactory(tenant=tenant_a, access_token="keep-me-PLAINTEXT")
    client.force_login(admin_of_a)
    url = reverse("admin:gocardless_gocardlessconnection_change", args=[gc.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"PLAINTEXT" not in page.content
    assert b"access token: set" in page.content

    form = {
        "tenant": tenant_a.pk,
        "environment": "sandbox",
        "custom_base_url": "",
        "organisation_id": "OR123",
        "creditor_id": "",
        "access_token": "",
        "webhook_secret": "new-secret-value",
    }
    assert client.post(url, form).status_code == 302
    gc.refresh_from_db()
    assert gc.access_token == "keep-me-PLAINTEXT"  # blank kept the value
    assert gc.webhook_secret == "new-secret-value"

    assert (
        client.post(url, {**form, "webhook_secret": "", "clear_access_token": "on"}).status_code
        == 302
    )
    gc.refresh_from_db()
    assert not gc.access_token
    assert gc.webhook_secret == "new-secret-value"

    entries = AuditEntry.objects.filter(object_type="gocardless.gocardlessconnection")
    assert entries.count() == 2
    for entry in entries:
        assert "PLAINTEXT" not in str(entry.before) + str(entry.after)
        assert "new-secret-value" not in str(entry.before) + str(entry.after)


def test_compatible_with_the_library_derivation():
    """Values written by django-fernet-encrypted-fields' own fields stay readable (and back)."""
    from encrypted_fields.fields import EncryptedTextField

    from core.fields import secret_fernet

    library = EncryptedTextField().f
    assert secret_fernet().decrypt(library.encrypt(b"token")) == b"token"
    assert library.decrypt(secret_fernet().encrypt(b"token")) == b"token"
