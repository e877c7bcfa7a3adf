"""The company page's fields for the collection schedule: weekdays ticked by name, days of
the month typed as people write them ("1, 15"), each mistake said in words."""

from __future__ import annotations

from django import forms

from tenants.models import (
    SCHEDULE_WEEKDAYS,
    WEEKDAY_NAMES,
    ScheduleKind,
    validate_schedule_month_days,
)


class ScheduleKindField(forms.TypedChoiceField):
    """Not given (a form or a script from before schedules had kinds): every day, as then."""

    def __init__(self, **kwargs):
        kwargs.update(required=False, empty_value=ScheduleKind.DAILY)
        super().__init__(**kwargs)


class WeekdaysField(forms.TypedMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        for key in ("encoder", "decoder", "max_length"):
            kwargs.pop(key, None)
        kwargs.update(
            choices=[(day, WEEKDAY_NAMES[day]) for day in SCHEDULE_WEEKDAYS],
            coerce=int,
            required=False,
        )
        super().__init__(**kwargs)

    def clean(self, value):
        return sorted(set(super().clean(value)))


class MonthDaysField(forms.CharField):
    """``"1, 15"`` ↔ ``[1, 15]`` (sorted, each day once)."""

    def __init__(self, **kwargs):
        for key in ("encoder", "decoder"):
            kwargs.pop(key, None)
        kwargs["required"] = False
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(day) for day in value)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        days = []
        for part in text.replace(";", ",").replace(" ", ",").split(","):
            if not part:
                continue
            if not part.isdigit():
                raise forms.ValidationError(
                    f"{part!r} is not a day of the month: write numbers from 1 to 31, "
                    "separated by commas, such as 1, 15."
                )
            days.append(int(part))
        result = sorted(set(days))
        validate_schedule_month_days(result)
        return result
