"""``manage.py collection {run,preview,list}``: the operator's way to run and inspect runs."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from reconciliation.collection.models import (
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
    RunTrigger,
)
from tenants.models import CollectionMode

pytestmark = pytest.mark.django_db


def collection(*args) -> str:
    out = StringIO()
    call_command("collection", *args, stdout=out)
    return out.getvalue()


def test_run_creates_one_payment_per_invoice_and_a_rerun_creates_none(collection_world):
    data = json.loads(collection("run", "--tenant", "alpha", "--json"))
    assert data["kind"] == "live" and data["state"] == "completed"
    assert data["trigger"] == RunTrigger.SCHEDULE
    assert data["submitted"] == data["to_collect"] == 10 and data["errors"] == 0
    collection_world.assert_one_payment_per_invoice()

    again = json.loads(collection("run", "--tenant", "alpha", "--json"))
    assert again["to_collect"] == 0 and again["submitted"] == 0
    assert len(collection_world.sim_payments()) == 10


def test_preview_sends_nothing_and_shows_every_line(collection_world):
    data = json.loads(collection("preview", "--tenant", "alpha", "--json"))
    assert data["kind"] == "preview" and data["to_collect"] == 10
    assert len(data["items"]) == 10 and {i["decision"] for i in data["items"]} == {"collect"}
    assert collection_world.sim_payments() == []
    assert not CollectionAttempt.objects.exists()
    text = collection("preview", "--tenant", "alpha")
    assert "10 to collect" in text


def test_preview_in_review_mode_awaits_approval(collection_world):
    tenant = collection_world.tenant
    tenant.collection_mode = CollectionMode.REVIEW
    tenant.save()
    text = collection("preview", "--tenant", "alpha")
    assert "Awaiting approval" in text
    assert CollectionRun.objects.get().state == RunState.AWAITING_APPROVAL


def test_list_shows_recent_runs_newest_first(collection_world):
    collection("preview", "--tenant", "alpha")
    collection("run", "--tenant", "alpha")
    runs = json.loads(collection("list", "--tenant", "alpha", "--json"))
    assert [r["kind"] for r in runs] == ["live", "preview"]
    assert len(json.loads(collection("list", "--tenant", "alpha", "--limit", "1", "--json"))) == 1
    lines = collection("list", "--tenant", "alpha").strip().splitlines()
    assert len(lines) == 2 and "live" in lines[0] and "completed" in lines[0]


@pytest.mark.parametrize(
    ("mode", "active", "message"),
    [
        (CollectionMode.OFF, True, "Collection is off"),
        (CollectionMode.REVIEW, True, "review mode"),
        (CollectionMode.AUTO, False, "inactive"),
    ],
)
def test_run_refuses_unless_auto_and_active(collection_world, mode, active, message):
    tenant = collection_world.tenant
    tenant.collection_mode, tenant.is_active = mode, active
    tenant.save()
    with pytest.raises(CommandError, match=message):
        collection("run", "--tenant", "alpha")
    assert not CollectionRun.objects.exists()
    assert collection_world.sim_payments() == []


@pytest.mark.parametrize("action", ["run", "preview", "list"])
def test_unknown_tenant_is_one_line(db, action):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        collection(action, "--tenant", "nope")


def test_list_limit_must_be_positive(tenant_a):
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        collection("list", "--tenant", "alpha", "--limit", "0")


def test_run_refused_while_another_live_run_is_active_exits_3(collection_world):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL: see test_concurrent_runs_pg.py (advisory lock)")
    tenant = collection_world.tenant
    # A running live run with a fresh heartbeat (SQLite: within the lease, so alive).

    CollectionRun.objects.create(
        tenant=tenant,
        kind=RunKind.LIVE,
        trigger=RunTrigger.SCHEDULE,
        state=RunState.RUNNING,
        as_of=timezone.localdate(),
        heartbeat_at=timezone.now(),
    )
    with pytest.raises(CommandError, match="Refused") as caught:
        collection("run", "--tenant", "alpha")
    assert caught.value.returncode == 3
    assert collection_world.sim_payments() == []


def test_run_without_gocardless_connection_fails_with_one_line(collection_world):
    collection_world.connection.delete()
    with pytest.raises(CommandError, match="GoCardless is not connected"):
        collection("run", "--tenant", "alpha")
    assert CollectionRun.objects.get().state == RunState.FAILED
