"""Working days for Bacs (England & Wales) and SEPA (TARGET2) across holidays and weekends."""

import datetime as dt

import pytest

from core.calendars import (
    SCHEMES,
    add_working_days,
    is_working_day,
    next_working_day,
    tenant_today,
)

D = dt.date


@pytest.mark.parametrize(
    ("scheme", "day", "expected"),
    [
        ("bacs", D(2026, 4, 3), D(2026, 4, 7)),  # Good Friday + Easter Monday
        ("sepa_core", D(2026, 4, 3), D(2026, 4, 7)),
        ("sepa_core", D(2026, 5, 1), D(2026, 5, 4)),  # Labour Day is a TARGET2 closing day
        ("bacs", D(2026, 5, 1), D(2026, 5, 1)),  # ... but not a UK bank holiday
        ("bacs", D(2026, 5, 4), D(2026, 5, 5)),  # UK Early May bank holiday
        ("sepa_core", D(2026, 5, 4), D(2026, 5, 4)),
        ("bacs", D(2026, 12, 25), D(2026, 12, 29)),  # Christmas, weekend, Boxing Day observed
        ("sepa_core", D(2026, 12, 25), D(2026, 12, 28)),  # TARGET2 has no substitute day
        ("bacs", D(2026, 8, 31), D(2026, 9, 1)),  # Summer bank holiday
        ("sepa_core", D(2026, 8, 31), D(2026, 8, 31)),
        ("bacs", D(2026, 1, 10), D(2026, 1, 12)),  # Saturday
        ("sepa_core", D(2026, 1, 11), D(2026, 1, 12)),  # Sunday
        ("sepa_core", D(2027, 1, 1), D(2027, 1, 4)),  # New Year (Friday) into the weekend
    ],
)
def test_next_working_day(scheme, day, expected):
    assert next_working_day(day, scheme) == expected
    assert is_working_day(expected, scheme)


def test_add_working_days_skips_holidays():
    # Thursday before Easter + 2 working days: Good Friday and Easter Monday are skipped.
    assert add_working_days(D(2026, 4, 2), 2, "bacs") == D(2026, 4, 8)
    assert add_working_days(D(2026, 4, 4), 0, "sepa_core") == D(2026, 4, 7)


def test_every_scheme_has_a_calendar():
    for scheme in SCHEMES:
        assert next_working_day(D(2026, 12, 25), scheme) > D(2026, 12, 25)
    with pytest.raises(ValueError):
        is_working_day(D(2026, 1, 5), "cheque")


def test_today_is_the_tenants_date(tenant_a):
    late_utc = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
    assert tenant_today(tenant_a, now=late_utc) == D(2026, 3, 2)  # Europe/Amsterdam
    tenant_a.time_zone = "America/New_York"
    assert tenant_today(tenant_a, now=late_utc) == D(2026, 3, 1)


def test_ach_follows_federal_reserve_holidays():
    import datetime as dt

    from core.calendars import is_working_day, next_working_day

    # Columbus Day and Veterans Day close the Fed (ACH) though the stock exchange trades.
    assert not is_working_day(dt.date(2026, 10, 12), "ach")
    assert not is_working_day(dt.date(2026, 11, 11), "ach")
    assert next_working_day(dt.date(2026, 10, 10), "ach") == dt.date(2026, 10, 13)
