"""A company's administrator sets the collection schedule in Chromium: days of the month
"1, 15" on the company page (a mistake first: day 0, said at the field), and the dashboard's
*Next collection run* shows the 1st of January moved past New Year's Day. The audit trail
names the change. Screenshots: artifacts/screenshots/ under the test's name.

The server's clock is moved (time-machine, ticking) to Wednesday 20 December 2028, after
every date the suite runs at (the browser keeps its own clock for cookies, and a session
cookie set later than the browser's now stays valid).
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from core.audit import AuditEntry
from tenants.models import CollectionMode, Role, ScheduleKind
from tests.conftest import _member

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
NOW = dt.datetime(2028, 12, 20, 10, 0, tzinfo=dt.UTC)  # a Wednesday, 11:00 in Amsterdam


@pytest.fixture
def administrator(tenant_a):
    tenant_a.time_zone = "Europe/Amsterdam"
    tenant_a.currencies = ["EUR"]
    tenant_a.collection_mode = CollectionMode.AUTO
    tenant_a.collection_hour = 6
    tenant_a.save()
    user = _member(tenant_a, Role.ADMIN, "ada-administrator")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_an_administrator_collects_on_the_1st_and_15th(journey, administrator, tenant_a):
    page = journey.page
    with time_machine.travel(NOW, tick=True):
        journey.log_in("ada-administrator", PASSWORD)
        # Every day at 06:00, and today's run has not happened yet: due now.
        next_run = page.locator("#ws-next-h + p")
        assert next_run.inner_text() == "Due now: starts within 15 minutes"
        journey.shot("dashboard-every-day")

        journey.open(reverse("admin:tenants_tenant_change", args=[tenant_a.pk]))
        page.select_option("select[name=schedule_kind]", ScheduleKind.MONTH_DAYS)
        page.fill("input[name=schedule_month_days]", "0, 15")
        with page.expect_navigation():
            page.click("input[name=_continue]")
        error = page.locator(".field-schedule_month_days .errorlist").inner_text()
        assert "0 is not a day of the month: choose days from 1 to 31" in error
        journey.shot("day-zero-refused")
        tenant_a.refresh_from_db()
        assert tenant_a.schedule_kind == ScheduleKind.DAILY

        page.fill("input[name=schedule_month_days]", "1, 15")
        with page.expect_navigation():
            page.click("input[name=_continue]")
        assert page.locator(".messagelist").inner_text().count("was changed successfully") == 1
        assert page.locator("input[name=schedule_month_days]").input_value() == "1, 15"
        journey.shot("days-of-the-month-saved")
        tenant_a.refresh_from_db()
        assert (tenant_a.schedule_kind, tenant_a.schedule_month_days) == (
            ScheduleKind.MONTH_DAYS, [1, 15]
        )
        entry = AuditEntry.objects.filter(action="tenant.changed", object_id=tenant_a.pk).get()
        assert entry.actor_user_id == administrator.pk
        assert entry.after["schedule_month_days"] == [1, 15]

        # Monday 1 January 2029 is New Year's Day (TARGET is closed): Tuesday the 2nd.
        journey.open("/admin/")
        assert next_run.inner_text() == (
            "Tue 2 Jan 2029, 06:00 CET (the 1st is a holiday: New Year's Day)"
        )
        assert page.locator("#ws-next-h ~ p.ws-quiet").inner_text() == "Collects automatically"
        journey.shot("dashboard-next-run")
