"""The connection admin: Test connection, Disconnect, Sync now, token health and budget; the
read-only mirrors; the schedules command."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from core.models import AuditEntry
from exact.models import ConnectionStatus, ExactAccount, ExactConnection
from tests.exact.factories import ExactAccountFactory, ExactReceivableFactory
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db


def _messages(resp):
    return [str(m) for m in get_messages(resp.wsgi_request)]


def test_change_page_shows_health_and_budget_never_tokens(client, sim, connection, api, admin_of_a):
    list(api.iter_rows("financial/Journals", select=("Code",)))
    client.force_login(admin_of_a)
    page = client.get(reverse("admin:exact_exactconnection_change", args=[connection.pk]))
    assert page.status_code == 200
    assert b"Token health" in page.content and b"refresh token stored" in page.content
    assert b"Daily: 4999 of 5000 left" in page.content
    assert connection.access_token.encode() not in page.content
    assert connection.refresh_token.encode() not in page.content


def test_paused_connection_says_until_when(client, connection, admin_of_a):
    until = timezone.now() + timedelta(hours=3)
    ExactConnection.objects.filter(pk=connection.pk).update(paused_until=until)
    from exact.models import ExactRateBudget

    ExactRateBudget.objects.create(
        client_id="sim-client-id",
        division=DIVISION,
        daily_limit=5000,
        daily_remaining=0,
        daily_reset_at=until,
    )
    client.force_login(admin_of_a)
    page = client.get(reverse("admin:exact_exactconnection_change", args=[connection.pk]))
    assert b"Paused until" in page.content


def test_test_connection_reports_what_it_found(client, sim, connection, admin_of_a):
    client.force_login(admin_of_a)
    resp = client.post(reverse("admin:exact_exactconnection_test", args=[connection.pk]))
    assert resp.status_code == 302
    found = " ".join(_messages(resp))
    assert "Sim User" in found and f"Division {DIVISION}" in found and "reachable" in found


def test_test_connection_failure_is_a_message_not_a_500(client, sim, connection, admin_of_a):
    connection.status = ConnectionStatus.NEEDS_REAUTH
    connection.status_reason = "Old refresh token used."
    connection.save()
    client.force_login(admin_of_a)
    resp = client.post(reverse("admin:exact_exactconnection_test", args=[connection.pk]))
    assert resp.status_code == 302
    assert "Test failed" in " ".join(_messages(resp))


def test_disconnect_removes_subscriptions_wipes_tokens_and_audits(
    client, sim, connection, admin_of_a
):
    from exact.webhooks import subscriptions_create

    subscriptions_create(connection=connection)
    assert len(connection.webhook_subscription_ids) == 2
    client.force_login(admin_of_a)
    url = reverse("admin:exact_exactconnection_disconnect", args=[connection.pk])
    assert client.get(url).status_code == 200  # confirmation page
    resp = client.post(url)
    assert resp.status_code == 302
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.access_token is None and connection.refresh_token is None
    assert connection.webhook_subscription_ids == []
    remaining = [row for row in sim.state.subscriptions.values()]
    assert remaining == []
    entry = AuditEntry.objects.get(action="exact_connection.disconnected")
    assert entry.before["refresh_token"] == "set" and entry.after["refresh_token"] == "not set"


def test_viewer_cannot_use_the_buttons(client, connection, viewer_of_a):
    client.force_login(viewer_of_a)
    for name in ("connect", "test", "disconnect"):
        url = reverse(f"admin:exact_exactconnection_{name}", args=[connection.pk])
        assert client.post(url).status_code == 403


def test_sync_now_queues_for_usable_connections(client, connection, admin_of_a, monkeypatch):
    queued = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *a: queued.append(a))
    client.force_login(admin_of_a)
    resp = client.post(
        reverse("admin:exact_exactconnection_changelist"),
        {"action": "sync_now", "_selected_action": [connection.pk]},
    )
    assert resp.status_code == 302
    assert queued == [("exact.tasks.exact_sync_task", connection.tenant_id)]


def test_mirrors_are_read_only_and_searchable(client, tenant_a, admin_of_a):
    account = ExactAccountFactory(tenant=tenant_a, name="Findable Customer")
    ExactReceivableFactory(tenant=tenant_a, account=account)
    client.force_login(admin_of_a)
    url = reverse("admin:exact_exactaccount_changelist")
    resp = client.get(url, {"q": "Findable"})
    assert resp.status_code == 200 and b"Findable Customer" in resp.content
    assert client.get(reverse("admin:exact_exactaccount_add")).status_code == 403
    change = client.get(reverse("admin:exact_exactaccount_change", args=[account.pk]))
    assert change.status_code == 200 and change.context["has_change_permission"] is False
    for name in ("exactreceivable", "syncrun", "exactwebhookdelivery"):
        assert client.get(reverse(f"admin:exact_{name}_changelist")).status_code == 200
    assert ExactAccount.objects.count() == 1


def test_schedules_command_is_idempotent(connection, capsys):
    call_command("exact_schedules")
    call_command("exact_schedules")
    names = sorted(Schedule.objects.values_list("name", flat=True))
    # none per tenant
    assert names == ["exact-keepalive", "exact.deliveries_prune", "exact.sync_due"]
    sweep = Schedule.objects.get(name="exact.sync_due")
    assert sweep.func == "exact.tasks.exact_sync_due_task" and sweep.minutes == 1


def test_misconfigured_base_url_is_a_message(client, tenant_a, admin_of_a):
    from exact.models import Region
    from tests.factories import ExactConnectionFactory

    conn = ExactConnectionFactory(
        tenant=tenant_a, region=Region.CUSTOM, custom_base_url="http://exact.example.com"
    )
    client.force_login(admin_of_a)
    resp = client.post(reverse("admin:exact_exactconnection_connect", args=[conn.pk]))
    assert resp.status_code == 302 and "Cannot connect" in " ".join(_messages(resp))
