"""The audit trail moves to the ground floor (core/) from the reconciliation app.

State only: the table ``reconciliation_auditentry`` (with its indexes and, on PostgreSQL,
its append-only trigger) already exists and keeps its name; reconciliation 0004 removes the
model from that app's state."""

import django.core.serializers.json
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('reconciliation', '0003_customers_and_mandates'),
        ('tenants', '0002_collection_policy'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('actor_type', models.CharField(choices=[('user', 'User'), ('schedule', 'Schedule'), ('webhook', 'Webhook'), ('system', 'System')], max_length=10)),
                        ('actor_label', models.CharField(blank=True, max_length=200)),
                        ('action', models.CharField(db_index=True, max_length=100)),
                        ('object_type', models.CharField(blank=True, max_length=100)),
                        ('object_id', models.CharField(blank=True, max_length=100)),
                        ('before', models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                        ('after', models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                        ('message', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('actor_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='audit_entries', to=settings.AUTH_USER_MODEL)),
                        ('tenant', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='audit_entries', to='tenants.tenant')),
                    ],
                    options={
                        'verbose_name_plural': 'audit entries',
                        'db_table': 'reconciliation_auditentry',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['tenant', '-created_at'], name='audit_tenant_time'), models.Index(fields=['object_type', 'object_id'], name='audit_object')],
                    },
                ),
    
            ],
            database_operations=[],
        ),
    ]
