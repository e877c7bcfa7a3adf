"""core/display.py: money, statuses and times as people read them, and its template filters."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from core import display
from core.display import (
    FAILURE_CAUSE_WORDS,
    PAYMENT_STATUS_WORDS,
    local_date_display,
    local_time_display,
    minor_display,
    money_display,
    totals_display,
    words,
)
from tenants.models import Tenant
from tests.reconciliation.collection.test_no_float import _floats, _money_modules

ROOT = Path(__file__).resolve().parents[2]


# --- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("12883.1"), "EUR", "EUR 12,883.10"),
        (Decimal("12883.10"), "GBP", "GBP 12,883.10"),
        (Decimal("1234567.89"), "EUR", "EUR 1,234,567.89"),
        (Decimal("0"), "EUR", "EUR 0.00"),
        (Decimal("-0.00"), "EUR", "EUR 0.00"),
        (Decimal("-12"), "EUR", "-EUR 12.00"),
        (Decimal("-1234.5"), "USD", "-USD 1,234.50"),
        (Decimal("0.005"), "EUR", "EUR 0.01"),  # half up
        (Decimal("0.004"), "EUR", "EUR 0.00"),
        (12, "EUR", "EUR 12.00"),
        ("1234.5", "EUR", "EUR 1,234.50"),  # the totals JSON holds Decimal strings
        (Decimal("1.5"), "CHF", "CHF 1.50"),  # not a GoCardless currency: two places
    ],
)
def test_money_display(amount, currency, shown):
    assert money_display(amount, currency) == shown


def test_money_takes_its_places_from_core_money(monkeypatch):
    monkeypatch.setitem(display.MINOR_UNIT_EXPONENT, "XYZ", 3)
    assert money_display(Decimal("1.5"), "XYZ") == "XYZ 1.500"
    assert minor_display(1500, "XYZ") == "XYZ 1.500"


def test_nothing_is_a_dash():
    assert money_display(None, "EUR") == display.NOTHING
    assert minor_display(None, "EUR") == display.NOTHING


@pytest.mark.parametrize("bad", [1.5, True, object()])
def test_money_refuses_what_is_not_decimal(bad):
    with pytest.raises(TypeError):
        money_display(bad, "EUR")


def test_money_refuses_what_is_not_an_amount():
    with pytest.raises(ValueError):
        money_display("twelve", "EUR")
    with pytest.raises(ValueError):
        money_display(Decimal("NaN"), "EUR")


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [(1234, "EUR", "EUR 12.34"), (-649, "EUR", "-EUR 6.49"), (0, "GBP", "GBP 0.00"),
     (1288310, "EUR", "EUR 12,883.10"), (5, "CHF", "CHF 0.05")],
)
def test_minor_display(minor, currency, shown):
    assert minor_display(minor, currency) == shown


def test_minor_goes_through_core_money(monkeypatch):
    calls = []
    real = display.from_minor_units

    def spy(minor, currency):
        calls.append((minor, currency))
        return real(minor, currency)

    monkeypatch.setattr(display, "from_minor_units", spy)
    assert minor_display(1234, "EUR") == "EUR 12.34"
    assert calls == [(1234, "EUR")]


@pytest.mark.parametrize("bad", [12.34, "1234", True, Decimal("1234")])
def test_minor_refuses_what_is_not_an_integer(bad):
    with pytest.raises(TypeError):
        minor_display(bad, "EUR")


def test_totals_display_one_per_currency_without_zeroes():
    assert totals_display({"GBP": "50.00", "EUR": Decimal("1234.5"), "USD": "0"}) == [
        "EUR 1,234.50",
        "GBP 50.00",
    ]
    assert totals_display(None) == []


# --- codes in words -------------------------------------------------------------------------------

BRIEF_STATUSES = (
    "pending_submission", "submitted", "confirmed", "paid_out", "failed", "charged_back",
    "cancelled", "customer_approval_denied", "late_failure_settled", "chargeback_cancelled",
    "resubmission_requested",
)
BRIEF_CAUSES = (
    "insufficient_funds", "refer_to_payer", "bank_account_closed", "mandate_cancelled",
    "invalid_bank_details", "authorisation_disputed", "refund_requested",
    "bank_account_transferred", "direct_debit_not_enabled", "payment_stopped", "other",
)


@pytest.mark.parametrize(
    ("table", "codes"),
    [(PAYMENT_STATUS_WORDS, BRIEF_STATUSES), (FAILURE_CAUSE_WORDS, BRIEF_CAUSES)],
)
def test_the_tables_say_every_common_code_in_words(table, codes):
    assert set(codes) <= set(table)
    for code, text in table.items():
        assert "_" not in text, code
        assert text[0].isupper(), code
        assert words(code, table) == text


def test_words_examples():
    assert words("insufficient_funds", FAILURE_CAUSE_WORDS) == (
        "Not enough money in the customer's account"
    )
    assert words("paid_out", PAYMENT_STATUS_WORDS) == "Collected and paid out"


def test_an_unknown_code_becomes_a_sentence_never_the_raw_code():
    assert words("some_new_cause", FAILURE_CAUSE_WORDS) == "Some new cause"
    assert words("bounced-twice", {}) == "Bounced twice"
    assert words("", FAILURE_CAUSE_WORDS) == ""
    assert words(None, FAILURE_CAUSE_WORDS) == ""


# --- times ----------------------------------------------------------------------------------------


def _tenant(zone: str) -> Tenant:
    return Tenant(name="T", slug="t", time_zone=zone)


@pytest.mark.parametrize(
    ("moment", "zone", "shown"),
    [
        (dt.datetime(2026, 3, 3, 5, 0, tzinfo=dt.UTC), "Europe/Amsterdam",
         "Tue 3 Mar 2026, 06:00 CET"),
        # the night Amsterdam moves to summer time
        (dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC), "Europe/Amsterdam",
         "Sun 29 Mar 2026, 01:30 CET"),
        (dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC), "Europe/Amsterdam",
         "Sun 29 Mar 2026, 03:30 CEST"),
        # late in the evening in London is already tomorrow in Amsterdam, not in New York
        (dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC), "Europe/Amsterdam",
         "Fri 1 Jan 2027, 00:30 CET"),
        (dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC), "America/New_York",
         "Thu 31 Dec 2026, 18:30 EST"),
    ],
)
def test_local_time_display(moment, zone, shown):
    assert local_time_display(moment, _tenant(zone)) == shown


def test_local_time_of_nothing_and_of_a_naive_moment(settings):
    assert local_time_display(None, _tenant("Europe/London")) == display.NOTHING
    settings.TIME_ZONE = "UTC"
    naive = dt.datetime(2026, 7, 1, 12, 0)
    assert local_time_display(naive, _tenant("Europe/London")) == "Wed 1 Jul 2026, 13:00 BST"
    assert local_date_display(dt.date(2026, 7, 1)) == "Wed 1 Jul 2026"


# --- no float on this money path ------------------------------------------------------------------


def test_the_no_float_guard_covers_core_display():
    assert "core/display.py" in _money_modules()
    tree = ast.parse((ROOT / "core/display.py").read_text())
    assert _floats(tree, "core/display.py") == []


def test_counts_are_said_with_their_noun_never_with_an_s_in_brackets():
    from core.display import counted

    assert counted(1, "booking") == "1 booking"
    assert counted(0, "booking") == "0 bookings"
    assert counted(1250, "payment") == "1,250 payments"
    assert counted(2, "entry", "entries") == "2 entries"
