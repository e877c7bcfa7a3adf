"""Background posting never sleeps on Exact's minute: a company's due bookings are posted in
turns that stop at its division's budget (the rest put off to the reset, no attempt counted),
turns are handed out company by company, and exactly-once survives a crash in the middle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from exact.client import ExactClient
from exact.models import ConnectionStatus, ExactConnection
from exact.ratelimit import ExactRateBudgetBusy
from reconciliation.bookings import company_posting
from reconciliation.bookings.models import Booking, BookingState
from reconciliation.bookings.posting import LEASE, booking_post, bookings_due, bookings_sweep
from tests.factories import ExactConnectionFactory, TenantFactory
from tests.reconciliation.bookings.factories import BookingFactory, BookingSettingsFactory

pytestmark = pytest.mark.django_db


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s: background posting must not wait for the minute")


@pytest.fixture
def sim(world):
    """The simulator in a fresh minute (the settings' validation used the first one)."""
    world.ex_sim.advance(60 - world.ex_sim.clock.now().second + 1)
    return world.ex_sim


@pytest.fixture
def api(sim, ex_connection):
    return ExactClient(
        ex_connection, clock=sim.clock.now, sleep=_never_sleep, wait_for_budget=False
    )


def receipts(tenant, world, n: int) -> list[Booking]:
    customer = world.customer("Alpha BV")
    made = []
    for i in range(n):
        invoice = world.invoice(customer, f"{10 + i}.00")
        made.append(
            BookingFactory(
                tenant=tenant,
                facts={
                    "payment": f"PM{i:04d}",
                    "invoice": invoice["InvoiceNumber"],
                    "amount": (10 + i) * 100,
                    "account": customer["account"],
                    "attempt": f"{invoice['TermID']}/1",
                },
                gocardless_id=f"PM{i:04d}",
                amount_minor=(10 + i) * 100,
            )
        )
    return made


def test_a_spent_minute_puts_the_booking_off_to_the_reset_without_an_attempt(
    tenant_a, booking_settings, world, sim, api
):
    first, second = receipts(tenant_a, world, 2)
    second.state, second.attempts, second.outcome_unknown = BookingState.FAILED, 2, True
    second.last_error = "no answer from Exact (ReadTimeout)"
    second.save()
    sim.settings(minutely_limit=2)
    now = sim.clock.now()
    assert booking_post(booking_pk=first.pk, api=api, now=now) == "posted"
    # Its unknown outcome is looked up first (the minute's last call); then the POST finds
    # the minute spent: refused before it leaves, the claim handed back as it was.
    assert booking_post(booking_pk=second.pk, api=api, now=now) == "budget busy"
    second.refresh_from_db()
    reset = now.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=0.25)
    assert second.next_retry_at == reset
    assert second.state == BookingState.FAILED and second.attempts == 2
    assert second.outcome_unknown  # still looked up before its next post
    assert second.claimed_at is None
    assert second.last_error == "no answer from Exact (ReadTimeout)"  # no new error shown
    assert not AuditEntry.objects.filter(action="booking.failed", object_id=str(second.pk))
    assert len(world.ledger()) == 1
    assert booking_post(booking_pk=second.pk, api=api, now=now) == "not due"

    sim.advance((reset - sim.clock.now()).total_seconds())
    assert booking_post(booking_pk=second.pk, api=api, now=reset) == "posted"
    second.refresh_from_db()
    assert second.state == BookingState.CONFIRMED and second.attempts == 3
    assert len(world.ledger()) == 2
    assert sum(c.get("429", 0) for c in sim.call_counts().values()) == 0


def test_a_booking_whose_sender_died_stays_due_when_the_minute_is_spent(
    tenant_a, booking_settings, world, sim, api, monkeypatch
):
    """Found by the chaos month: a worker killed after its claim leaves the booking ``sent``
    (due again once the claim is older than LEASE). The next claim found the minute spent
    and put the booking back without any claim: ``sent`` with no claim is due by nothing,
    and the receipt was never posted."""
    (booking,) = receipts(tenant_a, world, 1)
    now = sim.clock.now()
    died_at = now - LEASE - timedelta(minutes=1)
    Booking.objects.filter(pk=booking.pk).update(
        state=BookingState.SENT, claimed_at=died_at, attempts=1, outcome_unknown=True
    )
    assert list(bookings_due(now=now).values_list("pk", flat=True)) == [booking.pk]
    # The minute has one call: the look-up of the unknown outcome; the POST finds it spent.
    sim.settings(minutely_limit=1)
    assert booking_post(booking_pk=booking.pk, api=api, now=now) == "budget busy"
    booking.refresh_from_db()
    assert (booking.state, booking.claimed_at, booking.attempts) == (
        BookingState.SENT, died_at, 1
    )  # as it was
    assert list(bookings_due(now=now).values_list("pk", flat=True)) == [booking.pk]

    # ... so the sweep after the reset hands its company a turn again.
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *a, **k: queued.append(a))
    assert company_posting.bookings_hand_out(now=now + timedelta(minutes=1)) == {
        "companies handed a turn": 1
    }
    assert queued == [(tenant_a.pk,)] and world.ledger() == []


def test_a_turn_stops_at_the_budget_and_the_next_one_resumes(
    tenant_a, booking_settings, world, sim, api
):
    bookings = receipts(tenant_a, world, 5)
    sim.settings(minutely_limit=3)
    now = sim.clock.now()
    outcomes = company_posting.bookings_company_post(tenant_id=tenant_a.pk, now=now, api=api)
    assert outcomes == {"posted": 3, "budget busy": 1}
    states = dict(Booking.objects.values_list("pk", "state"))
    assert [states[b.pk] for b in bookings] == [BookingState.CONFIRMED] * 3 + [
        BookingState.PENDING
    ] * 2
    reset = now.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=0.25)
    waiting = Booking.objects.filter(state=BookingState.PENDING)
    assert set(waiting.values_list("next_retry_at", flat=True)) == {reset}
    assert set(waiting.values_list("attempts", flat=True)) == {0}
    assert set(waiting.values_list("last_error", flat=True)) == {""}
    # Before the reset the company has nothing due: a turn does nothing.
    assert company_posting.bookings_company_post(tenant_id=tenant_a.pk, now=now, api=api) == {}

    sim.advance((reset - sim.clock.now()).total_seconds())
    outcomes = company_posting.bookings_company_post(tenant_id=tenant_a.pk, now=reset, api=api)
    assert outcomes == {"posted": 2}
    assert set(Booking.objects.values_list("state", flat=True)) == {BookingState.CONFIRMED}
    assert set(Booking.objects.values_list("attempts", flat=True)) == {1}
    assert len(world.ledger()) == 5


def test_a_turn_takes_at_most_its_share_then_queues_itself_behind_the_others(
    tenant_a, booking_settings, world, sim, api, monkeypatch
):
    receipts(tenant_a, world, 3)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *a, **k: queued.append((func, a)))
    outcomes = company_posting.bookings_company_post(
        tenant_id=tenant_a.pk, now=sim.clock.now(), api=api, turn=2
    )
    assert outcomes == {"posted": 2}
    assert queued == [(company_posting.COMPANY_TURN_TASK, (tenant_a.pk,))]
    assert Booking.objects.filter(state=BookingState.PENDING).count() == 1


class FakeExact:
    """Records which company each entry was posted for, in order (no HTTP). ``busy_after``:
    posts a company may make before its division's minute is spent."""

    def __init__(self, log: list, *, company: str = "", busy_after: int | None = None):
        self.log, self.company, self.busy_after = log, company, busy_after

    def post(self, kind, body):
        if self.busy_after is not None:
            if sum(1 for _, c in self.log if c == self.company) >= self.busy_after:
                raise ExactRateBudgetBusy("spent", reset_at=RESET)
        self.log.append((body["BankEntryLines"][0]["Notes"], self.company))
        return {"EntryID": f"00000000-0000-4000-8000-{len(self.log):012d}", "EntryNumber": 1}


RESET = timezone.now().replace(microsecond=0) + timedelta(minutes=1)


def _company(name: str):
    tenant = TenantFactory(name=name)
    ExactConnectionFactory(tenant=tenant)
    BookingSettingsFactory(
        tenant=tenant,
        resolved={  # as validation against Exact leaves them (config.py)
            "journals": {"21": "00000000-0000-4000-8000-000000000021"},
            "gl": {
                code: f"00000000-0000-4000-8000-00000000{code}" for code in ("1300", "4600", "1190")
            },
        },
    )
    return tenant


def test_the_sweep_interleaves_companies_and_passes_over_a_spent_one():
    big, small_1, small_2 = _company("Big"), _company("Small 1"), _company("Small 2")
    # The big company's backlog is the oldest: one task per booking would serve it first.
    made = [BookingFactory(tenant=big) for _ in range(4)]
    made += [BookingFactory(tenant=small_1) for _ in range(2)]
    made += [BookingFactory(tenant=small_2) for _ in range(2)]
    company_of = {b.pk: b.tenant.name for b in made}
    log: list = []

    def api_factory(pk):  # the big company's division has one call left this minute
        name = company_of[pk]
        return FakeExact(log, company=name, busy_after=1 if name == "Big" else None)

    assert bookings_sweep(api_factory=api_factory) == {"posted": 5, "budget busy": 1}
    assert [company for _, company in log] == [
        "Big", "Small 1", "Small 2", "Small 1", "Small 2"
    ]  # fmt: skip
    waiting = Booking.objects.filter(tenant=big, state=BookingState.PENDING)
    assert waiting.count() == 3
    assert set(waiting.values_list("next_retry_at", flat=True)) == {RESET}
    assert set(waiting.values_list("attempts", flat=True)) == {0}


def test_the_hand_out_queues_one_turn_per_company_longest_waiting_first(monkeypatch):
    first, second = _company("First"), _company("Second")
    BookingFactory(tenant=second)
    for _ in range(30):
        BookingFactory(tenant=first)
    BookingFactory(tenant=second)
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *a, **k: queued.append((func, a)))
    assert company_posting.bookings_hand_out() == {"companies handed a turn": 2}
    assert queued == [
        (company_posting.COMPANY_TURN_TASK, (second.pk,)),
        (company_posting.COMPANY_TURN_TASK, (first.pk,)),
    ]


def test_the_receivers_task_runs_the_whole_companys_turn(tenant_a, booking_settings, world, sim):
    from reconciliation.bookings import tasks

    sim.settings(minutely_limit=1000)
    one, *others = receipts(tenant_a, world, 3)
    outcomes = tasks.booking_post_task(one.pk)
    assert outcomes == {"posted": 3}
    assert len(world.ledger()) == 3
    for booking in others:  # their own tasks, run later, find nothing left to do
        assert tasks.booking_post_task(booking.pk) == {}
    assert len(world.ledger()) == 3


class Killed(BaseException):
    """The worker process dies (the OOM killer, a deploy): nothing in our code catches it."""


@pytest.mark.parametrize("reached_exact", [False, True])
def test_a_crash_between_the_claim_and_the_answer_loses_nothing(
    tenant_a, booking_settings, world, sim, api, monkeypatch, reached_exact
):
    (booking,) = receipts(tenant_a, world, 1)
    post = api.post

    def dies(kind, body):
        if reached_exact:
            post(kind, body)  # Exact writes the entry; the answer is never read
        raise Killed

    monkeypatch.setattr(api, "post", dies)
    now = sim.clock.now()
    with pytest.raises(Killed):
        company_posting.bookings_company_post(tenant_id=tenant_a.pk, now=now, api=api)
    booking.refresh_from_db()
    assert booking.state == BookingState.SENT and booking.outcome_unknown
    assert booking.attempts == 1
    monkeypatch.setattr(api, "post", post)
    # Within the lease it is in flight: no turn and no sweep touches it.
    assert company_posting.bookings_company_post(tenant_id=tenant_a.pk, now=now, api=api) == {}
    assert bookings_sweep(now=now + timedelta(minutes=1)) == {}
    # After the lease the next turn takes it over and looks it up before sending.
    later = now + LEASE + timedelta(seconds=1)  # our clock only: the budget is generous
    outcomes = company_posting.bookings_company_post(tenant_id=tenant_a.pk, now=later, api=api)
    assert outcomes == ({"found": 1} if reached_exact else {"posted": 1})
    booking.refresh_from_db()
    assert booking.state == BookingState.CONFIRMED and booking.found_by_lookup is reached_exact
    assert len(world.ledger()) == 1


def test_a_company_without_a_usable_connection_waits_without_a_client(tenant_a):
    BookingSettingsFactory(tenant=tenant_a)
    ExactConnectionFactory(tenant=tenant_a, status=ConnectionStatus.NEEDS_REAUTH)
    booking = BookingFactory(tenant=tenant_a)
    outcomes = company_posting.bookings_company_post(tenant_id=tenant_a.pk)
    assert outcomes == {"exact not usable": 1}
    booking.refresh_from_db()
    assert booking.state == BookingState.PENDING and booking.attempts == 0
    assert ExactConnection.objects.filter(tenant=tenant_a).count() == 1


def test_a_turn_ends_when_the_companys_connection_cannot_be_used(tenant_a):
    """The first booking finds Exact unusable and waits; the others are not each tried (and
    each given a new time) in the same turn: they wait for the next one."""
    BookingSettingsFactory(tenant=tenant_a)
    ExactConnectionFactory(tenant=tenant_a, status=ConnectionStatus.NEEDS_REAUTH)
    first, second = BookingFactory(tenant=tenant_a), BookingFactory(tenant=tenant_a)
    assert company_posting.bookings_company_post(tenant_id=tenant_a.pk) == {"exact not usable": 1}
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.next_retry_at is not None and second.next_retry_at is None
