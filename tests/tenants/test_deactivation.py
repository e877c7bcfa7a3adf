"""What `tenants deactivate` and the tenant admin say deactivation stops, and the shared
"only active tenants" helpers every job uses (tenants/activity.py)."""

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from tenants.activity import (
    WHAT_DEACTIVATION_STOPS,
    inactive_tenants_log,
    of_active_tenants,
    tenant_skip,
)
from tenants.models import Membership

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


def test_deactivate_says_what_stops_and_activate_what_resumes(tenant_a):
    out = run("deactivate", tenant_a.slug, "--reason", "contract ended")
    assert out.startswith("Tenant alpha is inactive.")
    for stopped in ("e-mails", "Exact Online", "bookings", "GoCardless", "collection"):
        assert stopped in out
    assert "resumes" in out
    out = run("activate", tenant_a.slug)
    assert out.startswith("Tenant alpha is active.") and "resumes" in out


def test_tenant_admin_explains_the_active_flag(client, superuser, tenant_a):
    client.force_login(superuser)
    page = client.get(reverse("admin:tenants_tenant_change", args=[tenant_a.pk]))
    assert page.status_code == 200
    help_text = page.context["adminform"].form.fields["is_active"].help_text
    assert WHAT_DEACTIVATION_STOPS in help_text


def test_active_filter_and_skip_guard(tenant_a, tenant_b, admin_of_a, caplog):
    tenant_b.is_active = False
    tenant_b.save()
    Membership.objects.create(user=admin_of_a, tenant=tenant_b)
    memberships = Membership.objects.all()
    assert [m.tenant for m in of_active_tenants(memberships)] == [tenant_a]
    with caplog.at_level(logging.INFO, logger="tenants.activity"):
        assert tenant_skip(tenant_a, job="job") is False
        assert tenant_skip(tenant_b, job="job", what="thing") is True
        assert inactive_tenants_log(memberships, job="sweep") == 1
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [
        (logging.INFO, "job skipped for inactive tenant bravo (thing)"),
        (logging.INFO, "sweep skipped 1 item(s) of inactive tenant(s) bravo"),
    ]


def test_unticking_active_in_the_admin_stops_the_exact_sync(
    client, superuser, tenant_a, django_capture_on_commit_callbacks, monkeypatch
):
    from exact.schedules import sync_sweep
    from tests.factories import ExactConnectionFactory

    queued = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *args: queued.append(args))
    ExactConnectionFactory(tenant=tenant_a, status="connected")
    client.force_login(superuser)
    url = reverse("admin:tenants_tenant_change", args=[tenant_a.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value not in (None, False)}
    data.pop("is_active")  # unticked
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_a.refresh_from_db()
    assert tenant_a.is_active is False
    assert sync_sweep() == [] and queued == []  # the sync sweep does not pick it

    tenant_a.is_active = True
    tenant_a.save()
    assert sync_sweep() == [tenant_a.pk]
    assert queued == [("exact.tasks.exact_sync_task", tenant_a.pk)]
