"""One Exact division (per region) belongs to one tenant (docs/exact.md, "One company per
division"), like gocardless.0004 for GoCardless organisations.

Existing rows that would violate the constraint stop the migration with a list of them
instead of being changed here: which company really owns an administration is a business
decision, and silently disconnecting one would stop its collections and bookings. Resolve
each duplicate (disconnect the wrong company's Exact connection in the admin), then run
``manage.py migrate`` again.
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Count


def refuse_duplicates(apps, schema_editor):
    connection_model = apps.get_model("exact", "ExactConnection")
    rows = (
        connection_model.objects.using(schema_editor.connection.alias)
        .exclude(division=None)
        .exclude(status="disconnected")
    )
    duplicated = (
        rows.values("region", "division")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("region", "division")
    )
    problems = []
    for region, division in sorted(duplicated):
        holders = rows.filter(region=region, division=division).order_by("pk")
        listed = ", ".join(
            f"connection {c.pk} (tenant {c.tenant.slug!r}, status {c.status})" for c in holders
        )
        problems.append(f"  {region} division {division}: {listed}")
    if problems:
        raise CommandError(
            "exact.0006: an Exact division may belong to one tenant only, but these divisions "
            "are connected to several:\n"
            + "\n".join(problems)
            + "\nDecide which tenant owns each one, disconnect the other tenants' Exact Online "
            "connection in the admin, then migrate again. Nothing was changed."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("exact", "0005_grants"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="exactconnection",
            constraint=models.UniqueConstraint(condition=models.Q(("division__isnull", False), models.Q(("status", "disconnected"), _negated=True)), fields=("region", "division"), name="exact_one_tenant_per_division", violation_error_message="This Exact division is already connected to another company."),
        ),
    ]
