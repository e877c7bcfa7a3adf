"""The webhook intake log keeps metadata (size, SHA-256, source address) and the hourly
intake budgets; events can be quarantined; the organisation and creditor of a connection are
no longer editable in forms (docs/gocardless.md, "Connect" and "Webhook intake").

Events stored before intake checked timestamps may hold a ``created_at`` outside 2000–2100
(e.g. year 1 or 9999 in another time zone). PostgreSQL stores them, but Python cannot read
them back: every query that loaded one raised DataError (the installation-wide sweeper
stopped for every tenant, the admin list failed). This migration clears those timestamps IN
THE DATABASE (the comparison never reads them into Python) and quarantines the events that
were not processed yet; their raw JSON keeps what GoCardless sent.
"""

from datetime import UTC, datetime

from django.db import migrations, models
from django.db.models import Q
from django.db.models.functions import Now

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def quarantine_unreadable_timestamps(apps, schema_editor):
    event_model = apps.get_model("gocardless", "GoCardlessEvent")
    rows = event_model.objects.using(schema_editor.connection.alias).filter(
        Q(created_at__lt=EARLIEST) | Q(created_at__gt=LATEST)
    )
    rows.filter(processed_at__isnull=True).update(
        processed_at=Now(), outcome="quarantined", created_at=None,
        error="quarantined: created_at is outside 2000-2100 (cleared by migration 0005)",
    )
    rows.update(created_at=None)


class Migration(migrations.Migration):

    dependencies = [
        ("gocardless", "0004_one_tenant_per_organisation"),
    ]

    operations = [
        migrations.CreateModel(
            name="IntakeBudget",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("key", models.CharField(max_length=60)),
                ("hour", models.BigIntegerField(help_text="Hours since 1970-01-01 UTC.")),
                ("used", models.BigIntegerField(default=0)),
                ("refused", models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.AddConstraint(
            model_name="intakebudget",
            constraint=models.UniqueConstraint(fields=("key", "hour"),
                                               name="uniq_gc_intake_budget"),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="body_sha256",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="body_size",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text="Bytes received (claimed, for a body refused before reading)."),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="source_address",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="body",
            field=models.BinaryField(blank=True, default=b"",
                                     help_text="Whole for stored deliveries; else the first 4 KiB."),
        ),
        migrations.AlterField(
            model_name="gocardlessconnection",
            name="creditor_id",
            field=models.CharField(blank=True, editable=False, max_length=40),
        ),
        migrations.AlterField(
            model_name="gocardlessconnection",
            name="organisation_id",
            field=models.CharField(blank=True, db_index=True, editable=False, max_length=40),
        ),
        migrations.AlterField(
            model_name="gocardlessconnection",
            name="custom_base_url",
            field=models.URLField(
                blank=True,
                help_text="Only for environment 'custom' (the local simulator): superusers "
                "only, and only where GOCARDLESS_ALLOW_CUSTOM_BASE_URL allows it."),
        ),
        migrations.AlterField(
            model_name="gocardlessevent",
            name="outcome",
            field=models.CharField(
                blank=True,
                choices=[("", "Pending"), ("applied", "Applied to the mirror"),
                         ("ignored", "Ignored (type we do not mirror)"),
                         ("gone", "Resource not found at GoCardless"),
                         ("current", "Mirror already fetched after this event arrived"),
                         ("quarantined", "Quarantined (unusable; never processed)")],
                max_length=20),
        ),
        migrations.RunPython(quarantine_unreadable_timestamps, migrations.RunPython.noop,
                             elidable=True),
    ]
