"""One GoCardless creditor belongs to one tenant, like its organisation (0004): a pasted
token does not tell us its organisation, but its creditor belongs to exactly one, so two
tenants holding one creditor would both process (and book) the same payments.

As in 0004, existing duplicates stop the migration with a list instead of being changed:
which tenant really owns the account is a business decision. Remove the other tenant's
GoCardless connection, then migrate again.
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models import Count


def refuse_duplicates(apps, schema_editor):
    connection_model = apps.get_model("gocardless", "GoCardlessConnection")
    rows = connection_model.objects.using(schema_editor.connection.alias)
    duplicated = (
        rows.exclude(creditor_id="")
        .values("creditor_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("creditor_id", flat=True)
    )
    problems = []
    for creditor_id in sorted(duplicated):
        holders = rows.filter(creditor_id=creditor_id).order_by("pk")
        listed = ", ".join(
            f"connection {c.pk} (tenant {c.tenant.slug!r}, status {c.status})" for c in holders
        )
        problems.append(f"  {creditor_id}: {listed}")
    if problems:
        raise CommandError(
            "gocardless.0006: a GoCardless creditor may belong to one tenant only, but these "
            "creditors are connected to several:\n"
            + "\n".join(problems)
            + "\nDecide which tenant owns each one, remove the other tenants' GoCardless "
            "connection, then migrate again. Nothing was changed."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("gocardless", "0005_intake_log_and_quarantine"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="gocardlessconnection",
            constraint=models.UniqueConstraint(
                condition=models.Q(("creditor_id", ""), _negated=True),
                fields=("creditor_id",),
                name="gocardless_one_tenant_per_creditor",
                violation_error_message=(
                    "This GoCardless account is already connected to another company."
                ),
            ),
        ),
    ]
