"""manage.py qcluster_check: a supervisor's liveness check of the task clusters. Stalled =
tasks wait and none has finished for a while (a django-q2 worker killed while waiting for a
task freezes its whole cluster; docs/operations.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Task
from django_q.signing import SignedPackage

from config.management.commands.qcluster_check import clusters_stalled

pytestmark = pytest.mark.django_db


def _waiting_task() -> None:
    get_broker().enqueue(SignedPackage.dumps({"id": "t1", "name": "t1", "func": "math.floor",
                                              "args": (1.5,), "kwargs": {}}))


def _finished(ago: timedelta) -> None:
    stopped = timezone.now() - ago
    Task.objects.create(id="done1", name="done1", func="math.floor", started=stopped,
                        stopped=stopped, success=True)


def test_nothing_waiting_is_never_stalled():
    assert clusters_stalled(seconds=60) == ""
    call_command("qcluster_check", "--seconds", "60")  # exit 0


def test_tasks_waiting_and_none_finished_for_long_is_stalled():
    _finished(timedelta(minutes=30))
    _waiting_task()
    said = clusters_stalled(seconds=600)
    assert "1 task(s) waiting in the broker" in said and "restart them" in said
    with pytest.raises(SystemExit) as exited:
        call_command("qcluster_check", "--seconds", "600")
    assert exited.value.code == 1


def test_tasks_waiting_while_others_finish_is_fine():
    _finished(timedelta(seconds=30))
    _waiting_task()
    assert clusters_stalled(seconds=600) == ""
