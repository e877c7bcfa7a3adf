"""Customers and mandates become an app of their own (label ``customers``).

State only: the three tables already exist (reconciliation 0003) and keep their names;
reconciliation 0004 removes the models from that app's state."""

import django.db.models.deletion
import reconciliation.customers.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('reconciliation', '0003_customers_and_mandates'),
        ('exact', '0003_ledger_config_moved_to_bookings'),
        ('gocardless', '0004_one_tenant_per_organisation'),
        ('tenants', '0002_collection_policy'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CustomerLink',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('exact_account_guid', models.UUIDField(help_text="Exact's account ID (kept after deletion).")),
                        ('exact_code', models.CharField(blank=True, max_length=32)),
                        ('exact_name', models.CharField(blank=True, max_length=255)),
                        ('state', models.CharField(choices=[('matched', 'Matched'), ('ambiguous', 'Ambiguous (needs a person)'), ('unmatched', 'Unmatched'), ('unlinked', 'Unlinked by a person')], db_index=True, default='unmatched', max_length=12)),
                        ('matched_by', models.CharField(blank=True, choices=[('metadata', 'Our metadata'), ('email', 'E-mail'), ('name_postcode', 'Name and postcode'), ('invitation', 'Mandate invitation'), ('manual', 'A person')], max_length=16)),
                        ('candidates', models.JSONField(blank=True, default=list, help_text='GoCardless customer ids when ambiguous.')),
                        ('confirmed_at', models.DateTimeField(blank=True, null=True)),
                        ('stop_reason', models.CharField(blank=True, help_text='Why collection stopped (empty: not stopped).', max_length=300)),
                        ('stopped_at', models.DateTimeField(blank=True, null=True)),
                        ('selected_for_invitation', models.BooleanField(default=False)),
                        ('registration_note', models.CharField(blank=True, help_text='Why the last invitation attempt was skipped.', max_length=500)),
                        ('pushed_snapshot', models.JSONField(blank=True, default=dict)),
                        ('reflection_state', models.CharField(blank=True, choices=[('', 'Nothing to write'), ('pending', 'Pending'), ('done', 'Written'), ('failed', 'Failed (will retry)')], default='', max_length=10)),
                        ('reflection_error', models.TextField(blank=True)),
                        ('reflection_attempts', models.PositiveIntegerField(default=0)),
                        ('reflection_due_at', models.DateTimeField(blank=True, db_index=True, null=True)),
                        ('reflected', models.JSONField(blank=True, default=dict, help_text='What Exact holds from us: payment condition, mandate records by reference.')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('confirmed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('exact_account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='customer_links', to='exact.exactaccount')),
                        ('gocardless_customer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='customer_links', to='gocardless.customer')),
                        ('mandate', models.ForeignKey(blank=True, help_text='The mandate we collect with (newest usable one).', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='customer_links', to='gocardless.mandate')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='customer_links', to='tenants.tenant')),
                    ],
                    options={
                        'verbose_name': 'customer link',
                        'db_table': 'reconciliation_customerlink',
                        'ordering': ['tenant', 'exact_code'],
                    },
                ),
                migrations.CreateModel(
                    name='CustomerSettings',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('registration_policy', models.CharField(choices=[('open_receivables', 'Sales customers with open receivables'), ('payment_condition', 'Customers whose payment condition is direct debit'), ('manual', 'Manual selection in the admin')], default='manual', max_length=20)),
                        ('auto_invite', models.BooleanField(default=False, help_text='Invite qualifying customers on the schedule. Off: only the admin action sends invitations.')),
                        ('direct_debit_condition', models.CharField(blank=True, help_text="Exact payment condition code that means 'direct debit' (qualifies customers under that policy, and is written to Exact while a mandate is active).", max_length=20)),
                        ('default_payment_condition', models.CharField(blank=True, help_text='Exact payment condition restored when a mandate stops.', max_length=20)),
                        ('reflect_payment_condition', models.BooleanField(default=False, help_text="Write the mandate state into the account's payment condition.")),
                        ('reflect_mandate_record', models.BooleanField(default=False, help_text='Keep a cashflow/DirectDebitMandates record with the GoCardless mandate reference in Exact.')),
                        ('invitation_sender', models.CharField(blank=True, help_text="From address of invitation e-mails; empty: the installation's default.", max_length=254)),
                        ('invitation_subjects', models.JSONField(blank=True, default=reconciliation.customers.models._default_languages, help_text='Per language, e.g. {"nl": "..."}; empty: the built-in template.')),
                        ('invitation_bodies', models.JSONField(blank=True, default=reconciliation.customers.models._default_languages, help_text='Per language, Django template text with {{ customer_name }}, {{ company }}, {{ url }}, {{ expires_at }}; empty: the built-in template.')),
                        ('reminder_count', models.PositiveSmallIntegerField(default=2)),
                        ('reminder_spacing_days', models.PositiveSmallIntegerField(default=3)),
                        ('reissue_limit', models.PositiveSmallIntegerField(default=2, help_text='How often an expired invitation link is re-issued.')),
                        ('redirect_uri', models.URLField(blank=True, help_text='Where the payer lands after the hosted page (optional).')),
                        ('exit_uri', models.URLField(blank=True, help_text="Where 'exit' on the hosted page leads.")),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('tenant', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='customer_settings', to='tenants.tenant')),
                    ],
                    options={
                        'verbose_name': 'customer and mandate settings',
                        'verbose_name_plural': 'customer and mandate settings',
                        'db_table': 'reconciliation_customersettings',
                    },
                ),
                migrations.CreateModel(
                    name='MandateInvitation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('attempt', models.PositiveIntegerField(help_text='Per link; part of the idempotency keys.')),
                        ('currency', models.CharField(max_length=3)),
                        ('language', models.CharField(blank=True, max_length=5)),
                        ('email', models.CharField(blank=True, max_length=254)),
                        ('billing_request_id', models.CharField(blank=True, db_index=True, max_length=40)),
                        ('flow_id', models.CharField(blank=True, max_length=40)),
                        ('authorisation_url', models.URLField(blank=True, max_length=1000)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('state', models.CharField(choices=[('pending', 'Pending (not sent yet)'), ('sent', 'Sent'), ('completed', 'Completed'), ('expired', 'Expired'), ('cancelled', 'Cancelled'), ('failed', 'Failed')], db_index=True, default='pending', max_length=10)),
                        ('reminders_sent', models.PositiveSmallIntegerField(default=0)),
                        ('last_sent_at', models.DateTimeField(blank=True, null=True)),
                        ('error', models.TextField(blank=True)),
                        ('field_errors', models.JSONField(blank=True, default=list)),
                        ('mandate_gocardless_id', models.CharField(blank=True, max_length=40)),
                        ('completed_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('link', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='customers.customerlink')),
                        ('reissued_from', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='customers.mandateinvitation')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='mandate_invitations', to='tenants.tenant')),
                    ],
                    options={
                        'db_table': 'reconciliation_mandateinvitation',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='customerlink',
                    constraint=models.UniqueConstraint(condition=models.Q(('state', 'unlinked'), _negated=True), fields=('tenant', 'exact_account_guid'), name='customer_link_account_uniq'),
                ),
                migrations.AddConstraint(
                    model_name='customerlink',
                    constraint=models.UniqueConstraint(condition=models.Q(('state', 'unlinked'), _negated=True), fields=('tenant', 'gocardless_customer'), name='customer_link_customer_uniq'),
                ),
                migrations.AddConstraint(
                    model_name='mandateinvitation',
                    constraint=models.UniqueConstraint(fields=('link', 'attempt'), name='invitation_attempt_uniq'),
                ),
                migrations.AddConstraint(
                    model_name='mandateinvitation',
                    constraint=models.UniqueConstraint(condition=models.Q(('state__in', ['pending', 'sent'])), fields=('link',), name='invitation_one_open_per_link'),
                ),
    
            ],
            database_operations=[],
        ),
    ]
