"""The collection schedule on the company's page: its administrator chooses every day, weekdays
or days of the month; mistakes are said in words on the page (never a 500); every change is
audited like the other policy fields; the model refuses an empty or impossible choice."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.audit import AuditEntry
from tenants.models import ScheduleKind, Tenant


def page_data(client, url) -> dict:
    """What the company page would post as it is: its form and the members' inline."""
    context = client.get(url).context
    form = context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {
        name: ("" if value is None else value)
        for name, value in data.items()
        if value is not False
    }
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for sub in formset.forms:
            for name in sub.fields:
                value = sub[name].value()
                if value not in (None, False):
                    data[f"{sub.prefix}-{name}"] = value
    return data


@pytest.fixture
def company_page(client, admin_of_a, tenant_a):
    client.force_login(admin_of_a)
    return reverse("admin:tenants_tenant_change", args=[tenant_a.pk])


def test_the_administrator_sets_days_of_the_month_and_it_is_audited(
    client, company_page, tenant_a, admin_of_a
):
    page = client.get(company_page).content.decode()
    assert "Days of the month" in page and "Collection days" in page
    # Weekends are not offered: a run on them would always move to Monday.
    assert 'name="schedule_weekdays" value="4"' in page
    assert 'name="schedule_weekdays" value="5"' not in page
    data = page_data(client, company_page)
    data.update(schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days="15, 1")
    response = client.post(company_page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_a.refresh_from_db()
    assert (tenant_a.schedule_kind, tenant_a.schedule_month_days) == ("month_days", [1, 15])
    entry = AuditEntry.objects.filter(action="tenant.changed", object_id=tenant_a.pk).latest("pk")
    assert entry.actor_user_id == admin_of_a.pk
    changed = {key: value for key, value in entry.after.items() if key != "updated_at"}
    assert {key: entry.before[key] for key in changed} == {
        "schedule_kind": "daily", "schedule_month_days": []
    }
    assert changed == {"schedule_kind": "month_days", "schedule_month_days": [1, 15]}
    # The page shows the days as they were typed, sorted.
    assert 'value="1, 15"' in client.get(company_page).content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"schedule_kind": "month_days", "schedule_month_days": "0, 15"},
         "schedule_month_days", "0 is not a day of the month: choose days from 1 to 31"),
        ({"schedule_kind": "month_days", "schedule_month_days": "32"},
         "schedule_month_days", "32 is not a day of the month"),
        ({"schedule_kind": "month_days", "schedule_month_days": "1st"},
         "schedule_month_days", "'1st' is not a day of the month: write numbers"),
        ({"schedule_kind": "month_days", "schedule_month_days": ""},
         "schedule_month_days", "Choose at least one day of the month"),
        ({"schedule_kind": "weekdays"},
         "schedule_weekdays", "Choose at least one weekday for a weekly schedule."),
        ({"schedule_kind": "weekdays", "schedule_weekdays": ["5"]},
         "schedule_weekdays", "Select a valid choice. 5 is not one of the available choices."),
    ],
)
def test_mistakes_are_said_on_the_page(client, company_page, tenant_a, changes, field, message):
    data = page_data(client, company_page)
    data.pop("schedule_weekdays", None)
    data.update(changes)
    response = client.post(company_page, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    tenant_a.refresh_from_db()
    assert tenant_a.schedule_kind == ScheduleKind.DAILY
    assert not AuditEntry.objects.filter(action="tenant.changed", object_id=tenant_a.pk).exists()


def test_weekdays_are_ticked_by_name(client, company_page, tenant_a):
    data = page_data(client, company_page)
    data.update(schedule_kind="weekdays", schedule_weekdays=["3", "0"])
    response = client.post(company_page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant_a.refresh_from_db()
    assert tenant_a.schedule_weekdays == [0, 3]
    page = client.get(company_page).content.decode()
    assert "Monday" in page and "Thursday" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"schedule_kind": "weekdays", "schedule_weekdays": []}, "Choose at least one weekday"),
        ({"schedule_kind": "weekdays", "schedule_weekdays": [6]},
         "Sunday is not a working day"),
        ({"schedule_kind": "weekdays", "schedule_weekdays": [7]}, "7 is not a weekday"),
        ({"schedule_kind": "month_days", "schedule_month_days": [0]},
         "0 is not a day of the month"),
        ({"schedule_kind": "month_days", "schedule_month_days": [32]},
         "32 is not a day of the month"),
        ({"schedule_kind": "month_days", "schedule_month_days": "1,15"},
         "Days of the month must be a list of numbers"),
    ],
)
def test_the_model_refuses_an_impossible_schedule(tenant_a, fields, message):
    for name, value in fields.items():
        setattr(tenant_a, name, value)
    with pytest.raises(ValidationError, match=message):
        tenant_a.full_clean()


def test_chosen_days_of_another_kind_are_kept_and_harmless(tenant_a):
    tenant_a.schedule_month_days = [1, 15]
    tenant_a.full_clean()  # every day: the days of the month wait for their kind
    tenant_a.save()
    assert Tenant.objects.get(pk=tenant_a.pk).schedule_kind == ScheduleKind.DAILY
