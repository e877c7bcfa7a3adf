"""Hand the audit trail to core and the customers models to the customers app.

State only: no table is dropped; core 0001 and customers 0001 took them over under the same
names."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('customers', '0001_initial'),
        ('reconciliation', '0003_customers_and_mandates'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='customerlink',
                    name='confirmed_by',
                ),
                migrations.RemoveField(
                    model_name='customerlink',
                    name='exact_account',
                ),
                migrations.RemoveField(
                    model_name='customerlink',
                    name='gocardless_customer',
                ),
                migrations.RemoveField(
                    model_name='customerlink',
                    name='mandate',
                ),
                migrations.RemoveField(
                    model_name='customerlink',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='mandateinvitation',
                    name='link',
                ),
                migrations.RemoveField(
                    model_name='customersettings',
                    name='tenant',
                ),
                migrations.RemoveField(
                    model_name='mandateinvitation',
                    name='reissued_from',
                ),
                migrations.RemoveField(
                    model_name='mandateinvitation',
                    name='tenant',
                ),
                migrations.DeleteModel(
                    name='AuditEntry',
                ),
                migrations.DeleteModel(
                    name='CustomerLink',
                ),
                migrations.DeleteModel(
                    name='CustomerSettings',
                ),
                migrations.DeleteModel(
                    name='MandateInvitation',
                ),
    
            ],
            database_operations=[],
        ),
    ]
