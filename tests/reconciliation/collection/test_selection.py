"""Preview: what a run would collect, for how much, and — for every other open invoice — why not.

Every test builds its world (policy, customers, invoices, earlier attempts), makes a preview
with ``run_preview`` and reads the stored ``CollectionItem`` lines: one per open invoice, with
the decision and reason finance staff see. A preview must never reach GoCardless: the client
class refuses to be constructed in this module (autouse fixture), and one test shows the
simulator's call counts stay at zero with a live connection configured.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.calendars import add_working_days
from exact.models import ExactReceivable
from gocardless.models import InstalmentSchedule
from reconciliation.bookings.models import (
    BookingState,
    PlanMatchedBy,
    PlanMatchState,
    PlanPaymentMatch,
)
from reconciliation.collection.models import (
    BLOCKING_STATES,
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
    SkipReason,
)
from reconciliation.collection.runs import run_preview
from reconciliation.collection.schemes import SCHEME_RULES
from reconciliation.collection.selection import selection_evaluate
from reconciliation.collection.submission import attempt_key, idempotency_key_for
from reconciliation.customers.models import CustomerLink, LinkState
from tests.gocardless.factories import (
    InstalmentScheduleFactory,
    MandateFactory,
    PaymentFactory,
    SubscriptionFactory,
)
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.selection_fixtures import (
    TODAY,
    customer,
    freeze_today,
    gc_calls,
    gocardless_customer,
    invoice,
    policy,
)

SEPA_EARLIEST = add_working_days(TODAY, 3, "sepa_core")  # Thu 5 March 2026


@pytest.fixture(autouse=True)
def no_gocardless(monkeypatch):
    """Constructing a GoCardless client during a preview is a test failure."""

    def refuse(*args, **kwargs):
        raise AssertionError("a preview must not construct a GoCardless client")

    monkeypatch.setattr("gocardless.client.GoCardlessClient.__init__", refuse)
    monkeypatch.setattr("reconciliation.customers.config.gocardless_client_for", refuse)


@pytest.fixture
def tenant(tenant_a, monkeypatch):
    freeze_today(monkeypatch)
    return policy(tenant_a)


def preview(tenant, **kwargs) -> tuple[CollectionRun, dict]:
    run = run_preview(tenant=tenant, trigger="user", **kwargs)
    items = {item.receivable_exact_id: item for item in run.items.all()}
    assert len(items) == run.evaluated
    return run, items


def line(items: dict, receivable) -> CollectionItem:
    return items[receivable.exact_id]


def assert_skip(items, receivable, reason, detail_contains: str = ""):
    item = line(items, receivable)
    assert (item.decision, item.reason) == (Decision.SKIP, reason), item.detail
    assert detail_contains in item.detail
    return item


def assert_collect(items, receivable, amount: str, charge_date=SEPA_EARLIEST, parts: int = 1):
    item = line(items, receivable)
    assert (item.decision, item.reason) == (Decision.COLLECT, ""), (item.reason, item.detail)
    assert item.amount == Decimal(amount)
    assert item.charge_date == charge_date
    assert item.parts == parts
    return item


def attempt(tenant, receivable, state, *, number=1, amount=None, part=0, parts=1, **fields):
    key = attempt_key(receivable_exact_id=receivable.exact_id, attempt_number=number, part=part)
    return CollectionAttempt.objects.create(
        tenant=tenant,
        receivable_exact_id=receivable.exact_id,
        invoice_number=receivable.invoice_number,
        account_exact_id=receivable.account_exact_id,
        attempt_number=number,
        part=part,
        parts=parts,
        key=key,
        idempotency_key=idempotency_key_for(tenant=tenant, key=key),
        amount=receivable.outstanding if amount is None else Decimal(amount),
        currency=receivable.currency,
        charge_date=TODAY,
        mandate_gocardless_id="MD0000000001",
        state=state,
        **fields,
    )


# --- the happy path ------------------------------------------------------------------------


def test_happy_path_collects_the_outstanding_amount(tenant):
    account, _, mandate = customer(tenant)
    inv = invoice(tenant, account, "121.00", amount="121.00")

    run, items = preview(tenant)

    item = assert_collect(items, inv, "121.00")
    assert item.mandate_gocardless_id == mandate.gocardless_id
    assert item.scheme == "sepa_core"
    assert item.outstanding == Decimal("121.00")
    assert item.invoice_number == inv.invoice_number
    assert (run.kind, run.state, run.as_of) == (RunKind.PREVIEW, RunState.AWAITING_APPROVAL, TODAY)
    assert (run.evaluated, run.to_collect, run.skipped) == (1, 1, 0)
    assert run.totals == {"EUR": "121.00"}
    assert not CollectionAttempt.objects.exists()


def test_partial_payment_collects_what_is_left(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "80.25", amount="200.00")
    _, items = preview(tenant)
    assert_collect(items, inv, "80.25")


def test_preview_in_auto_mode_is_not_awaiting_approval(tenant):
    policy(tenant, collection_mode="auto")
    account, _, _ = customer(tenant)
    invoice(tenant, account, "10.00")
    run, _ = preview(tenant)
    assert run.state == RunState.COMPLETED


def test_paid_invoices_credit_notes_and_other_tenants_are_not_lines(tenant, tenant_b):
    account, _, _ = customer(tenant)
    open_one = invoice(tenant, account, "50.00")
    paid = invoice(tenant, account, "0.00", amount="70.00")
    paid.is_fully_paid = True
    paid.save()
    invoice(tenant, account, "-5.00", credit_note=True)
    policy(tenant_b)
    other, _, _ = customer(tenant_b)
    invoice(tenant_b, other, "99.00")

    _, items = preview(tenant)

    assert set(items) == {open_one.exact_id}
    assert_collect(items, open_one, "45.00")


# --- customer link --------------------------------------------------------------------------


def test_no_customer_link(tenant):
    account, _, _ = customer(tenant, linked=False)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.NO_CUSTOMER_LINK)


def test_link_not_confirmed(tenant):
    account, _, _ = customer(tenant, link_state=LinkState.AMBIGUOUS)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.LINK_NOT_CONFIRMED)


@pytest.mark.parametrize("state", [LinkState.UNMATCHED, LinkState.UNLINKED])
def test_a_link_without_a_gocardless_customer_is_no_customer_link(tenant, state):
    account, _, _ = customer(tenant, link_state=state)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.NO_CUSTOMER_LINK)


def test_collection_stopped(tenant):
    account, _, _ = customer(tenant, stop_reason="Customer disputes every invoice")
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.COLLECTION_STOPPED, "disputes every invoice")


def test_account_blocked(tenant):
    account, _, _ = customer(tenant, blocked=True)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.ACCOUNT_BLOCKED)


def test_account_deleted_in_exact(tenant):
    account, link, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    CustomerLink.objects.filter(pk=link.pk).update(exact_account=None)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.ACCOUNT_BLOCKED)


# --- mandate --------------------------------------------------------------------------------


def test_no_mandate(tenant):
    account, _, _ = customer(tenant, mandate=False)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.NO_MANDATE)


@pytest.mark.parametrize("status", ["pending_customer_approval", ""])
def test_mandate_pending(tenant, status):
    account, _, _ = customer(tenant, status=status)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.MANDATE_PENDING)


@pytest.mark.parametrize("status", ["cancelled", "failed", "expired", "blocked", "consumed"])
def test_mandate_cancelled_failed_or_expired(tenant, status):
    account, _, _ = customer(tenant, status=status)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.MANDATE_CANCELLED, status)


@pytest.mark.parametrize("status", ["pending_submission", "submitted", "active"])
def test_usable_mandate_statuses_collect(tenant, status):
    account, _, _ = customer(tenant, status=status)
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    # A mandate that is not active yet needs one more working day.
    charge_date = SEPA_EARLIEST if status == "active" else dt.date(2026, 3, 6)
    assert_collect(items, inv, "10.00", charge_date=charge_date)


# --- currency -------------------------------------------------------------------------------


def test_currency_not_in_the_policy(tenant):
    policy(tenant, currencies=["EUR"])
    account, _, _ = customer(tenant, scheme="bacs")
    inv = invoice(tenant, account, "10.00", currency="GBP")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.CURRENCY_NOT_COLLECTABLE, "not in the policy")


def test_currency_does_not_match_the_mandate_scheme(tenant):
    account, _, _ = customer(tenant, scheme="sepa_core")
    gbp = invoice(tenant, account, "10.00", currency="GBP")
    eur = invoice(tenant, account, "20.00", currency="EUR")
    _, items = preview(tenant)
    assert_skip(items, gbp, SkipReason.CURRENCY_NOT_COLLECTABLE, "sepa_core mandate")
    assert_collect(items, eur, "20.00")


def test_unknown_scheme_is_not_collectable(tenant):
    account, _, _ = customer(tenant, scheme="")
    inv = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.CURRENCY_NOT_COLLECTABLE)


# --- due date, minimum, maximum -------------------------------------------------------------


def test_not_due_within_the_lead_window(tenant):
    account, _, _ = customer(tenant)
    edge = invoice(tenant, account, "10.00", due=TODAY + dt.timedelta(days=5))
    later = invoice(tenant, account, "11.00", due=TODAY + dt.timedelta(days=6))
    overdue = invoice(tenant, account, "12.00", due=TODAY - dt.timedelta(days=40))
    _, items = preview(tenant)
    assert_collect(items, edge, "10.00")
    assert_skip(items, later, SkipReason.NOT_DUE, "2026-03-08")
    assert_collect(items, overdue, "12.00")


def test_below_the_policy_minimum(tenant):
    policy(tenant, minimum_amount=Decimal("10.00"))
    account, _, _ = customer(tenant)
    below = invoice(tenant, account, "9.99")
    at = invoice(tenant, account, "10.00")
    _, items = preview(tenant)
    assert_skip(items, below, SkipReason.BELOW_MINIMUM, "9.99 < 10.00")
    assert_collect(items, at, "10.00")


@pytest.mark.parametrize(
    ("scheme", "currency", "below", "at"),
    [
        ("sepa_core", "EUR", "0.99", "1.00"),
        ("bacs", "GBP", "0.99", "1.00"),
        ("autogiro", "SEK", "9.99", "10.00"),
    ],
)
def test_below_the_scheme_minimum(tenant, scheme, currency, below, at):
    policy(tenant, minimum_amount=Decimal("0"), currencies=[currency])
    account, _, _ = customer(tenant, scheme=scheme)
    low = invoice(tenant, account, below, currency=currency)
    _, items = preview(tenant)
    assert_skip(items, low, SkipReason.BELOW_MINIMUM, "scheme minimum")
    # On its own (another customer), the scheme minimum itself is collected.
    other, _, _ = customer(tenant, scheme=scheme)
    ok = invoice(tenant, other, at, currency=currency)
    _, items = preview(tenant)
    assert line(items, ok).decision == Decision.COLLECT


def test_over_the_scheme_maximum_skip_policy(tenant):
    account, _, _ = customer(tenant)
    over = invoice(tenant, account, "5000.01")
    other, _, _ = customer(tenant)
    at = invoice(tenant, other, "5000.00")
    _, items = preview(tenant)
    assert_skip(items, over, SkipReason.OVER_SCHEME_MAXIMUM, "5000.00")
    assert_collect(items, at, "5000.00")


@pytest.mark.parametrize(
    ("amount", "parts"),
    [("5000.01", 2), ("12345.67", 3), ("10000.00", 2), ("10000.01", 3), ("49999.99", 10)],
)
def test_over_the_scheme_maximum_split_policy(tenant, amount, parts):
    policy(tenant, over_maximum_policy="split")
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, amount)

    _, items = preview(tenant)
    assert_collect(items, inv, amount, parts=parts)

    (plan,) = selection_evaluate(tenant=tenant, today=TODAY)
    maximum = Decimal(SCHEME_RULES["sepa_core"].maximum) / 100
    assert len(plan.part_amounts) == parts
    assert sum(plan.part_amounts) == Decimal(amount)  # exactly, not approximately
    assert all(Decimal("1.00") <= p <= maximum for p in plan.part_amounts)
    assert all(p.as_tuple().exponent == -2 for p in plan.part_amounts)
    assert max(plan.part_amounts) - min(plan.part_amounts) <= Decimal("0.01")


# --- earlier attempts -----------------------------------------------------------------------


@pytest.mark.parametrize("state", [AttemptState.PENDING, AttemptState.SUBMITTED])
def test_already_in_flight(tenant, state):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, state)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.ALREADY_IN_FLIGHT, "attempt 1")


@pytest.mark.parametrize("state", [AttemptState.CONFIRMED, AttemptState.PAID_OUT])
def test_collected_but_not_yet_booked_is_never_charged_again(tenant, state):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, state)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.ALREADY_IN_FLIGHT, "collected")


def test_one_instalment_in_flight_blocks_the_invoice(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "9000.00")
    attempt(tenant, inv, AttemptState.CONFIRMED, amount="4500.00", part=1, parts=2)
    attempt(tenant, inv, AttemptState.SUBMITTED, amount="4500.00", part=2, parts=2)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.ALREADY_IN_FLIGHT)


def test_retry_not_due_yet_and_due_retry(tenant):
    account, _, _ = customer(tenant)
    waiting = invoice(tenant, account, "10.00")
    attempt(tenant, waiting, AttemptState.RETRY_SCHEDULED, next_retry_on=TODAY + dt.timedelta(1))
    other, _, _ = customer(tenant)
    due = invoice(tenant, other, "20.00")
    attempt(tenant, due, AttemptState.RETRY_SCHEDULED, next_retry_on=TODAY)

    _, items = preview(tenant)

    assert_skip(items, waiting, SkipReason.RETRY_NOT_DUE, "attempt 2 on 2026-03-03")
    assert_collect(items, due, "20.00")
    plans = {p.receivable_exact_id: p for p in selection_evaluate(tenant=tenant, today=TODAY)}
    assert plans[due.exact_id].attempt_number == 2
    assert plans[due.exact_id].retry_of


def test_needs_attention(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, AttemptState.NEEDS_ATTENTION, failure_cause="insufficient_funds")
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.NEEDS_ATTENTION)


@pytest.mark.parametrize("cause", ["charged_back", "authorisation_disputed", "refund_requested"])
def test_disputed(tenant, cause):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, AttemptState.NEEDS_ATTENTION, failure_cause=cause)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.DISPUTED)


@pytest.mark.parametrize("state", [AttemptState.CANCELLED, AttemptState.RESOLVED])
def test_handled_by_person(tenant, state):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, state)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.HANDLED_BY_PERSON)


@pytest.mark.parametrize("state", [AttemptState.SUPERSEDED, AttemptState.RETRIED])
def test_superseded_or_retried_attempt_gets_a_new_attempt_number(tenant, state):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, state)
    _, items = preview(tenant)
    assert_collect(items, inv, "10.00")
    (plan,) = selection_evaluate(tenant=tenant, today=TODAY)
    assert plan.attempt_number == 2


def test_only_the_latest_attempt_number_counts(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "10.00")
    attempt(tenant, inv, AttemptState.NEEDS_ATTENTION, number=1)
    attempt(tenant, inv, AttemptState.SUBMITTED, number=2)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.ALREADY_IN_FLIGHT, "attempt 2")


def test_retry_of_a_failed_instalment_collects_only_what_is_left_on_that_invoice(tenant):
    # Half of a split invoice was collected (not yet booked in Exact), the other half failed
    # and is due for a retry. The customer's other invoice is not due: the retry must not
    # reach into it (it did: 5,500.00 in two instalments).
    policy(tenant, over_maximum_policy="split")
    account, _, _ = customer(tenant)
    big = invoice(tenant, account, "9000.00")
    later = invoice(tenant, account, "1000.00", due=TODAY + dt.timedelta(days=30))
    attempt(tenant, big, AttemptState.CONFIRMED, amount="4500.00", part=1, parts=2)
    attempt(
        tenant,
        big,
        AttemptState.RETRY_SCHEDULED,
        amount="4500.00",
        part=2,
        parts=2,
        next_retry_on=TODAY,
    )
    _, items = preview(tenant)
    assert_collect(items, big, "4500.00")
    assert_skip(items, later, SkipReason.NOT_DUE)


def test_retry_after_the_collected_instalment_was_booked_is_left_to_a_person(tenant):
    # Known limit (safe side): selection cannot tell whether the collected instalment's
    # receipt is booked yet, so it counts it as still on its way; once Exact shows the
    # invoice reduced by it, nothing is left to retry automatically. Never a double charge.
    account, _, _ = customer(tenant)
    big = invoice(tenant, account, "4500.00", amount="9000.00")  # part 1's receipt booked
    attempt(tenant, big, AttemptState.CONFIRMED, amount="4500.00", part=1, parts=2)
    attempt(
        tenant,
        big,
        AttemptState.RETRY_SCHEDULED,
        amount="4500.00",
        part=2,
        parts=2,
        next_retry_on=TODAY,
    )
    _, items = preview(tenant)
    assert_skip(items, big, SkipReason.ALREADY_IN_FLIGHT, "earlier payments cover")


# --- credit notes and the net open balance --------------------------------------------------


def test_credited_when_credit_notes_cover_the_invoice(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "100.00")
    invoice(tenant, account, "-60.00", credit_note=True)
    invoice(tenant, account, "-40.00", credit_note=True)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.CREDITED)


def test_reduced_by_a_credit_note(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "100.00")
    invoice(tenant, account, "-30.10", credit_note=True)
    run, items = preview(tenant)
    item = assert_collect(items, inv, "69.90")
    assert "reduced by credit notes" in item.detail
    assert item.outstanding == Decimal("100.00")
    assert run.totals == {"EUR": "69.90"}


def test_credit_note_in_another_currency_or_of_another_customer_does_not_reduce(tenant):
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "100.00")
    invoice(tenant, account, "-30.00", currency="GBP", credit_note=True)
    other, _, _ = customer(tenant)
    invoice(tenant, other, "-50.00", credit_note=True)
    _, items = preview(tenant)
    assert_collect(items, inv, "100.00")


def test_net_balance_is_collected_oldest_invoice_first(tenant):
    account, _, _ = customer(tenant)
    newer = invoice(tenant, account, "100.00", due=TODAY - dt.timedelta(days=1))
    older = invoice(tenant, account, "100.00", due=TODAY - dt.timedelta(days=10))
    invoice(tenant, account, "-150.00", credit_note=True)
    run, items = preview(tenant)
    assert_collect(items, older, "50.00")
    assert_skip(items, newer, SkipReason.CREDITED)
    assert run.totals == {"EUR": "50.00"}


def test_reduced_below_the_minimum_is_skipped(tenant):
    policy(tenant, minimum_amount=Decimal("25.00"))
    account, _, _ = customer(tenant)
    inv = invoice(tenant, account, "100.00")
    invoice(tenant, account, "-80.00", credit_note=True)
    _, items = preview(tenant)
    assert_skip(items, inv, SkipReason.BELOW_MINIMUM, "reduced by credit notes")


def test_money_on_its_way_reduces_what_is_left(tenant):
    # Invoice A is with GoCardless for its full 100; B (100) and a credit note (-100) remain:
    # the customer owes 100 in total, all of it already on its way, so B is not collected.
    account, _, _ = customer(tenant)
    a = invoice(tenant, account, "100.00", due=TODAY - dt.timedelta(days=3))
    b = invoice(tenant, account, "100.00")
    invoice(tenant, account, "-100.00", credit_note=True)
    attempt(tenant, a, AttemptState.SUBMITTED)
    _, items = preview(tenant)
    assert_skip(items, a, SkipReason.ALREADY_IN_FLIGHT)
    assert_skip(items, b, SkipReason.CREDITED)


def test_money_on_its_way_for_an_invoice_closed_since_still_counts(tenant):
    # X's payment is already submitted to the bank (too late to cancel) when X is credited
    # in full in Exact: X and its credit note are closed. The customer will still pay X's
    # 100 — that covers Y, which must not be charged on top.
    account, _, _ = customer(tenant)
    x = invoice(tenant, account, "100.00", due=TODAY - dt.timedelta(days=5))
    attempt(tenant, x, AttemptState.SUBMITTED)
    x.outstanding, x.is_fully_paid = Decimal("0"), True
    x.save()
    y = invoice(tenant, account, "100.00")
    _, items = preview(tenant)
    assert_skip(items, y, SkipReason.CREDITED)


def test_collected_and_booked_invoice_does_not_reduce_the_others(tenant):
    account, _, _ = customer(tenant)
    x = invoice(tenant, account, "100.00", due=TODAY - dt.timedelta(days=5))
    attempt(tenant, x, AttemptState.CONFIRMED)
    x.outstanding, x.is_fully_paid = Decimal("0"), True  # the receipt is booked
    x.save()
    y = invoice(tenant, account, "100.00")
    _, items = preview(tenant)
    assert_collect(items, y, "100.00")


def test_failed_attempts_are_not_money_on_its_way(tenant):
    account, _, _ = customer(tenant)
    a = invoice(tenant, account, "100.00", due=TODAY - dt.timedelta(days=3))
    b = invoice(tenant, account, "100.00")
    attempt(tenant, a, AttemptState.NEEDS_ATTENTION)
    _, items = preview(tenant)
    assert_skip(items, a, SkipReason.NEEDS_ATTENTION)
    assert_collect(items, b, "100.00")


# --- run limit and order --------------------------------------------------------------------


def test_run_limit_keeps_the_oldest_invoices(tenant):
    policy(tenant, max_payments_per_run=2)
    account, _, _ = customer(tenant)
    third = invoice(tenant, account, "30.00", due=TODAY)
    first = invoice(tenant, account, "10.00", due=TODAY - dt.timedelta(days=20))
    second = invoice(tenant, account, "20.00", due=TODAY - dt.timedelta(days=10))
    run, items = preview(tenant)
    assert_collect(items, first, "10.00")
    assert_collect(items, second, "20.00")
    assert_skip(items, third, SkipReason.RUN_LIMIT, "max 2 per run")
    assert (run.to_collect, run.skipped, run.totals) == (2, 1, {"EUR": "30.00"})


def test_instalments_count_against_the_run_limit(tenant):
    policy(tenant, max_payments_per_run=2, over_maximum_policy="split")
    big_customer, _, _ = customer(tenant)
    big = invoice(tenant, big_customer, "12000.00", due=TODAY - dt.timedelta(days=5))
    small_customer, _, _ = customer(tenant)
    small = invoice(tenant, small_customer, "10.00")
    _, items = preview(tenant)
    assert_skip(items, big, SkipReason.RUN_LIMIT)  # three instalments do not fit in two
    assert_collect(items, small, "10.00")


def test_items_and_plans_come_oldest_first(tenant):
    account, _, _ = customer(tenant)
    dues = [TODAY - dt.timedelta(days=d) for d in (3, 30, 0, 12)]
    made = [invoice(tenant, account, "10.00", due=due) for due in dues]
    plans = selection_evaluate(tenant=tenant, today=TODAY)
    assert [p.due_date for p in plans] == sorted(dues)
    assert {p.receivable_exact_id for p in plans} == {r.exact_id for r in made}


def test_only_receivables_restricts_the_preview(tenant):
    account, _, _ = customer(tenant)
    wanted = invoice(tenant, account, "10.00")
    invoice(tenant, account, "20.00")
    run, items = preview(tenant, only_receivables=[wanted.exact_id])
    assert set(items) == {wanted.exact_id}
    assert run.only_receivables == [str(wanted.exact_id)]


# --- GoCardless plans: never charge what a subscription or instalment schedule collects ------


def plan_customer(tenant):
    account, link, mandate = customer(tenant)
    gocardless_customer(tenant, link, mandate)
    return account, link, mandate


def plan_payment(tenant, mandate, minor, *, status="submitted", subscription="SB0000000001"):
    return PaymentFactory(
        tenant=tenant,
        mandate_id=mandate.gocardless_id,
        amount=minor,
        status=status,
        charge_date=TODAY,
        subscription_id=subscription,
    )


def matched(tenant, payment, receivable, *, receipt=None):
    return PlanPaymentMatch.objects.create(
        tenant=tenant,
        payment=payment,
        plan=payment.subscription_id,
        state=PlanMatchState.MATCHED,
        matched_by=PlanMatchedBy.AUTOMATIC,
        receivable_exact_id=receivable.exact_id,
        invoice_number=receivable.invoice_number,
        account_exact_id=receivable.account_exact_id,
        receipt=receipt,
    )


def test_an_invoice_a_plan_payment_is_matched_to_is_never_collected(tenant):
    account, _, mandate = plan_customer(tenant)
    paid = invoice(tenant, account, "25.00")
    other = invoice(tenant, account, "40.00")
    matched(tenant, plan_payment(tenant, mandate, 2500, status="confirmed"), paid)

    _, items = preview(tenant)

    assert_skip(items, paid, SkipReason.PLAN_COLLECTS, "of SB0000000001 (EUR 25.00) pays it")
    assert_collect(items, other, "40.00")


def test_a_failed_plan_payment_no_longer_blocks_its_invoice(tenant):
    account, _, mandate = plan_customer(tenant)
    paid = invoice(tenant, account, "25.00")
    matched(tenant, plan_payment(tenant, mandate, 2500, status="failed"), paid)

    _, items = preview(tenant)

    assert_collect(items, paid, "25.00")


def test_a_part_paid_invoice_is_collected_for_the_rest_once_exact_shows_the_plan_payment(tenant):
    account, _, mandate = plan_customer(tenant)
    now = timezone.now()
    r = invoice(tenant, account, "60.00", amount="100.00")
    receipt = BookingFactory(
        tenant=tenant, state=BookingState.CONFIRMED, confirmed_at=now - dt.timedelta(hours=1)
    )
    match = matched(tenant, plan_payment(tenant, mandate, 4000, status="paid_out"), r,
                    receipt=receipt)
    ExactReceivable.objects.filter(pk=r.pk).update(synced_at=now)

    _, items = preview(tenant)
    assert_collect(items, r, "60.00")  # the rest, never the 40.00 again

    # Until Exact was read again after the receipt, the payment is still paying it.
    ExactReceivable.objects.filter(pk=r.pk).update(synced_at=now - dt.timedelta(hours=2))
    _, items = preview(tenant)
    assert_skip(items, r, SkipReason.PLAN_COLLECTS, match.payment.gocardless_id)


def test_a_matched_plan_payment_lowers_what_the_customer_owes(tenant):
    account, _, mandate = plan_customer(tenant)
    paid = invoice(tenant, account, "50.00", due=TODAY - dt.timedelta(days=3))
    rest = invoice(tenant, account, "80.00")
    invoice(tenant, account, "-60.00", credit_note=True)
    matched(tenant, plan_payment(tenant, mandate, 5000), paid)

    _, items = preview(tenant)

    assert_skip(items, paid, SkipReason.PLAN_COLLECTS)
    # Owed net: 50 + 80 - 60 = 70, of which the plan payment brings 50.
    assert_collect(items, rest, "20.00")


def test_an_unmatched_plan_payment_of_the_same_amount_blocks_the_invoice(tenant):
    account, _, mandate = plan_customer(tenant)
    same = invoice(tenant, account, "25.00")
    other = invoice(tenant, account, "25.01")
    plan_payment(tenant, mandate, 2500, status="pending_submission")

    _, items = preview(tenant)

    assert_skip(items, same, SkipReason.PLAN_COLLECTS, "not yet matched")
    assert_collect(items, other, "25.01")


def test_a_plan_payment_a_person_said_is_no_invoice_payment_blocks_nothing(tenant):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "25.00")
    payment = plan_payment(tenant, mandate, 2500, status="paid_out")
    PlanPaymentMatch.objects.create(
        tenant=tenant, payment=payment, plan="SB0000000001", state=PlanMatchState.NOT_INVOICE
    )

    _, items = preview(tenant)

    assert_collect(items, r, "25.00")


@pytest.mark.parametrize("status", ["active", "pending_customer_approval", "paused"])
def test_a_live_subscription_of_the_same_amount_blocks_the_invoice(tenant, status):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "25.00")
    other = invoice(tenant, account, "30.00")
    SubscriptionFactory(
        tenant=tenant, mandate_id=mandate.gocardless_id, amount=2500, status=status
    )

    _, items = preview(tenant)

    assert_skip(items, r, SkipReason.PLAN_COLLECTS, f"({status}, EUR 25.00) collects")
    assert_collect(items, other, "30.00")


@pytest.mark.parametrize("status", ["finished", "cancelled", "customer_approval_denied"])
def test_a_finished_or_cancelled_subscription_blocks_nothing(tenant, status):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "25.00")
    SubscriptionFactory(
        tenant=tenant, mandate_id=mandate.gocardless_id, amount=2500, status=status
    )

    _, items = preview(tenant)

    assert_collect(items, r, "25.00")


def test_a_subscription_in_another_currency_or_of_another_customer_blocks_nothing(tenant):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "25.00")
    _, _, stranger = plan_customer(tenant)
    SubscriptionFactory(tenant=tenant, mandate_id=mandate.gocardless_id, amount=2500,
                        currency="GBP")
    SubscriptionFactory(tenant=tenant, mandate_id=stranger.gocardless_id, amount=2500)

    _, items = preview(tenant)

    assert_collect(items, r, "25.00")


def test_an_upcoming_amended_subscription_amount_blocks_the_invoice(tenant):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "27.50")
    SubscriptionFactory(
        tenant=tenant,
        mandate_id=mandate.gocardless_id,
        amount=2500,
        upcoming_payments=[{"charge_date": "2026-04-01", "amount": 2750}],
    )

    _, items = preview(tenant)

    assert_skip(items, r, SkipReason.PLAN_COLLECTS)


@pytest.mark.parametrize(("status", "blocked"), [("active", True), ("pending", True),
                                                 ("completed", False), ("cancelled", False)])
def test_an_instalment_schedule_with_an_instalment_of_the_amount(tenant, status, blocked):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "100.00")
    InstalmentScheduleFactory(
        tenant=tenant,
        mandate_id=mandate.gocardless_id,
        status=status,
        total_amount=30000,
        upcoming_payments=[
            {"charge_date": "2026-03-10", "amount": 10000},
            {"charge_date": "2026-04-10", "amount": 20000},
        ],
    )

    _, items = preview(tenant)

    if blocked:
        assert_skip(items, r, SkipReason.PLAN_COLLECTS, "instalment schedule IS")
    else:
        assert_collect(items, r, "100.00")


def test_a_plan_on_another_mandate_of_the_same_customer_blocks_the_invoice(tenant):
    account, link, _ = plan_customer(tenant)
    r = invoice(tenant, account, "25.00")
    old = MandateFactory(tenant=tenant, customer_id=link.gocardless_customer.gocardless_id)
    SubscriptionFactory(tenant=tenant, mandate_id=old.gocardless_id, amount=2500)

    _, items = preview(tenant)

    assert_skip(items, r, SkipReason.PLAN_COLLECTS)


def test_an_instalment_schedule_paying_one_invoice_in_parts_blocks_it(tenant):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "300.00")
    schedule = InstalmentScheduleFactory(
        tenant=tenant,
        mandate_id=mandate.gocardless_id,
        status="active",
        total_amount=30000,
        upcoming_payments=[
            {"charge_date": "2026-04-10", "amount": 10000},
            {"charge_date": "2026-05-10", "amount": 10000},
        ],
    )
    paid = PaymentFactory(
        tenant=tenant, mandate_id=mandate.gocardless_id, amount=10000, status="paid_out",
        instalment_schedule_id=schedule.gocardless_id,
    )

    _, items = preview(tenant)
    assert_skip(items, r, SkipReason.PLAN_COLLECTS, "(EUR 300.00 in instalments) collects")

    # Completed, its three parts still waiting for a person: together they pay the invoice.
    InstalmentSchedule.objects.filter(pk=schedule.pk).update(status="completed")
    for _ in range(2):
        PaymentFactory(
            tenant=tenant, mandate_id=mandate.gocardless_id, amount=10000, status="paid_out",
            instalment_schedule_id=schedule.gocardless_id, charge_date=paid.charge_date,
        )
    _, items = preview(tenant)
    assert_skip(items, r, SkipReason.PLAN_COLLECTS, "3 payments of IS")


def test_a_part_paid_invoice_of_a_plans_amount_is_not_collected(tenant):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "15.00", amount="25.00")  # 10.00 paid by bank transfer
    SubscriptionFactory(tenant=tenant, mandate_id=mandate.gocardless_id, amount=2500)

    _, items = preview(tenant)

    assert_skip(items, r, SkipReason.PLAN_COLLECTS)


def test_an_unmatched_plan_payment_lowers_what_the_customer_owes(tenant):
    account, _, mandate = plan_customer(tenant)
    r = invoice(tenant, account, "100.00")
    plan_payment(tenant, mandate, 3000, status="paid_out")  # not for this amount

    _, items = preview(tenant)

    # Its 30.00 is the customer's money until a person says what it paid.
    assert_collect(items, r, "70.00")


def test_plans_are_loaded_in_a_constant_number_of_queries(tenant, django_assert_num_queries):
    def world(n):
        for i in range(n):
            account, _, mandate = plan_customer(tenant)
            paid = invoice(tenant, account, "25.00")
            invoice(tenant, account, f"{30 + i}.00")
            matched(tenant, plan_payment(tenant, mandate, 2500, subscription=f"SB{i}"), paid)
            plan_payment(tenant, mandate, 1000 + i, status="pending_submission")
            SubscriptionFactory(tenant=tenant, mandate_id=mandate.gocardless_id, amount=2600)
            InstalmentScheduleFactory(
                tenant=tenant,
                mandate_id=mandate.gocardless_id,
                upcoming_payments=[{"charge_date": "2026-03-10", "amount": 2700}],
            )

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            plans = selection_evaluate(tenant=tenant, today=TODAY)
        return len(queries), plans

    world(1)
    one, _ = count()
    world(6)
    seven, plans = count()
    assert one == seven
    assert sum(p.reason == SkipReason.PLAN_COLLECTS for p in plans) == 7
    assert sum(p.decision == Decision.COLLECT for p in plans) == 7


def test_every_skip_reason_selection_can_give_is_covered_here():
    """A new SkipReason must get a preview test (and a line in this list)."""
    covered = {
        SkipReason.NO_CUSTOMER_LINK,
        SkipReason.LINK_NOT_CONFIRMED,
        SkipReason.COLLECTION_STOPPED,
        SkipReason.ACCOUNT_BLOCKED,
        SkipReason.NO_MANDATE,
        SkipReason.MANDATE_PENDING,
        SkipReason.MANDATE_CANCELLED,
        SkipReason.CURRENCY_NOT_COLLECTABLE,
        SkipReason.NOT_DUE,
        SkipReason.BELOW_MINIMUM,
        SkipReason.ALREADY_IN_FLIGHT,
        SkipReason.RETRY_NOT_DUE,
        SkipReason.NEEDS_ATTENTION,
        SkipReason.HANDLED_BY_PERSON,
        SkipReason.CREDITED,
        SkipReason.DISPUTED,
        SkipReason.OVER_SCHEME_MAXIMUM,
        SkipReason.RUN_LIMIT,
        SkipReason.PLAN_COLLECTS,
        # Given by pay_link_rules.py (its own tests; wired by the coordinator):
        SkipReason.PAY_LINK_SENT,
        # Given by approval (test_preview_approval.py), not by selection:
        SkipReason.CHANGED_SINCE_PREVIEW,
        SkipReason.NOT_IN_PREVIEW,
    }
    assert covered == set(SkipReason)


# --- a preview never reaches GoCardless -----------------------------------------------------


def test_preview_makes_no_gocardless_call(gocardless_simulator, tenant, monkeypatch):
    from tests.gocardless.conftest import sim_connection

    monkeypatch.undo()  # the real client may be built: the simulator's counters are the proof
    freeze_today(monkeypatch)
    sim_connection(gocardless_simulator, tenant=tenant)
    for _ in range(3):
        account, _, _ = customer(tenant)
        invoice(tenant, account, "10.00")
    account, _, _ = customer(tenant, status="cancelled")
    invoice(tenant, account, "10.00")

    run, _ = preview(tenant)

    assert run.to_collect == 3
    assert gc_calls(gocardless_simulator) == {}
    assert gocardless_simulator.resource("payments") == []
    assert not CollectionAttempt.objects.exists()


# --- property: never more than the customer owes ---------------------------------------------

_STATES = [s.value for s in AttemptState]
_ON_ITS_WAY = {"pending", "submitted", "confirmed", "paid_out"}
_BLOCKING = {s.value for s in BLOCKING_STATES} - {"retry_scheduled"}  # due retries collect

_invoice_strategy = st.tuples(
    st.integers(min_value=1, max_value=1_200_000),  # outstanding, minor units
    st.integers(min_value=-40, max_value=20),  # due date offset from today
    st.one_of(st.none(), st.sampled_from(_STATES)),  # an earlier attempt's state
    st.booleans(),  # closed in Exact since (only matters with an attempt)
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    invoices=st.lists(_invoice_strategy, min_size=1, max_size=6),
    credits=st.lists(st.integers(min_value=1, max_value=500_000), max_size=3),
    minimum=st.sampled_from(["0", "1.00", "25.00"]),
    split=st.booleans(),
    max_payments=st.integers(min_value=1, max_value=8),
)
def test_never_more_than_the_customer_owes(tenant, invoices, credits, minimum, split, max_payments):
    with transaction.atomic():
        policy(
            tenant,
            minimum_amount=Decimal(minimum),
            over_maximum_policy="split" if split else "skip",
            max_payments_per_run=max_payments,
        )
        account, _, _ = customer(tenant)
        net = Decimal("0")
        on_its_way = Decimal("0")
        rows = {}
        for minor, offset, state, closed in invoices:
            amount = Decimal(minor) / 100
            r = invoice(tenant, account, amount, due=TODAY + dt.timedelta(days=offset))
            if state is not None:
                attempt(tenant, r, state, amount=amount)
                if closed:
                    r.outstanding, r.is_fully_paid = Decimal("0"), True
                    r.save()
            if not r.is_fully_paid:
                net += amount
                rows[r.exact_id] = (r, state)
                if state in _ON_ITS_WAY:
                    on_its_way += amount
            elif state in ("pending", "submitted"):
                on_its_way += amount
        for minor in credits:
            net -= Decimal(minor) / 100
            invoice(tenant, account, -Decimal(minor) / 100, credit_note=True)

        plans = selection_evaluate(tenant=tenant, today=TODAY)

        collect = [p for p in plans if p.decision == Decision.COLLECT]
        assert {p.receivable_exact_id for p in plans} == set(rows)
        assert sum(p.amount for p in collect) <= max(Decimal("0"), net - on_its_way)
        assert sum(p.parts for p in collect) <= max_payments
        for p in collect:
            r, state = rows[p.receivable_exact_id]
            assert state not in _BLOCKING
            assert Decimal("0") < p.amount <= r.outstanding
            assert p.amount >= max(Decimal(minimum), Decimal("1.00"))
            assert p.due_date <= TODAY + dt.timedelta(days=tenant.lead_days)
            assert sum(p.part_amounts) == p.amount
            assert all(part <= Decimal("5000.00") for part in p.part_amounts)
            assert p.charge_date >= SEPA_EARLIEST
        transaction.set_rollback(True)
