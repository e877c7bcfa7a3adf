"""django-q2's task queue pages in words (issue 15): durations as "5 ms" / "12 s" rather than
``0.005335``, task functions by what they do, and still for superusers only."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django_q.models import Failure, Schedule, Success, Task

from config.admin import (
    TASK_WORDS,
    FailureAdmin,
    ScheduleAdmin,
    SuccessAdmin,
    duration_words,
    task_words,
)
from tests.workspace.page_words import findings

ROOT = Path(__file__).resolve().parents[2]
TASK_PATH = re.compile(r'"((?:exact|gocardless|reconciliation\.\w+)\.tasks\.\w+_task)"')


def test_django_qs_admins_are_replaced_by_ours():
    assert isinstance(admin.site._registry[Success], SuccessAdmin)
    assert isinstance(admin.site._registry[Failure], FailureAdmin)
    assert isinstance(admin.site._registry[Schedule], ScheduleAdmin)


def test_durations_read_as_milliseconds_seconds_and_minutes():
    assert duration_words(0.005335) == "5 ms"
    assert duration_words(3.4) == "3,400 ms"
    assert duration_words(12.4) == "12 s"
    assert duration_words(125) == "2 min 5 s"
    assert duration_words(None) == "\u2013"


def test_every_task_the_product_queues_has_words():
    queued = set()
    for package in ("core", "tenants", "exact", "gocardless", "reconciliation", "config"):
        for path in (ROOT / package).rglob("*.py"):
            queued |= set(TASK_PATH.findall(path.read_text()))
    assert "exact.tasks.exact_sync_task" in queued
    assert sorted(queued - set(TASK_WORDS)) == []
    assert task_words("exact.tasks.exact_sync_task") == "Exact sync"
    assert task_words("someapp.tasks.tidy_up_task") == "Tidy up"


def _task(func: str, seconds: float, *, success: bool = True) -> Task:
    started = timezone.now() - dt.timedelta(minutes=1)
    return Task.objects.create(
        id=uuid.uuid4().hex, name=f"task-{uuid.uuid4().hex[:6]}", func=func, args=(7,),
        kwargs={}, result=None if success else "Traceback …\nValueError: no_such_thing",
        group="exact", started=started, stopped=started + dt.timedelta(seconds=seconds),
        success=success, attempt_count=1)


@pytest.mark.django_db
def test_the_queue_pages_show_durations_and_tasks_in_words(client, superuser):
    done = _task("exact.tasks.exact_sync_task", 0.005335)
    failed = _task("gocardless.tasks.events_poll_task", 1.25, success=False)
    client.force_login(superuser)
    codes = {"exact.tasks.exact_sync_task", "no_such_thing"}
    page = client.get(reverse("admin:django_q_success_changelist")).content.decode()
    assert "Exact sync" in page and "5 ms" in page
    assert findings(page, codes=codes, minor=set()) == []
    page = client.get(reverse("admin:django_q_failure_changelist")).content.decode()
    assert "Checking GoCardless for new events" in page and "1,250 ms" in page
    for url in (reverse("admin:django_q_success_change", args=[done.pk]),
                reverse("admin:django_q_failure_change", args=[failed.pk])):
        response = client.get(url)
        assert response.status_code == 200
        assert findings(response.content.decode(), codes=codes, minor=set()) == []


@pytest.mark.django_db
def test_the_queue_pages_stay_for_superusers_only(client, admin_of_a):
    client.force_login(admin_of_a)
    for name in ("success", "failure", "schedule"):
        response = client.get(reverse(f"admin:django_q_{name}_changelist"))
        assert response.status_code == 403, name
