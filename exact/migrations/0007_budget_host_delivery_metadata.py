"""The API budget is keyed by host too (only the Exact host holding a division counts for
it), and webhook deliveries get the metadata columns that let invalid ones be stored without
their body (size, sha256, truncated, source address, stored bytes).

Existing budget rows get the host of the connection on their division; a row no connection
(or several hosts) explains is deleted: it is a cache of Exact's last headers, refilled by the
next answer.
"""

from django.db import migrations, models

REGION_HOSTS = {
    "nl": "https://start.exactonline.nl",
    "be": "https://start.exactonline.be",
    "uk": "https://start.exactonline.co.uk",
    "de": "https://start.exactonline.de",
    "fr": "https://start.exactonline.fr",
    "es": "https://start.exactonline.es",
    "us": "https://start.exactonline.com",
}


def budget_hosts(apps, schema_editor):
    alias = schema_editor.connection.alias
    budget_model = apps.get_model("exact", "ExactRateBudget")
    connection_model = apps.get_model("exact", "ExactConnection")
    for budget in budget_model.objects.using(alias).filter(host=""):
        hosts = {
            REGION_HOSTS.get(c.region) or (c.custom_base_url or "").rstrip("/")
            for c in connection_model.objects.using(alias).filter(division=budget.division)
        }
        if len(hosts) == 1 and "" not in hosts:
            budget.host = hosts.pop()
            budget.save(update_fields=["host"])
        else:
            budget.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("exact", "0006_one_tenant_per_division"),
    ]

    operations = [
        migrations.AddField(
            model_name="exactratebudget",
            name="host",
            field=models.CharField(default="", max_length=200),
        ),
        migrations.RemoveConstraint(model_name="exactratebudget", name="exact_budget_uniq"),
        migrations.RunPython(budget_hosts, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="exactratebudget",
            constraint=models.UniqueConstraint(fields=("client_id", "host", "division"), name="exact_budget_host_uniq"),
        ),
        migrations.AddField(
            model_name="exactwebhookdelivery",
            name="body_sha256",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="exactwebhookdelivery",
            name="body_truncated",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="exactwebhookdelivery",
            name="size",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="exactwebhookdelivery",
            name="source_address",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="exactwebhookdelivery",
            name="stored_bytes",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="exactwebhookdelivery",
            index=models.Index(fields=["tenant", "received_at"], name="exact_delivery_tenant_time"),
        ),
    ]
