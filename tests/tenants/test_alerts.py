"""Alerts to tenant administrators (tenants/alerts.py) from every place that raises one.

Each alert: e-mailed once to the tenant's active administrators only (not its operators, not
another tenant's administrators), never for an inactive tenant, not again for the same
condition of the same object, and recorded as an ``alert.sent`` audit entry.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.audit import Actor
from core.models import AuditEntry
from exact.connections import connection_mark_needs_reauth as exact_mark_needs_reauth
from exact.locks import lock_row
from exact.models import ExactConnection
from gocardless import errors
from gocardless.client import GoCardlessClient
from gocardless.connect import connection_test
from gocardless.connection_status import connection_mark_needs_reauth as gc_mark_needs_reauth
from gocardless.connection_status import connection_set_status
from gocardless.events_sweep import events_gave_up_alert, events_retry_due
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import EventSource, GoCardlessEvent
from reconciliation.bookings.models import Booking, BookingState, Rule
from reconciliation.bookings.posting import MAX_ATTEMPTS, bookings_gave_up_alert, bookings_sweep
from reconciliation.collection.attention import attention_digests_send
from reconciliation.collection.models import AttemptState
from reconciliation.collection.schedules import DIGEST_SCHEDULE_NAME, collection_schedules_ensure
from tenants.alerts import ALERT_REPEAT_AFTER, alert_send, tenant_admin_emails
from tenants.models import Role
from tests.conftest import _member
from tests.factories import ExactConnectionFactory, GoCardlessConnectionFactory
from tests.reconciliation.collection.factories import CollectionAttemptFactory

pytestmark = pytest.mark.django_db

BASE = "https://connector.example.test"  # PUBLIC_BASE_URL of tests/settings.py


@pytest.fixture
def people(tenant_a, tenant_b, admin_of_a, operator_of_a, viewer_of_a):
    """Alice administers A; Bob administers B; A also has an operator, a viewer and a
    deactivated administrator, none of whom get alerts."""
    bob = _member(tenant_b, Role.ADMIN, "bob-admin")
    gone = _member(tenant_a, Role.ADMIN, "gone-admin")
    gone.is_active = False
    gone.save()
    return {"alice": admin_of_a, "bob": bob}


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Run a block and then the on-commit callbacks it registered (e-mails go out then)."""

    class Send:
        def __enter__(self):
            self.ctx = django_capture_on_commit_callbacks(execute=True)
            return self.ctx.__enter__()

        def __exit__(self, *exc):
            return self.ctx.__exit__(*exc)

    return Send


def sent(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="alert.sent", **filters).order_by("id"))


def assert_mail(message, *, to, tenant, words=(), link=""):
    assert message.to == [to.email]
    assert tenant.name in message.subject and tenant.name in message.body
    assert "What to do:" in message.body
    for word in words:
        assert word in message.body or word in message.subject, word
    if link:
        assert link in message.body


def test_recipients_are_the_active_admins_of_that_tenant(people, tenant_a, tenant_b):
    assert tenant_admin_emails(tenant=tenant_a) == [people["alice"].email]
    assert tenant_admin_emails(tenant=tenant_b) == [people["bob"].email]


def test_no_admin_or_refusing_mail_server_is_logged_and_audited(
    tenant_a, send, mailoutbox, caplog, monkeypatch
):
    with send():
        assert alert_send(tenant=tenant_a, subject="x", what="y", todo="z", link="l") is False
    assert mailoutbox == [] and "no active administrator" in caplog.text
    assert AuditEntry.objects.filter(action="alert.undelivered", tenant=tenant_a).count() == 1

    _member(tenant_a, Role.ADMIN, "alice-admin")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("tenants.alerts.send_mail", refuse)
    with send():
        alert_send(tenant=tenant_a, subject="x", what="y", todo="z", link="l")  # no raise
    assert "ConnectionRefusedError" in caplog.text
    assert AuditEntry.objects.filter(action="alert.undelivered", tenant=tenant_a).count() == 2


# --- 0. Exact connection needs re-authorisation (moved into tenants/alerts.py) ----------------


def _exact_reauth(connection, reason="Exact refused the refresh token: invalid_grant"):
    with transaction.atomic():
        row = lock_row(ExactConnection, connection.pk)
        exact_mark_needs_reauth(connection=row, reason=reason)


def test_exact_needs_reauth_alerts_the_admins_once(people, tenant_a, tenant_b, send, mailoutbox):
    connection = ExactConnectionFactory(tenant=tenant_a)
    ExactConnectionFactory(tenant=tenant_b)
    with send():
        _exact_reauth(connection)
    (message,) = mailoutbox
    assert_mail(
        message,
        to=people["alice"],
        tenant=tenant_a,
        words=("Exact Online must be reconnected", "Reconnect Exact Online", "invalid_grant"),
        link=f"{BASE}/admin/exact/exactconnection/{connection.pk}/change/",
    )
    connection.refresh_from_db()
    assert connection.refresh_token not in message.body
    assert connection.access_token not in message.body
    (entry,) = sent(tenant=tenant_a)
    assert entry.object_type == "exact.exactconnection" and entry.object_id == str(connection.pk)
    assert entry.after["recipients"] == [people["alice"].email]
    assert "Exact Online must be reconnected" in entry.message

    with send():
        _exact_reauth(connection, reason="still broken")  # already needs re-auth
    assert len(mailoutbox) == 1 and len(sent()) == 1


def test_exact_needs_reauth_of_an_inactive_tenant_sends_nothing(people, tenant_a, send, mailoutbox):
    connection = ExactConnectionFactory(tenant=tenant_a)
    tenant_a.is_active = False
    tenant_a.save()
    with send():
        _exact_reauth(connection)
    assert mailoutbox == [] and sent() == []


# --- 1. GoCardless connection refused (401/403) -----------------------------------------------


def test_gocardless_refused_token_alerts_the_admins_once(
    people, tenant_a, tenant_b, send, mailoutbox
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    GoCardlessConnectionFactory(tenant=tenant_b)
    with send():
        assert gc_mark_needs_reauth(connection=connection, reason="401 access token revoked")
    (message,) = mailoutbox
    assert_mail(
        message,
        to=people["alice"],
        tenant=tenant_a,
        words=("GoCardless must be reconnected", "Test connection", "access token revoked"),
        link=f"{BASE}/admin/gocardless/gocardlessconnection/{connection.pk}/change/",
    )
    connection.refresh_from_db()
    assert connection.access_token not in message.body
    assert connection.webhook_secret not in message.body
    (entry,) = sent(tenant=tenant_a)
    assert entry.object_type == "gocardless.gocardlessconnection"
    assert entry.object_id == str(connection.pk)

    with send():  # every further 401 while it needs re-authorisation: no new e-mail
        assert not gc_mark_needs_reauth(connection=connection, reason="401 again")
        connection_test(connection=connection, actor=Actor.system("t"), client=_Refusing())
    assert len(mailoutbox) == 1 and len(sent()) == 1

    # Reconnected, then refused again: a new condition, a new e-mail.
    connection_set_status(connection=connection, status=GoCardlessStatus.CONNECTED,
                          actor=Actor.system("t"))
    with send():
        gc_mark_needs_reauth(connection=connection, reason="403 forbidden")
    assert len(mailoutbox) == 2 and len(sent()) == 2


class _Refusing:
    def creditors_list(self):
        raise errors.AuthError("Access token not active", status=401)


def test_gocardless_401_from_the_api_marks_and_alerts(
    people, tenant_a, gocardless_simulator, send, mailoutbox
):
    from tests.gocardless.conftest import sim_connection

    connection = sim_connection(
        gocardless_simulator, tenant=tenant_a, access_token="tok-SECRET-not-valid"
    )
    client = GoCardlessClient.for_connection(connection)  # the default 401/403 hook
    with send(), pytest.raises(errors.AuthError):
        client.creditors_list()
    connection.refresh_from_db()
    assert connection.status == GoCardlessStatus.NEEDS_REAUTH
    (message,) = mailoutbox
    assert message.to == [people["alice"].email]
    assert "tok-SECRET" not in message.body and "tok-SECRET" not in message.subject
    assert len(sent(tenant=tenant_a)) == 1


def test_gocardless_test_connection_refused_alerts(people, tenant_a, send, mailoutbox):
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    with send():
        result = connection_test(
            connection=connection, actor=Actor.for_user(people["alice"]), client=_Refusing()
        )
    assert result["ok"] is False
    (message,) = mailoutbox
    assert message.to == [people["alice"].email]
    assert len(sent(tenant=tenant_a)) == 1


def test_gocardless_refused_for_an_inactive_tenant_sends_nothing(
    people, tenant_a, send, mailoutbox
):
    connection = GoCardlessConnectionFactory(tenant=tenant_a)
    tenant_a.is_active = False
    tenant_a.save()
    with send():
        gc_mark_needs_reauth(connection=connection, reason="401")
    assert mailoutbox == [] and sent() == []


# --- 2. Bookings that give up -----------------------------------------------------------------


def _booking(tenant, n: int, **fields) -> Booking:
    values = dict(
        tenant=tenant,
        key=f"receipt:PM{n:06d}:1",
        rule=Rule.RECEIPT,
        gocardless_id=f"PM{n:06d}",
        reference=Booking.new_reference(),
        currency="EUR",
        amount_minor=12100,
        booking_date=dt.date(2026, 11, 20),
        state=BookingState.FAILED,
        attempts=MAX_ATTEMPTS - 1,
        next_retry_at=timezone.now() - dt.timedelta(minutes=1),
        last_error="Exact refused: the period is closed",
    )
    values.update(fields)
    return Booking.objects.create(**values)


@pytest.fixture
def exact_both(tenant_a, tenant_b):
    # Usable connections; no booking settings, so the last attempt fails without a call.
    ExactConnectionFactory(tenant=tenant_a)
    ExactConnectionFactory(tenant=tenant_b)


def test_booking_that_gives_up_is_alerted_once(
    people, tenant_a, tenant_b, exact_both, send, mailoutbox
):
    mine = _booking(tenant_a, 1)
    theirs = _booking(tenant_b, 2)
    with send():
        bookings_sweep()
    mine.refresh_from_db()
    assert mine.state == BookingState.GAVE_UP
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        [people["alice"].email, people["bob"].email]
    )
    (message,) = [m for m in mailoutbox if m.to == [people["alice"].email]]
    assert_mail(
        message,
        to=people["alice"],
        tenant=tenant_a,
        words=("1 booking could not be posted", mine.sentence(), "EUR 121.00",
               "Fri 20 Nov 2026", "Re-post"),
        link=f"{BASE}/admin/bookings/booking/?state__exact=gave_up",
    )
    assert theirs.gocardless_id not in message.body and tenant_b.name not in message.body
    (entry,) = sent(tenant=tenant_a)
    assert (entry.object_type, entry.object_id) == ("bookings.booking", str(mine.pk))

    for _ in range(2):  # every minute's sweep, and after the quiet hour: not again
        with send():
            bookings_sweep()
            bookings_gave_up_alert(now=timezone.now() + ALERT_REPEAT_AFTER * 2)
    assert len(mailoutbox) == 2 and len(sent()) == 2


def test_bookings_giving_up_in_a_row_make_one_mail_an_hour(
    people, tenant_a, exact_both, send, mailoutbox
):
    first = _booking(tenant_a, 1)
    with send():
        bookings_sweep()
    assert len(mailoutbox) == 1
    second = _booking(tenant_a, 2)
    third = _booking(tenant_a, 3)
    with send():
        bookings_sweep()  # both give up within the hour: no e-mail yet
    assert len(mailoutbox) == 1
    with send():
        bookings_gave_up_alert(now=timezone.now() + ALERT_REPEAT_AFTER + dt.timedelta(minutes=1))
    assert len(mailoutbox) == 2
    later = mailoutbox[1].body
    assert "2 bookings" in mailoutbox[1].subject
    assert second.gocardless_id in later and third.gocardless_id in later
    assert first.gocardless_id not in later


def test_booking_of_an_inactive_tenant_is_alerted_after_activation(
    people, tenant_a, exact_both, send, mailoutbox
):
    booking = _booking(tenant_a, 1, state=BookingState.GAVE_UP, attempts=MAX_ATTEMPTS,
                       next_retry_at=None)
    tenant_a.is_active = False
    tenant_a.save()
    with send():
        bookings_sweep()
    assert mailoutbox == [] and sent() == []
    tenant_a.is_active = True
    tenant_a.save()
    with send():
        bookings_sweep()
        bookings_sweep()
    assert len(mailoutbox) == 1 and booking.gocardless_id in mailoutbox[0].body


# --- 3. GoCardless events that give up --------------------------------------------------------


def _event(tenant, n: int, **fields) -> GoCardlessEvent:
    past = timezone.now() - dt.timedelta(minutes=5)
    values = dict(
        tenant=tenant,
        event_id=f"EV{n:06d}",
        resource_type="payments",
        action="failed",
        resource_id=f"PM{n:06d}",
        source=EventSource.WEBHOOK,
        attempts=settings.GOCARDLESS_EVENT_MAX_ATTEMPTS - 1,
        failed_at=past,
        next_attempt_at=past,
        error="ServerError: 503",
    )
    values.update(fields)
    return GoCardlessEvent.objects.create(**values)


@pytest.fixture
def gc_broken(tenant_a, tenant_b):
    # Processing fails without calling GoCardless (the connection is not connected), and
    # the connection alert was sent earlier (these are not transitions).
    GoCardlessConnectionFactory(tenant=tenant_a, status=GoCardlessStatus.NEEDS_REAUTH)
    GoCardlessConnectionFactory(tenant=tenant_b, status=GoCardlessStatus.NEEDS_REAUTH)


def test_event_that_gives_up_is_alerted_once(
    people, tenant_a, tenant_b, gc_broken, send, mailoutbox
):
    mine = _event(tenant_a, 1)
    theirs = _event(tenant_b, 2)
    with send():
        events_retry_due()
    mine.refresh_from_db()
    assert mine.next_attempt_at is None and mine.processed_at is None  # gave up
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        [people["alice"].email, people["bob"].email]
    )
    (message,) = [m for m in mailoutbox if m.to == [people["alice"].email]]
    assert_mail(
        message,
        to=people["alice"],
        tenant=tenant_a,
        words=("1 GoCardless event could not be processed", mine.event_id,
               "Reprocess selected events"),
        link=f"{BASE}/admin/gocardless/gocardlessevent/?processing=failed",
    )
    assert theirs.event_id not in message.body
    (entry,) = sent(tenant=tenant_a)
    assert (entry.object_type, entry.object_id) == ("gocardless.gocardlessevent", str(mine.pk))

    with send():
        events_retry_due()
        events_gave_up_alert(now=timezone.now() + ALERT_REPEAT_AFTER * 2)
    assert len(mailoutbox) == 2 and len(sent()) == 2


def test_events_giving_up_later_wait_for_the_quiet_hour(
    people, tenant_a, gc_broken, send, mailoutbox
):
    _event(tenant_a, 1)
    with send():
        events_retry_due()
    second = _event(tenant_a, 2)
    with send():
        events_retry_due()
    assert len(mailoutbox) == 1
    with send():
        events_gave_up_alert(now=timezone.now() + ALERT_REPEAT_AFTER + dt.timedelta(minutes=1))
    assert len(mailoutbox) == 2 and second.event_id in mailoutbox[1].body


def test_event_of_an_inactive_tenant_is_not_alerted(people, tenant_a, gc_broken, send, mailoutbox):
    _event(tenant_a, 1, next_attempt_at=None,
           attempts=settings.GOCARDLESS_EVENT_MAX_ATTEMPTS)
    tenant_a.is_active = False
    tenant_a.save()
    with send():
        events_retry_due()
    assert mailoutbox == [] and sent() == []
    tenant_a.is_active = True
    tenant_a.save()
    with send():
        events_retry_due()
    assert len(mailoutbox) == 1


# --- 4. Collections in needs attention: one e-mail per tenant per day -------------------------

# Europe/Amsterdam is UTC+1 in November: 06:30 UTC is 07:30 there (before the digest hour).
EARLY = dt.datetime(2026, 11, 26, 6, 30, tzinfo=dt.UTC)
MORNING = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.UTC)
AFTERNOON = dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC)
NEXT_MORNING = dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC)


def test_needs_attention_digest_once_a_day_with_what_is_new(
    people, tenant_a, tenant_b, send, mailoutbox
):
    # "Already sent today" is read from the audit trail's timestamps, so the rows this test
    # writes must carry the same instants as the ``now`` it passes: the clock is pinned and
    # moved through the day with it (a real clock made this test fail on any later date).
    with time_machine.travel(EARLY - dt.timedelta(minutes=30), tick=False) as clock:
        charged_back = CollectionAttemptFactory(
            tenant=tenant_a, flag="Charged back by the customer")
        used_up = CollectionAttemptFactory(tenant=tenant_a, flag="Payment failed: retries used up")
        CollectionAttemptFactory(tenant=tenant_a, state=AttemptState.RESOLVED, flag="old news")
        theirs = CollectionAttemptFactory(tenant=tenant_b)

        clock.move_to(EARLY)
        with send():
            assert attention_digests_send(now=EARLY) == 0
        assert mailoutbox == []

        clock.move_to(MORNING)
        with send():
            assert attention_digests_send(now=MORNING) == 3
        assert sorted(m.to[0] for m in mailoutbox) == sorted(
            [people["alice"].email, people["bob"].email]
        )
        (message,) = [m for m in mailoutbox if m.to == [people["alice"].email]]
        assert_mail(
            message,
            to=people["alice"],
            tenant=tenant_a,
            words=("2 collections need attention", f"Invoice {charged_back.invoice_number}",
                   "Charged back by the customer", f"Invoice {used_up.invoice_number}",
                   "Retry now"),
            link=f"{BASE}/admin/collection/collectionattempt/?state=needs_attention",
        )
        assert "old news" not in message.body and str(theirs.invoice_number) not in message.body
        assert {e.object_id for e in sent(tenant=tenant_a)} == {
            str(charged_back.pk), str(used_up.pk)
        }

        clock.move_to(MORNING + dt.timedelta(minutes=10))
        mandate_gone = CollectionAttemptFactory(tenant=tenant_a, flag="Mandate cancelled")
        with send():  # same day: nothing, however often the schedule runs
            clock.move_to(MORNING + dt.timedelta(hours=1))
            assert attention_digests_send(now=MORNING + dt.timedelta(hours=1)) == 0
            clock.move_to(AFTERNOON)
            assert attention_digests_send(now=AFTERNOON) == 0
        assert len(mailoutbox) == 2

        with send():  # next day: only what is new
            clock.move_to(NEXT_MORNING)
            assert attention_digests_send(now=NEXT_MORNING) == 1
            clock.move_to(NEXT_MORNING + dt.timedelta(hours=1))
            assert attention_digests_send(now=NEXT_MORNING + dt.timedelta(hours=1)) == 0
        assert len(mailoutbox) == 3
        latest = mailoutbox[2]
        assert latest.to == [people["alice"].email]
        assert str(mandate_gone.invoice_number) in latest.body
        assert str(charged_back.invoice_number) not in latest.body


def test_needs_attention_digest_skips_an_inactive_tenant(people, tenant_a, send, mailoutbox):
    CollectionAttemptFactory(tenant=tenant_a)
    tenant_a.is_active = False
    tenant_a.save()
    with send():
        assert attention_digests_send(now=MORNING) == 0
    assert mailoutbox == [] and sent() == []


def test_needs_attention_digest_is_a_registered_schedule():
    from django_q.models import Schedule

    collection_schedules_ensure()
    collection_schedules_ensure()
    (schedule,) = Schedule.objects.filter(name=DIGEST_SCHEDULE_NAME)
    assert schedule.minutes == 60 and schedule.repeats == -1
    task = import_string(schedule.func)
    assert task.__name__ == "attention_digest_task"


def test_digest_task_sends(people, tenant_a, send, mailoutbox, monkeypatch):
    CollectionAttemptFactory(tenant=tenant_a)
    monkeypatch.setattr("reconciliation.collection.attention.timezone.now", lambda: MORNING)
    from reconciliation.collection.tasks import attention_digest_task

    with send():
        assert attention_digest_task() == 1
    assert len(mailoutbox) == 1


def test_a_long_list_is_cut_and_links_to_the_rest(people, tenant_a, send, mailoutbox):
    from tenants.alerts import LIST_LIMIT

    for n in range(LIST_LIMIT + 3):
        _booking(tenant_a, n, state=BookingState.GAVE_UP, attempts=MAX_ATTEMPTS,
                 next_retry_at=None)
    with send():
        assert bookings_gave_up_alert() == LIST_LIMIT + 3
    (message,) = mailoutbox
    assert f"{LIST_LIMIT + 3} bookings" in message.subject
    assert "... and 3 more (see the link below)" in message.body
    assert message.body.count("Payment PM") == LIST_LIMIT
    assert len(sent(tenant=tenant_a)) == LIST_LIMIT + 3  # every booking is marked e-mailed
