"""`manage.py tenants`: provisioning without the admin, one-line errors, JSON output."""

import json
from io import StringIO
from unittest import mock

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError

from core.models import AuditEntry
from tenants.models import Tenant
from tests.factories import ExactConnectionFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("tenants", *args, stdout=out)
    return out.getvalue()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """As an operator's shell would: argv parsing, exit code, stderr."""
    code = 0
    # run_from_argv closes every DB connection when it ends, as a real process would; inside
    # the test transaction that would close the test's own connection.
    with mock.patch("django.core.management.base.connections.close_all"):
        try:
            ManagementUtility(["manage.py", "tenants", *args]).execute()
        except SystemExit as exc:
            code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_create_show_list_update_deactivate_activate():
    created = json.loads(
        run(
            "create",
            "--name",
            "Acme BV",
            "--currencies",
            "eur,gbp",
            "--mode",
            "review",
            "--minimum-amount",
            "2.50",
            "--json",
        )
    )
    assert created["slug"] == "acme-bv"
    assert created["collection_policy"] == {
        "mode": "review",
        "lead_days": 5,
        "minimum_amount": "2.50",
        "currencies": ["EUR", "GBP"],
    }
    uuid = created["uuid"]
    assert created["webhook_urls"] == {
        "exact": f"https://connector.example.test/webhooks/exact/{uuid}/",
        "gocardless": f"https://connector.example.test/webhooks/gocardless/{uuid}/",
    }

    shown = json.loads(run("show", "acme-bv", "--json"))
    assert shown["webhook_urls"] == created["webhook_urls"]
    assert shown["connections"] == {
        "exact": {"status": "not_configured"},
        "gocardless": {"status": "not_configured"},
    }
    assert "acme-bv" in run("list")

    updated = json.loads(run("update", "acme-bv", "--lead-days", "9", "--json"))
    assert updated["collection_policy"]["lead_days"] == 9

    deactivated = json.loads(run("deactivate", "acme-bv", "--reason", "customer left", "--json"))
    assert deactivated["slug"] == "acme-bv" and deactivated["active"] is False
    assert "acme-bv" not in run("list")
    assert "acme-bv" in run("list", "--all")
    assert json.loads(run("activate", "acme-bv", "--json"))["active"] is True
    assert Tenant.objects.get(slug="acme-bv").is_active

    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["tenant.created", "tenant.changed", "tenant.deactivated", "tenant.activated"]
    change = AuditEntry.objects.get(action="tenant.changed")
    assert change.before == {"lead_days": 5} and change.after == {"lead_days": 9}
    assert change.actor_type == "system" and change.actor_label.startswith("cli:")


def test_show_never_prints_secrets(tenant_a):
    ExactConnectionFactory(tenant=tenant_a)
    text = run("show", tenant_a.slug, "--json") + run("show", tenant_a.slug)
    assert "PLAINTEXT" not in text
    assert json.loads(run("show", tenant_a.slug, "--json"))["connections"]["exact"] == {
        "status": "connected"
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "No tenant with slug 'nope'."),
        (["create", "--name", "X", "--time-zone", "Mars/Olympus"], "not a known IANA time zone"),
        (["create", "--name", "X", "--currencies", "EURO"], "ISO 4217"),
        (["create", "--name", "X", "--minimum-amount", "ten"], "is not an amount"),
        (["create", "--name", "X", "--lead-days", "-1"], "must not be negative"),
        (["update", "nope", "--lead-days", "3"], "No tenant with slug 'nope'."),
    ],
)
def test_bad_input_is_one_line_and_non_zero(capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code != 0
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_duplicate_slug_and_empty_update(capsys, tenant_a):
    code, _, err = run_cli(capsys, "create", "--name", "Again", "--slug", tenant_a.slug)
    assert code != 0 and "already exists" in err
    with pytest.raises(CommandError, match="Nothing to change"):
        run("update", tenant_a.slug)


def test_unknown_action_and_missing_arguments_are_usage_errors(capsys):
    for args in (["frobnicate"], ["create"], []):
        code, _, err = run_cli(capsys, *args)
        assert code == 2
        assert "Traceback" not in err and "error:" in err
