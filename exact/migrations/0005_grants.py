"""Exact grants: the token chain moves from each connection to ExactGrant, one per (app, host,
Exact user), shared by every connection of that user (docs/exact.md, "Grants").

Existing tokens become grants here: one per connection, because no Exact user id was stored
before this migration (so nothing says two connections share a user). A connection's grant
is replaced by its user's shared grant the next time it is reconnected. Reversible: the
reverse copies each connection's grant back onto it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import core.fields

TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "token_issued_at",
    "access_expires_at",
    "last_refresh_at",
)


def tokens_to_grants(apps, schema_editor):
    alias = schema_editor.connection.alias
    connection_model = apps.get_model("exact", "ExactConnection")
    grant_model = apps.get_model("exact", "ExactGrant")
    for connection in connection_model.objects.using(alias).order_by("pk"):
        if not (connection.access_token or connection.refresh_token):
            continue
        broken = connection.status == "needs_reauth"
        grant = grant_model.objects.using(alias).create(
            client_id=settings.EXACT_CLIENT_ID,
            region=connection.region,
            custom_base_url=connection.custom_base_url if connection.region == "custom" else "",
            exact_user_id="",
            status="broken" if broken else "active",
            status_reason=connection.status_reason if broken else "",
            consented_divisions=(
                [{"code": connection.division, "name": connection.division_name}]
                if connection.division
                else []
            ),
            **{name: getattr(connection, name) for name in TOKEN_FIELDS},
        )
        connection.grant = grant
        connection.save(update_fields=["grant"])


def grants_to_tokens(apps, schema_editor):
    alias = schema_editor.connection.alias
    connection_model = apps.get_model("exact", "ExactConnection")
    for connection in connection_model.objects.using(alias).exclude(grant=None):
        grant = connection.grant
        for name in TOKEN_FIELDS:
            setattr(connection, name, getattr(grant, name))
        connection.save(update_fields=list(TOKEN_FIELDS))


class Migration(migrations.Migration):

    dependencies = [
        ("exact", "0004_sync_queued_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="ExactGrant",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("client_id", models.CharField(max_length=200)),
                ("region", models.CharField(choices=[("nl", "Netherlands"), ("be", "Belgium"), ("uk", "United Kingdom"), ("de", "Germany"), ("fr", "France"), ("es", "Spain"), ("us", "United States"), ("custom", "Custom base URL")], default="nl", max_length=10)),
                ("custom_base_url", models.URLField(blank=True)),
                ("exact_user_id", models.CharField(blank=True, max_length=64)),
                ("exact_user_name", models.CharField(blank=True, max_length=200)),
                ("access_token", core.fields.EncryptedSecretField(blank=True, null=True)),
                ("refresh_token", core.fields.EncryptedSecretField(blank=True, null=True)),
                ("token_issued_at", models.DateTimeField(blank=True, null=True)),
                ("access_expires_at", models.DateTimeField(blank=True, null=True)),
                ("last_refresh_at", models.DateTimeField(blank=True, null=True)),
                ("status", models.CharField(choices=[("active", "Active"), ("broken", "Broken: needs a new consent")], default="active", max_length=10)),
                ("status_reason", models.TextField(blank=True)),
                ("consented_divisions", models.JSONField(blank=True, default=list)),
                ("consented_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "Exact Online grant",
            },
        ),
        migrations.AddConstraint(
            model_name="exactgrant",
            constraint=models.UniqueConstraint(condition=models.Q(("exact_user_id", ""), _negated=True), fields=("client_id", "region", "custom_base_url", "exact_user_id"), name="exact_grant_one_per_user"),
        ),
        migrations.AddField(
            model_name="exactconnection",
            name="grant",
            field=models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="connections", to="exact.exactgrant"),
        ),
        migrations.AddField(
            model_name="exactconnection",
            name="operator_consent_nonce",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.RunPython(tokens_to_grants, grants_to_tokens),
        migrations.RemoveField(model_name="exactconnection", name="access_expires_at"),
        migrations.RemoveField(model_name="exactconnection", name="access_token"),
        migrations.RemoveField(model_name="exactconnection", name="last_refresh_at"),
        migrations.RemoveField(model_name="exactconnection", name="refresh_token"),
        migrations.RemoveField(model_name="exactconnection", name="token_issued_at"),
        migrations.AlterField(
            model_name="exactconnection",
            name="custom_base_url",
            field=models.URLField(blank=True, help_text="Only for region 'custom' (the local simulators), where the installation allows it; superusers only."),
        ),
    ]
