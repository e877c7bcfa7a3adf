"""On PostgreSQL, refuse UPDATE and DELETE on the audit trail in the database itself.

The ORM already refuses; this covers raw SQL, other clients and future code. TRUNCATE is
left to the table owner (test teardown uses it; an operator who truncates the audit trail
has the privilege to drop the trigger too). SQLite has no trigger here: its test teardown
deletes rows, and SQLite is not a production database for this product.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION reconciliation_auditentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'reconciliation_auditentry is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER reconciliation_auditentry_append_only
    BEFORE UPDATE OR DELETE ON reconciliation_auditentry
    FOR EACH ROW EXECUTE FUNCTION reconciliation_auditentry_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS reconciliation_auditentry_append_only ON reconciliation_auditentry;
DROP FUNCTION IF EXISTS reconciliation_auditentry_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
