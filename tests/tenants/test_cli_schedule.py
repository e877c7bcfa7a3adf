"""`manage.py tenants update --schedule …`: an operator sets the collection schedule from the
shell, with the same validation and audit as the company page (docs/schedules.md)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.models import AuditEntry
from tenants.audit_words import changes
from tenants.models import ScheduleKind
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def update(slug, *args):
    call_command("tenants", "update", slug, *args)


def test_weekdays_by_name_and_hour_are_saved_and_audited_in_words():
    tenant = TenantFactory(slug="acme")
    update("acme", "--schedule", "weekdays", "--weekdays", "mon, Thursday", "--hour", "7")
    tenant.refresh_from_db()
    assert (tenant.schedule_kind, tenant.schedule_weekdays, tenant.collection_hour) == (
        ScheduleKind.WEEKDAYS, [0, 3], 7)
    entry = AuditEntry.objects.filter(action="tenant.changed", tenant=tenant).latest("id")
    shown = {row["label"]: row["after"] for row in changes(entry, tenant)}
    assert "Monday, Thursday" in shown.values(), shown


def test_days_of_the_month():
    tenant = TenantFactory(slug="acme")
    update("acme", "--schedule", "month_days", "--month-days", "15,1,31")
    tenant.refresh_from_db()
    assert tenant.schedule_month_days == [1, 15, 31]


@pytest.mark.parametrize(
    "args, words",
    [
        (("--schedule", "weekdays", "--weekdays", "funday"), "'funday' is not a weekday name"),
        (("--schedule", "weekdays", "--weekdays", "sat"), "Saturday is not a working day"),
        (("--schedule", "month_days", "--month-days", "0"), "0 is not a day of the month"),
        (("--schedule", "month_days", "--month-days", "first"), "give days as numbers"),
        (("--hour", "24",), "collection_hour"),
    ],
)
def test_a_bad_schedule_is_one_line_and_changes_nothing(args, words):
    tenant = TenantFactory(slug="acme")
    before = (tenant.schedule_kind, tenant.schedule_weekdays, tenant.schedule_month_days,
              tenant.collection_hour)
    with pytest.raises(CommandError) as err:
        update("acme", *args)
    assert words in str(err.value)
    tenant.refresh_from_db()
    assert before == (tenant.schedule_kind, tenant.schedule_weekdays,
                      tenant.schedule_month_days, tenant.collection_hour)
