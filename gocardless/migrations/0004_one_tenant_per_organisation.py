"""One GoCardless organisation belongs to one tenant (docs/decisions.md, 2026-11-26).

Existing rows that would violate the constraint stop the migration with a list of them
instead of being changed here: which tenant really owns an organisation is a business
decision, and silently blanking one row's organisation would re-route that tenant's partner
webhooks. Resolve each duplicate (remove the wrong tenant's GoCardless connection, or blank
its organisation id in the admin), then run ``manage.py migrate`` again.
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Count


def refuse_duplicates(apps, schema_editor):
    connection_model = apps.get_model("gocardless", "GoCardlessConnection")
    rows = connection_model.objects.using(schema_editor.connection.alias)
    duplicated = (
        rows.exclude(organisation_id="")
        .values("organisation_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("organisation_id", flat=True)
    )
    problems = []
    for organisation_id in sorted(duplicated):
        holders = rows.filter(organisation_id=organisation_id).order_by("pk")
        listed = ", ".join(
            f"connection {c.pk} (tenant {c.tenant.slug!r}, status {c.status})" for c in holders
        )
        problems.append(f"  {organisation_id}: {listed}")
    if problems:
        raise CommandError(
            "gocardless.0004: a GoCardless organisation may belong to one tenant only, but "
            "these organisations are connected to several:\n"
            + "\n".join(problems)
            + "\nDecide which tenant owns each one, remove the other tenants' GoCardless "
            "connection (or blank its organisation id in the admin), then migrate again. "
            "Nothing was changed."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("gocardless", "0003_lighter_event_indexes"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="gocardlessconnection",
            constraint=models.UniqueConstraint(
                condition=models.Q(("organisation_id", ""), _negated=True),
                fields=("organisation_id",),
                name="gocardless_one_tenant_per_organisation",
                violation_error_message=(
                    "This GoCardless organisation is already connected to another company."
                ),
            ),
        ),
    ]
