"""The audit trail is append-only through the ORM, the admin and (on PostgreSQL) raw SQL."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from core.audit import Actor, audit_record, model_snapshot
from core.models import AppendOnlyError, AuditEntry
from tests.factories import AuditEntryFactory

pytestmark = pytest.mark.django_db


def test_audit_record_writes_who_what_and_change(tenant_a, admin_of_a):
    entry = audit_record(
        actor=Actor.for_user(admin_of_a),
        action="tenant.changed",
        tenant=tenant_a,
        obj=tenant_a,
        before={"lead_days": 5},
        after={"lead_days": 7},
        message="policy change",
    )
    entry.refresh_from_db()
    assert (entry.actor_type, entry.actor_user, entry.actor_label) == (
        "user",
        admin_of_a,
        "alice-admin",
    )
    assert (entry.object_type, entry.object_id) == ("tenants.tenant", str(tenant_a.pk))
    assert entry.before == {"lead_days": 5} and entry.after == {"lead_days": 7}


def test_snapshots_never_contain_secrets(tenant_a):
    from tests.exact.factories import ExactGrantFactory

    grant = ExactGrantFactory(refresh_token="")  # Exact's tokens live in the user's grant
    snapshot = model_snapshot(grant)
    assert snapshot["access_token"] == "set"
    assert snapshot["refresh_token"] == "not set"
    assert "PLAINTEXT" not in str(snapshot)


def test_orm_refuses_update_and_delete(tenant_a):
    entry = AuditEntryFactory(tenant=tenant_a)
    entry.message = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(message="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.bulk_update([entry], ["message"])
    assert AuditEntry.objects.get(pk=entry.pk).message == "something happened"


def test_admin_is_read_only_even_for_superusers(client, tenant_a, superuser):
    entry = AuditEntryFactory(tenant=tenant_a)
    client.force_login(superuser)
    change_url = reverse("admin:core_auditentry_change", args=[entry.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert client.post(change_url, {"message": "rewritten"}).status_code == 403
    delete_url = reverse("admin:core_auditentry_delete", args=[entry.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:core_auditentry_add")).status_code == 403
    changelist = client.get(reverse("admin:core_auditentry_changelist"))
    assert "delete_selected" not in (
        changelist.context["action_form"].fields["action"].choices
        if changelist.context.get("action_form")
        else []
    )
    assert AuditEntry.objects.get(pk=entry.pk).message == "something happened"


@pytest.mark.postgres  # the trigger exists on PostgreSQL only
def test_postgres_trigger_refuses_raw_sql(tenant_a):
    entry = AuditEntryFactory(tenant=tenant_a)
    table = AuditEntry._meta.db_table
    for sql in (
        f"UPDATE {table} SET message = 'rewritten' WHERE id = %s",
        f"DELETE FROM {table} WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).message == "something happened"
