"""Working days per Direct Debit scheme, and "today" in a tenant's time zone.

A charge date must be a working day of the scheme: GoCardless rolls a non-working date
forward, so computing the same roll here keeps what we show, store and book equal to what
GoCardless will do. Bacs follows the England & Wales bank holidays, SEPA the TARGET2
closing days (holidays' XECB calendar); other schemes their country's public holidays.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays
from django.utils import timezone

_SCHEME_CALENDARS = {
    "bacs": lambda years: holidays.UK(subdiv="ENG", years=years),
    "faster_payments": lambda years: holidays.UK(subdiv="ENG", years=years),
    "sepa_core": lambda years: holidays.financial_holidays("XECB", years=years),
    "sepa_cor1": lambda years: holidays.financial_holidays("XECB", years=years),
    "autogiro": lambda years: holidays.SE(years=years),
    "betalingsservice": lambda years: holidays.DK(years=years),
    "becs": lambda years: holidays.AU(years=years),
    "becs_nz": lambda years: holidays.NZ(years=years),
    "pad": lambda years: holidays.CA(years=years),
    # ACH settles on Federal Reserve business days: the US federal holidays.
    "ach": lambda years: holidays.US(years=years),
}

SCHEMES = tuple(_SCHEME_CALENDARS)


@lru_cache(maxsize=64)
def _closed_days(scheme: str, year: int) -> frozenset[dt.date]:
    try:
        calendar = _SCHEME_CALENDARS[scheme]
    except KeyError:
        raise ValueError(f"unknown scheme {scheme!r}") from None
    return frozenset(calendar([year]).keys())


@lru_cache(maxsize=64)
def _closed_day_names(scheme: str, year: int) -> dict[dt.date, str]:
    return dict(_SCHEME_CALENDARS[scheme]([year]).items()) if scheme in _SCHEME_CALENDARS else {}


def holiday_name(day: dt.date, scheme: str) -> str:
    """The name of the holiday that closes ``scheme`` on ``day`` ("Easter Monday"), or ""
    (a working day, or a weekend day that is no holiday)."""
    _closed_days(scheme, day.year)  # an unknown scheme raises, as everywhere here
    return _closed_day_names(scheme, day.year).get(day, "")


def is_working_day(day: dt.date, scheme: str) -> bool:
    return day.weekday() < 5 and day not in _closed_days(scheme, day.year)


def next_working_day(day: dt.date, scheme: str) -> dt.date:
    """`day` itself when it is a working day, otherwise the next one."""
    while not is_working_day(day, scheme):
        day += dt.timedelta(days=1)
    return day


def add_working_days(day: dt.date, count: int, scheme: str) -> dt.date:
    """The `count`-th working day after `day` (count ≥ 0; 0 → next_working_day(day))."""
    day = next_working_day(day, scheme)
    for _ in range(count):
        day = next_working_day(day + dt.timedelta(days=1), scheme)
    return day


def tenant_today(tenant, *, now: dt.datetime | None = None) -> dt.date:
    """The calendar date where the tenant is (a collection run at 00:30 in Amsterdam is
    already tomorrow's run, though UTC still says yesterday)."""
    return (now or timezone.now()).astimezone(tenant.zone).date()
