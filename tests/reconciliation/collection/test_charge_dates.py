"""Charge dates across bank holidays and weekends, for Bacs and SEPA, in the tenant's zone.

Expected dates are worked out by hand from the calendars (not recomputed with the code under
test). 2026: Good Friday 3 April, Easter Monday 6 April, UK early May bank holiday 4 May,
1 May a TARGET2 closing day (not a UK holiday), Christmas Friday 25 December with Boxing
Day on Saturday (UK substitute Monday 28 December; TARGET2 has no substitute days).
2027: New Year Friday 1 January, Christmas on a Saturday (UK substitutes 27 and 28 December).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import calendars
from reconciliation.collection.charge_dates import charge_date_for, earliest_charge_date
from reconciliation.collection.models import Decision, SkipReason
from reconciliation.collection.runs import run_preview
from reconciliation.collection.schemes import SCHEME_RULES
from simulators.gocardless import clock as sim_clock
from simulators.gocardless import lifecycle as sim_lifecycle
from tests.reconciliation.collection.selection_fixtures import customer, invoice, policy

D = dt.date


@pytest.mark.parametrize(
    ("scheme", "today", "expected", "why"),
    [
        ("bacs", D(2026, 3, 2), D(2026, 3, 5), "Monday + 3 working days"),
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 5), "Monday + 3 working days"),
        ("bacs", D(2026, 3, 5), D(2026, 3, 10), "Thursday: over the weekend"),
        ("sepa_core", D(2026, 3, 6), D(2026, 3, 11), "Friday: over the weekend"),
        ("bacs", D(2026, 4, 1), D(2026, 4, 8), "Good Friday and Easter Monday skipped"),
        ("sepa_core", D(2026, 4, 1), D(2026, 4, 8), "Good Friday and Easter Monday skipped"),
        ("bacs", D(2026, 4, 30), D(2026, 5, 6), "early May bank holiday skipped"),
        ("sepa_core", D(2026, 4, 28), D(2026, 5, 4), "1 May skipped"),
        ("bacs", D(2026, 4, 28), D(2026, 5, 1), "1 May is a Bacs working day"),
        ("bacs", D(2026, 12, 22), D(2026, 12, 29), "Christmas, weekend, Boxing Day substitute"),
        ("sepa_core", D(2026, 12, 22), D(2026, 12, 28), "TARGET2: no substitute day"),
        ("sepa_core", D(2026, 12, 30), D(2027, 1, 5), "New Year, into the next year"),
        ("bacs", D(2026, 12, 30), D(2027, 1, 5), "New Year, into the next year"),
        ("bacs", D(2027, 12, 22), D(2027, 12, 29), "2027: 27 and 28 December substitutes"),
        ("sepa_core", D(2027, 12, 22), D(2027, 12, 27), "2027: 27 December open"),
        ("bacs", D(2027, 3, 24), D(2027, 3, 31), "2027 Easter"),
        ("sepa_core", D(2027, 3, 24), D(2027, 3, 31), "2027 Easter"),
    ],
)
def test_earliest_charge_date(scheme, today, expected, why):
    assert earliest_charge_date(scheme=scheme, today=today, next_possible=None) == expected, why


@pytest.mark.parametrize(
    ("scheme", "today", "expected"),
    [
        # Created on a closed day: counted from the next working day (one day later than
        # the simulator's count: conservative, never too early).
        ("sepa_core", D(2026, 3, 7), D(2026, 3, 12)),  # Saturday
        ("bacs", D(2026, 4, 3), D(2026, 4, 10)),  # Good Friday
        ("sepa_core", D(2026, 5, 1), D(2026, 5, 7)),  # Labour Day
    ],
)
def test_earliest_charge_date_from_a_closed_day(scheme, today, expected):
    ours = earliest_charge_date(scheme=scheme, today=today, next_possible=None)
    assert ours == expected
    assert ours >= sim_clock.add_working_days(today, 3, scheme)


@pytest.mark.parametrize("status", ["pending_submission", "submitted"])
@pytest.mark.parametrize(
    ("scheme", "today", "expected"),
    [
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 6)),
        ("bacs", D(2026, 4, 1), D(2026, 4, 9)),  # Easter in between
        ("bacs", D(2026, 12, 22), D(2026, 12, 30)),  # Christmas in between
        ("sepa_core", D(2026, 12, 22), D(2026, 12, 29)),
    ],
)
def test_a_mandate_not_yet_active_needs_one_more_working_day(scheme, today, expected, status):
    got = earliest_charge_date(
        scheme=scheme, today=today, next_possible=None, mandate_status=status
    )
    assert got == expected
    # What GoCardless (the simulator) asks for a mandate in that state.
    mandate = {"scheme": scheme, "status": status}
    assert got >= sim_lifecycle.next_possible_charge_date(mandate, today)


@pytest.mark.parametrize(
    ("scheme", "today", "next_possible", "expected"),
    [
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 10), D(2026, 3, 10)),  # later than the lead
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 3), D(2026, 3, 5)),  # stale: the lead wins
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 5), D(2026, 3, 5)),
        ("bacs", D(2026, 3, 30), D(2026, 4, 3), D(2026, 4, 7)),  # on Good Friday: rolled
        ("sepa_core", D(2026, 3, 30), D(2026, 4, 6), D(2026, 4, 7)),  # Easter Monday: rolled
        ("bacs", D(2026, 12, 14), D(2026, 12, 26), D(2026, 12, 29)),  # Saturday + substitute
        ("sepa_core", D(2026, 12, 14), D(2026, 12, 26), D(2026, 12, 28)),
        ("bacs", D(2026, 4, 20), D(2026, 5, 1), D(2026, 5, 1)),
        ("sepa_core", D(2026, 4, 20), D(2026, 5, 1), D(2026, 5, 4)),
    ],
)
def test_never_before_the_mandates_next_possible_charge_date(
    scheme, today, next_possible, expected
):
    assert earliest_charge_date(scheme=scheme, today=today, next_possible=next_possible) == (
        expected
    )
    for policy_name in ("earliest", "due_date"):
        got = charge_date_for(
            scheme=scheme,
            today=today,
            due_date=today,
            next_possible=next_possible,
            policy=policy_name,
        )
        assert got == expected


@pytest.mark.parametrize(
    ("scheme", "today", "due", "expected"),
    [
        ("sepa_core", D(2026, 4, 20), D(2026, 5, 1), D(2026, 5, 4)),  # 1 May: TARGET2 closed
        ("bacs", D(2026, 4, 20), D(2026, 5, 1), D(2026, 5, 1)),  # ... Bacs open
        ("bacs", D(2026, 4, 20), D(2026, 5, 4), D(2026, 5, 5)),  # early May bank holiday
        ("sepa_core", D(2026, 4, 20), D(2026, 5, 4), D(2026, 5, 4)),
        ("bacs", D(2026, 12, 1), D(2026, 12, 25), D(2026, 12, 29)),
        ("sepa_core", D(2026, 12, 1), D(2026, 12, 26), D(2026, 12, 28)),
        ("bacs", D(2027, 12, 1), D(2027, 12, 25), D(2027, 12, 29)),
        ("sepa_core", D(2027, 12, 1), D(2027, 12, 25), D(2027, 12, 27)),
        ("sepa_core", D(2026, 12, 1), D(2027, 1, 1), D(2027, 1, 4)),
        ("bacs", D(2026, 3, 20), D(2026, 4, 6), D(2026, 4, 7)),  # Easter Monday
        ("sepa_core", D(2026, 3, 20), D(2026, 4, 3), D(2026, 4, 7)),  # Good Friday
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 14), D(2026, 3, 16)),  # Saturday
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 11), D(2026, 3, 11)),  # a working day
        ("sepa_core", D(2026, 3, 2), D(2026, 3, 3), D(2026, 3, 5)),  # too soon: earliest
        ("sepa_core", D(2026, 3, 2), D(2026, 2, 1), D(2026, 3, 5)),  # overdue: earliest
        ("bacs", D(2026, 3, 2), None, D(2026, 3, 5)),  # no due date: earliest
    ],
)
def test_due_date_policy(scheme, today, due, expected):
    got = charge_date_for(
        scheme=scheme, today=today, due_date=due, next_possible=None, policy="due_date"
    )
    assert got == expected
    earliest = charge_date_for(
        scheme=scheme, today=today, due_date=due, next_possible=None, policy="earliest"
    )
    assert earliest == earliest_charge_date(scheme=scheme, today=today, next_possible=None)


def test_due_date_policy_respects_a_later_next_possible_date():
    got = charge_date_for(
        scheme="sepa_core",
        today=D(2026, 3, 2),
        due_date=D(2026, 3, 9),
        next_possible=D(2026, 3, 12),
        policy="due_date",
    )
    assert got == D(2026, 3, 12)


# --- through the preview: policy, scheme and time zone --------------------------------------


def _preview_at(tenant, monkeypatch, now: dt.datetime):
    monkeypatch.setattr(
        "reconciliation.collection.previews.tenant_today",
        lambda t, now_=None: calendars.tenant_today(t, now=now),
    )
    run = run_preview(tenant=tenant, trigger="user")
    return run, {i.receivable_exact_id: i for i in run.items.all()}


@pytest.mark.django_db
def test_preview_charge_dates_per_scheme_and_policy(tenant_a, monkeypatch):
    tenant = policy(tenant_a, charge_date_policy="due_date", lead_days=20)
    gbp_account, _, _ = customer(tenant, scheme="bacs")
    eur_account, _, _ = customer(tenant, scheme="sepa_core")
    late_account, _, _ = customer(tenant, next_possible=D(2026, 4, 28))
    gbp = invoice(tenant, gbp_account, "10.00", currency="GBP", due=D(2026, 5, 4))
    eur = invoice(tenant, eur_account, "10.00", due=D(2026, 5, 1))
    late = invoice(tenant, late_account, "10.00", due=D(2026, 4, 24))
    noon_utc = dt.datetime(2026, 4, 20, 10, 0, tzinfo=dt.UTC)

    run, items = _preview_at(tenant, monkeypatch, noon_utc)

    assert run.as_of == D(2026, 4, 20)
    assert items[gbp.exact_id].charge_date == D(2026, 5, 5)
    assert items[eur.exact_id].charge_date == D(2026, 5, 4)
    assert items[late.exact_id].charge_date == D(2026, 4, 28)

    policy(tenant, charge_date_policy="earliest", lead_days=20)
    _, items = _preview_at(tenant, monkeypatch, noon_utc)
    assert items[gbp.exact_id].charge_date == D(2026, 4, 23)
    assert items[eur.exact_id].charge_date == D(2026, 4, 23)
    assert items[late.exact_id].charge_date == D(2026, 4, 28)


@pytest.mark.django_db
def test_today_is_the_tenants_local_date(tenant_a, monkeypatch):
    # 23:30 UTC on Monday 2 March is already Tuesday 3 March in Amsterdam.
    tenant = policy(tenant_a, lead_days=5, charge_date_policy="earliest")
    account, _, _ = customer(tenant)
    edge = invoice(tenant, account, "10.00", due=D(2026, 3, 8))
    late_utc = dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC)

    run, items = _preview_at(tenant, monkeypatch, late_utc)
    assert run.as_of == D(2026, 3, 3)
    assert items[edge.exact_id].decision == Decision.COLLECT  # window ends 8 March
    assert items[edge.exact_id].charge_date == D(2026, 3, 6)  # Tuesday + 3

    tenant.time_zone = "America/New_York"  # 18:30 on Monday there
    tenant.save()
    run, items = _preview_at(tenant, monkeypatch, late_utc)
    assert run.as_of == D(2026, 3, 2)
    assert items[edge.exact_id].reason == SkipReason.NOT_DUE  # window ends 7 March


@pytest.mark.django_db
def test_new_year_in_sydney_uses_the_new_year(tenant_a, monkeypatch):
    tenant = policy(tenant_a, currencies=["AUD"], minimum_amount=Decimal("0"))
    tenant.time_zone = "Australia/Sydney"
    tenant.save()
    account, _, _ = customer(tenant, scheme="becs")
    inv = invoice(tenant, account, "10.00", currency="AUD", due=D(2027, 1, 4))
    # 13:30 UTC on 31 December 2026 is 00:30 on 1 January 2027 in Sydney.
    run, items = _preview_at(tenant, monkeypatch, dt.datetime(2026, 12, 31, 13, 30, tzinfo=dt.UTC))
    assert run.as_of == D(2027, 1, 1)
    # 1 January closed; Monday 4 January + 1 BECS working day.
    assert items[inv.exact_id].charge_date == D(2027, 1, 5)


# --- properties -----------------------------------------------------------------------------

days = st.dates(min_value=D(2026, 1, 1), max_value=D(2028, 12, 31))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scheme=st.sampled_from(["bacs", "sepa_core"]),
    today=days,
    next_possible=st.one_of(st.none(), days),
    due=st.one_of(st.none(), days),
    policy_name=st.sampled_from(["earliest", "due_date"]),
    status=st.sampled_from(["active", "pending_submission", "submitted"]),
)
def test_charge_date_properties(scheme, today, next_possible, due, policy_name, status):
    got = charge_date_for(
        scheme=scheme,
        today=today,
        due_date=due,
        next_possible=next_possible,
        policy=policy_name,
        mandate_status=status,
    )
    lead = SCHEME_RULES[scheme].lead_working_days + (0 if status == "active" else 1)
    sim_earliest = sim_lifecycle.next_possible_charge_date(
        {"scheme": scheme, "status": status}, today
    )
    assert got >= sim_earliest
    # A working day of the scheme (the simulator's calendar agrees: GoCardless would not roll).
    assert calendars.is_working_day(got, scheme)
    assert sim_clock.roll_forward(got, scheme) == got
    # Never too early: the scheme's lead (as the simulator counts it) and the mandate's date.
    assert got >= sim_clock.add_working_days(today, lead, scheme)
    assert next_possible is None or got >= next_possible
    earliest = earliest_charge_date(
        scheme=scheme, today=today, next_possible=next_possible, mandate_status=status
    )
    if policy_name == "due_date" and due is not None and due > earliest:
        assert got == sim_clock.roll_forward(due, scheme)  # the due date, or the next open day
        assert got - due < dt.timedelta(days=6)
    else:
        assert got == earliest
        # ... and the earliest is not needlessly late: the day before it is too early.
        floor = max(sim_clock.add_working_days(today, lead, scheme), next_possible or today)
        assert got == sim_clock.roll_forward(floor, scheme) or not calendars.is_working_day(
            today, scheme
        )


@settings(max_examples=200, deadline=None)
@given(day=days, scheme=st.sampled_from(["bacs", "sepa_core"]))
def test_our_calendar_matches_the_simulators(day, scheme):
    assert calendars.is_working_day(day, scheme) == sim_clock.is_working_day(day, scheme)
