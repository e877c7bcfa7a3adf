"""The audit trail's admin list in its ordering (newest first, id as tiebreak), for every
tenant and for one: without them each page sorts the whole table (docs/admin-performance.md).
The tenant one replaces audit_tenant_time (tenant, -created_at), which it covers. Indexes only:
the append-only trigger is about rows and does not mind."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('tenants', '0002_collection_policy'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditentry',
            name='audit_tenant_time',
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(fields=['-created_at', '-id'], name='audit_latest'),
        ),
        migrations.AddIndex(
            model_name='auditentry',
            index=models.Index(fields=['tenant', '-created_at', '-id'], name='audit_tenant_latest'),
        ),
    ]
