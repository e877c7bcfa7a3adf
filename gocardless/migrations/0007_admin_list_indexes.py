"""The admin lists of events and payments in their ordering (newest first, id as tiebreak),
for every tenant and for one: without them each page sorts the whole table
(docs/admin-performance.md)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gocardless', '0006_one_tenant_per_creditor'),
        ('tenants', '0002_collection_policy'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='gocardlessevent',
            index=models.Index(fields=['-created_at', '-id'], name='gc_event_latest'),
        ),
        migrations.AddIndex(
            model_name='gocardlessevent',
            index=models.Index(fields=['tenant', '-created_at', '-id'], name='gc_event_tenant_latest'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(fields=['-gocardless_created_at', '-id'], name='gc_payment_latest'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(fields=['tenant', '-gocardless_created_at', '-id'], name='gc_payment_tenant_latest'),
        ),
    ]
