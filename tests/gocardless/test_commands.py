"""The operator commands: schedules are upserted, sweeping and polling run the services."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from tests.gocardless.conftest import sim_connection

pytestmark = pytest.mark.django_db


def test_schedules_are_upserted_idempotently():
    call_command("gocardless_schedules", stdout=StringIO())
    call_command("gocardless_schedules", stdout=StringIO())
    assert dict(Schedule.objects.values_list("name", "func")) == {
        "gocardless.events_sweep": "gocardless.tasks.events_sweep_task",
        "gocardless.events_poll": "gocardless.tasks.events_poll_task",
        "gocardless.deliveries_prune": "gocardless.tasks.deliveries_prune_task",
    }


def test_sweep_and_poll_commands(gocardless_simulator, settings):
    settings.GOCARDLESS_POLL_INITIAL_LOOKBACK_DAYS = 0
    connection = sim_connection(gocardless_simulator)
    out = StringIO()
    call_command("gocardless_sweep", stdout=out)
    assert json.loads(out.getvalue()) == {}
    out = StringIO()
    call_command("gocardless_poll", "--tenant", connection.tenant.slug, stdout=out)
    assert json.loads(out.getvalue())[connection.tenant.slug]["seen"] == 0
