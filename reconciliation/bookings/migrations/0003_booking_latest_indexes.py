# The bookings admin's list in its ordering (-created_at, -id), for all tenants and for one:
# docs/admin-performance.md.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0002_repostbatch"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="booking",
            index=models.Index(fields=["-created_at", "-id"], name="booking_latest"),
        ),
        migrations.AddIndex(
            model_name="booking",
            index=models.Index(fields=["tenant", "-created_at", "-id"],
                               name="booking_tenant_latest"),
        ),
    ]
