"""Exactly once: unknown outcomes are looked up in Exact before anything is sent again,
failures retry with backoff, workers never post the same booking twice."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.audit import Actor
from core.models import AuditEntry
from exact.client import ExactClient
from reconciliation.bookings import posting
from reconciliation.bookings.models import Booking, BookingState, Rule
from reconciliation.bookings.posting import LEASE, MAX_ATTEMPTS, booking_post, bookings_sweep
from tests.reconciliation.bookings.factories import BookingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def receipt(tenant_a, booking_settings, world):
    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "121.00")
    booking = BookingFactory(
        tenant=tenant_a,
        facts={
            "payment": "PM0001",
            "invoice": invoice["InvoiceNumber"],
            "amount": 12100,
            "account": customer["account"],
            "attempt": f"{invoice['TermID']}/1",
        },
        gocardless_id="PM0001",
        key="receipt:PM0001:1",
    )
    booking.invoice = invoice
    return booking


def entries(world) -> list[dict]:
    return world.ledger()


def test_posted_once_with_reference_in_every_line(receipt, world):
    assert booking_post(booking_pk=receipt.pk) == "posted"
    receipt.refresh_from_db()
    assert receipt.state == BookingState.CONFIRMED and receipt.attempts == 1
    (entry,) = entries(world)
    assert str(receipt.exact_entry_id) == entry["EntryID"]
    assert all(line["Notes"] == receipt.reference for line in entry["Lines"])
    assert world.open_amount(receipt.invoice) == 0
    # Again, by the task, the sweeper and a re-post: nothing more is sent.
    assert booking_post(booking_pk=receipt.pk) == "confirmed already"
    assert bookings_sweep() == {}
    assert len(entries(world)) == 1
    confirmed = AuditEntry.objects.filter(action="booking.confirmed", object_id=str(receipt.pk))
    assert confirmed.count() == 1


def test_timeout_after_exact_applied_is_found_not_posted_again(receipt, world):
    world.ex_sim.inject(
        "timeout", count=1, seconds=0.2, process=True, path="financialtransaction/BankEntries"
    )
    now = timezone.now()
    assert booking_post(booking_pk=receipt.pk, now=now) == "failed: outcome unknown"
    receipt.refresh_from_db()
    assert receipt.state == BookingState.FAILED and receipt.outcome_unknown
    assert receipt.next_retry_at == now + posting.backoff(1)
    assert len(entries(world)) == 1  # Exact did write it

    assert bookings_sweep(now=now) == {}  # not due yet
    assert bookings_sweep(now=now + timedelta(minutes=2)) == {"found": 1}
    receipt.refresh_from_db()
    assert receipt.state == BookingState.CONFIRMED and receipt.found_by_lookup
    assert str(receipt.exact_entry_id) == entries(world)[0]["EntryID"]
    assert len(entries(world)) == 1
    assert world.open_amount(receipt.invoice) == 0  # settled once, not twice


def test_timeout_before_exact_applied_is_looked_up_then_posted(receipt, world):
    world.ex_sim.inject(
        "timeout", count=1, seconds=0.2, process=False, path="financialtransaction/BankEntries"
    )
    now = timezone.now()
    assert booking_post(booking_pk=receipt.pk, now=now) == "failed: outcome unknown"
    assert entries(world) == []
    assert booking_post(booking_pk=receipt.pk, now=now + timedelta(minutes=2)) == "posted"
    assert len(entries(world)) == 1
    receipt.refresh_from_db()
    assert receipt.attempts == 2 and not receipt.found_by_lookup
    counts = world.ex_sim.call_counts()
    assert any("BankEntryLines" in name for name in counts)  # it looked first


def test_worker_killed_between_send_and_save(receipt, world, monkeypatch):
    real_post = ExactClient.post

    def post_then_die(self, path, body):
        real_post(self, path, body)
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(ExactClient, "post", post_then_die)
    now = timezone.now()
    with pytest.raises(KeyboardInterrupt):
        booking_post(booking_pk=receipt.pk, now=now)
    monkeypatch.setattr(ExactClient, "post", real_post)
    receipt.refresh_from_db()
    assert receipt.state == BookingState.SENT and receipt.outcome_unknown

    # Another worker right away leaves it alone (it may still be in flight) ...
    assert booking_post(booking_pk=receipt.pk, now=now + timedelta(minutes=1)) == "in flight"
    assert bookings_sweep(now=now + timedelta(minutes=1)) == {}
    # ... after the lease the sweeper takes over and finds the entry instead of re-posting.
    assert bookings_sweep(now=now + LEASE + timedelta(seconds=1)) == {"found": 1}
    assert len(entries(world)) == 1
    assert world.open_amount(receipt.invoice) == 0


def test_refused_post_retries_with_backoff_then_needs_attention(receipt, world):
    world.ex_sim.inject(
        "status", status=400, count=MAX_ATTEMPTS, path="financialtransaction/BankEntries"
    )
    now = timezone.now()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert booking_post(booking_pk=receipt.pk, now=now) == "failed: refused"
        receipt.refresh_from_db()
        assert receipt.attempts == attempt and not receipt.outcome_unknown
        if attempt < MAX_ATTEMPTS:
            assert receipt.state == BookingState.FAILED
            assert receipt.next_retry_at == now + posting.backoff(attempt)
            now = receipt.next_retry_at
    assert receipt.state == BookingState.GAVE_UP and receipt.next_retry_at is None
    assert bookings_sweep(now=now + timedelta(days=30)) == {}
    assert entries(world) == []
    # A person re-posts (audited with their name): it goes through now.
    user_actor = Actor.system("ops")
    assert posting.booking_repost(booking=receipt, actor=user_actor) == "posted"
    assert len(entries(world)) == 1
    assert AuditEntry.objects.filter(action="booking.repost_requested").count() == 1


def test_reposting_a_confirmed_booking_is_refused_and_not_audited(
    client, receipt, world, operator_of_a, q_sync, run_on_commit
):
    """Issue 15: re-posting a confirmed booking wrote ``booking.repost_requested`` although
    nothing happened. A refusal is a line on the batch's page, not an audit entry."""
    from django.contrib.messages import get_messages
    from django.urls import reverse

    from reconciliation.bookings.models import RepostBatch, RepostState

    assert booking_post(booking_pk=receipt.pk) == "posted"
    assert posting.booking_repost(booking=receipt, actor=Actor.system("ops")) == (
        "confirmed already"
    )
    assert not AuditEntry.objects.filter(action__startswith="booking.repost").exists()

    client.force_login(operator_of_a)
    with run_on_commit():
        response = client.post(
            reverse("admin:bookings_booking_changelist"),
            {"action": "repost", "_selected_action": [receipt.pk]},
        )
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == (
        "Re-posting 1 booking(s) to Exact in the background; this page shows how far it is."
    )
    batch = RepostBatch.objects.get()
    assert batch.state == RepostState.FINISHED and (batch.done, batch.failed) == (1, 1)
    assert batch.results[0]["outcome"] == "confirmed already"
    page = client.get(response.url).content.decode()
    assert "Already confirmed in Exact, so it is never posted again" in page
    assert not AuditEntry.objects.filter(action__startswith="booking.repost").exists()
    assert len(entries(world)) == 1


def test_every_posting_outcome_has_words():
    import inspect

    source = inspect.getsource(posting)
    returned = set(re.findall(r'return "([a-z :]+)"', source))
    returned |= set(re.findall(r'return "([a-z :]+)" if', source))
    returned |= set(re.findall(r'else "([a-z :]+)"', source))
    returned |= {"posted", "found"}
    assert returned and returned <= set(posting.OUTCOME_WORDS)


def test_server_error_is_treated_as_unknown(receipt, world):
    world.ex_sim.inject("status", status=500, count=1, path="financialtransaction/BankEntries")
    now = timezone.now()
    assert booking_post(booking_pk=receipt.pk, now=now) == "failed: outcome unknown"
    receipt.refresh_from_db()
    assert receipt.outcome_unknown
    assert booking_post(booking_pk=receipt.pk, now=now + timedelta(minutes=2)) == "posted"
    assert len(entries(world)) == 1


def test_reversal_waits_for_its_receipt(receipt, world, tenant_a):
    reversal = BookingFactory(
        tenant=tenant_a,
        rule=Rule.REVERSAL,
        gocardless_id="PM0001",
        key="reversal:PM0001:1",
        facts={**receipt.facts, "cause": "late_failure"},
        after=receipt,
    )
    now = timezone.now()
    assert booking_post(booking_pk=reversal.pk, now=now) == "waiting for predecessor"
    assert entries(world) == []
    outcomes = bookings_sweep(now=now + timedelta(minutes=2))
    assert outcomes == {"posted": 2}
    amounts = [e["Lines"][0]["AmountFC"] for e in entries(world)]
    assert amounts == ["121.00", "-121.00"]
    assert world.open_amount(receipt.invoice) == Decimal("121.00")


def test_connection_not_usable_waits_without_using_attempts(receipt, world, ex_connection):
    ex_connection.status = "needs_reauth"
    ex_connection.save()
    assert booking_post(booking_pk=receipt.pk) == "exact not usable"
    receipt.refresh_from_db()
    assert receipt.attempts == 0 and receipt.state == BookingState.PENDING
    assert receipt.next_retry_at is not None
    assert entries(world) == []


def test_missing_settings_fail_with_a_clear_error(receipt, world, booking_settings):
    booking_settings.resolved = {}
    booking_settings.save()
    assert booking_post(booking_pk=receipt.pk) == "failed: cannot build"
    receipt.refresh_from_db()
    assert "not validated against Exact" in receipt.last_error
    assert entries(world) == []


def _payout_with_our_payment(tenant, customer, invoice):
    from gocardless.models import Payment, Payout, PayoutItem

    payment = Payment.objects.create(
        tenant=tenant,
        gocardless_id="PM0009",
        status="paid_out",
        amount=10000,
        currency="EUR",
        metadata={
            "mlc_attempt": f"{invoice['TermID']}/1",
            "exact_invoice": str(invoice["InvoiceNumber"]),
            "exact_account": customer["account"],
        },
    )
    payout = Payout.objects.create(
        tenant=tenant,
        gocardless_id="PO0009",
        status="paid",
        amount=9850,
        currency="EUR",
        reference="REF-9",
        gocardless_created_at=timezone.now(),
    )
    PayoutItem.objects.create(
        tenant=tenant,
        payout=payout,
        position=1,
        item_type="payment_paid_out",
        amount=Decimal("10000.0"),
        payment_id=payment.gocardless_id,
    )
    PayoutItem.objects.create(
        tenant=tenant,
        payout=payout,
        position=2,
        item_type="gocardless_fee",
        amount=Decimal("-150.0"),
        payment_id=payment.gocardless_id,
        taxes=[{"amount": "-25.0", "currency": "EUR"}],
    )
    return payment, payout


def test_payout_processed_before_its_receipts_waits_for_them(tenant_a, booking_settings, world):
    from reconciliation.bookings.payout_facts import RECEIPTS_GRACE
    from reconciliation.bookings.services import payout_book

    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "100.00")
    _payment, payout = _payout_with_our_payment(tenant_a, customer, invoice)
    booking = next(
        b for b in payout_book(tenant=tenant_a, payout=payout, event=None) if b.rule == Rule.PAYOUT
    )
    assert booking.facts["foreign"] == {"PM0009": 10000}  # as far as we knew then
    now = timezone.now()
    assert booking_post(booking_pk=booking.pk, now=now) == "waiting for receipts"
    assert world.ledger() == []
    BookingFactory(
        tenant=tenant_a,
        gocardless_id="PM0009",
        key="receipt:PM0009:1",
        facts={
            "payment": "PM0009",
            "invoice": invoice["InvoiceNumber"],
            "amount": 10000,
            "account": customer["account"],
            "attempt": "x/1",
        },
        amount_minor=10000,
    )
    outcomes = bookings_sweep(now=now + timedelta(minutes=2))
    assert outcomes == {"posted": 3}  # receipt, payout, bank side
    assert world.journal_total("21") == 0
    assert world.journal_total("20") == Decimal("98.50")
    assert not any(line["GLAccountCode"] == "2390" for e in world.ledger() for line in e["Lines"])
    assert RECEIPTS_GRACE > timedelta(minutes=2)
    # The bank side says what its payout entry was posted with, not the first copy.
    payout_side = Booking.objects.get(rule=Rule.PAYOUT, gocardless_id=payout.gocardless_id)
    bank_side = Booking.objects.get(rule=Rule.PAYOUT_BANK, gocardless_id=payout.gocardless_id)
    assert payout_side.facts["foreign"] == bank_side.facts["foreign"] == {}
    assert bank_side.facts == payout_side.facts


def test_payout_whose_receipts_never_come_books_them_to_suspense(tenant_a, booking_settings, world):
    from reconciliation.bookings.payout_facts import RECEIPTS_GRACE
    from reconciliation.bookings.services import payout_book

    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "100.00")
    _payment, payout = _payout_with_our_payment(tenant_a, customer, invoice)
    booking = payout_book(tenant=tenant_a, payout=payout, event=None)[0]
    later = timezone.now() + RECEIPTS_GRACE + timedelta(minutes=1)
    assert booking_post(booking_pk=booking.pk, now=later) == "posted"
    (entry,) = world.ledger()
    suspense = [line["AmountFC"] for line in entry["Lines"] if line["GLAccountCode"] == "2390"]
    assert suspense == ["100.00"]


def test_follower_of_a_receipt_that_needs_attention_waits_quietly(receipt, world, tenant_a):
    receipt.state = BookingState.GAVE_UP
    receipt.save()
    reversal = BookingFactory(
        tenant=tenant_a,
        rule=Rule.REVERSAL,
        gocardless_id="PM0001",
        key="reversal:PM0001:1",
        facts=receipt.facts,
        after=receipt,
    )
    now = timezone.now()
    assert booking_post(booking_pk=reversal.pk, now=now) == "waiting for predecessor"
    reversal.refresh_from_db()
    assert reversal.last_error == "waiting for receipt:PM0001:1 (needs attention)"
    assert reversal.next_retry_at == now + posting.NOT_USABLE_WAIT
    assert reversal.attempts == 0 and world.ledger() == []


def test_unknown_outcome_survives_a_settings_problem(receipt, world, booking_settings):
    world.ex_sim.inject(
        "timeout", count=1, seconds=0.2, process=True, path="financialtransaction/BankEntries"
    )
    now = timezone.now()
    assert booking_post(booking_pk=receipt.pk, now=now) == "failed: outcome unknown"
    resolved = booking_settings.resolved
    booking_settings.resolved = {}
    booking_settings.save()
    later = now + timedelta(minutes=2)
    assert booking_post(booking_pk=receipt.pk, now=later) == "failed: cannot build"
    receipt.refresh_from_db()
    assert receipt.outcome_unknown
    booking_settings.resolved = resolved
    booking_settings.save()
    assert booking_post(booking_pk=receipt.pk, force=True, now=later) == "found"
    assert len(world.ledger()) == 1


def test_unreadable_success_answer_counts_as_unknown(receipt, world, monkeypatch):
    from exact.errors import ExactApiError

    real_post = ExactClient.post

    def post_then_garble(self, path, body):
        real_post(self, path, body)
        raise ExactApiError("Exact's answer is not JSON", method="POST", endpoint=path)

    monkeypatch.setattr(ExactClient, "post", post_then_garble)
    now = timezone.now()
    assert booking_post(booking_pk=receipt.pk, now=now) == "failed: outcome unknown"
    monkeypatch.setattr(ExactClient, "post", real_post)
    assert booking_post(booking_pk=receipt.pk, now=now + timedelta(minutes=2)) == "found"
    assert len(world.ledger()) == 1


def test_unknown_payout_item_type_fails_the_post_not_the_event(tenant_a, booking_settings, world):
    from gocardless.models import PayoutItem
    from reconciliation.bookings.services import payout_book

    customer = world.customer("Alpha BV")
    invoice = world.invoice(customer, "100.00")
    _payment, payout = _payout_with_our_payment(tenant_a, customer, invoice)
    PayoutItem.objects.create(
        tenant=tenant_a,
        payout=payout,
        position=3,
        item_type="fx_adjustment",
        amount=Decimal("-1.0"),
    )
    booking = payout_book(tenant=tenant_a, payout=payout, event=None)[0]  # does not raise
    later = timezone.now() + timedelta(hours=2)
    assert booking_post(booking_pk=booking.pk, now=later) == "failed: cannot build"
    booking.refresh_from_db()
    assert "fx_adjustment" in booking.last_error and world.ledger() == []
