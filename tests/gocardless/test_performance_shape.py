"""The cost SHAPE of event processing, pinned (counts, never timers).

- SQL statements per chunk do not grow with the number of resources in it: the chunk's mirror
  rows are locked together, and mirrors and audit entries are written together for resources
  that send no signal;
- which way a resource is written depends on what happened to it, never on who listens: with
  or without receivers the same statements run, the same signals are sent and the same rows
  are written;
- one GET per resource however many of its events arrive together;
- the bulk write produces the same rows as writing resource by resource (audit entries
  identical to ``audit_record``'s), and a failing write still fails only its own resource;
- the SDK's HTTP goes through one keep-alive session per thread, base URL and token, which
  does not rescan the environment on every call.
"""

import pytest
from django.db import connection as db
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test.utils import CaptureQueriesContext

from core.models import AuditEntry
from gocardless import event_apply, signals
from gocardless.client import GoCardlessClient
from gocardless.event_processing import events_process
from gocardless.events_store import events_store
from gocardless.models import EventOutcome, EventSource, GoCardlessEvent, Payment
from tests.gocardless.conftest import sim_connection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db

ACTIONS = ("created", "submitted", "confirmed", "paid_out")


@pytest.fixture(autouse=True)
def payments_without_receivers():
    """The product's receivers (collection engine, bookings) step aside, and come back
    afterwards, so that only the processor's own statements are counted; the tests that want
    a receiver connect their own (or the product's, through config/wiring.py)."""
    saved = {}
    for name in dir(signals):
        signal = getattr(signals, name)
        if isinstance(signal, Signal):
            saved[signal] = signal.receivers[:]
            signal.receivers[:] = []
            signal.sender_receivers_cache.clear()
    yield
    for signal, receivers in saved.items():
        signal.receivers[:] = receivers
        signal.sender_receivers_cache.clear()


@pytest.fixture
def sim(gocardless_simulator):
    return gocardless_simulator


@pytest.fixture
def connection(sim):
    return sim_connection(sim)


def _payments(sim, count: int) -> list[str]:
    mandate = sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]
    return sim.seed(payments=[{"mandate": mandate, "amount": 1000 + n}
                              for n in range(count)])["payments"]


def _events(payments: list[str], tag: str) -> list[dict]:
    """Four events per payment, delivered together (as the bench sends them)."""
    return [
        {"id": f"EV{tag}{n:05d}", "created_at": "2026-03-06T09:00:00.000Z",
         "resource_type": "payments", "action": ACTIONS[n % 4],
         "links": {"payment": payments[n // 4]}, "details": {}, "metadata": {}}
        for n in range(4 * len(payments))
    ]


def _queries_to_process(connection, payments, tag):
    pks = events_store(tenant=connection.tenant, events=_events(payments, tag),
                       source=EventSource.WEBHOOK)
    with CaptureQueriesContext(db) as captured:
        counts = events_process(event_pks=pks, chunk_size=len(pks))
    assert counts == {"applied": len(payments), "current": 3 * len(payments)}
    return len(captured)


def test_sql_per_chunk_does_not_grow_with_its_resources(
    sim, connection, django_assert_max_num_queries
):
    payments = _payments(sim, 50)
    # 10 new payments (40 events) and 25 new payments (100 events): the same statements.
    small = _queries_to_process(connection, payments[:10], "S")
    large = _queries_to_process(connection, payments[10:35], "L")
    assert small == large
    # lock events, clock, the connection (once per call), lock mirrors (+ placeholders + their
    # lock), savepoint, mirrors, audit entries, release, one UPDATE per outcome; 2 more here,
    # where the chunk's transaction is a savepoint in the test's. Was ~7 per resource (~180
    # for 100 events of 25 payments).
    pks = events_store(tenant=connection.tenant, events=_events(payments[35:], "M"),
                       source=EventSource.WEBHOOK)
    with django_assert_max_num_queries(14):
        events_process(event_pks=pks, chunk_size=100)


def test_one_get_per_resource_and_none_for_a_redelivery(sim, connection):
    payments = _payments(sim, 20)
    pks = events_store(tenant=connection.tenant, events=_events(payments, "G"),
                       source=EventSource.WEBHOOK)
    assert events_process(event_pks=pks) == {"applied": 20, "current": 60}
    assert sim.call_counts()["GET /payments/{id}"] == {"200": 20}
    # The same events delivered again: nothing stored, nothing fetched.
    assert events_store(tenant=connection.tenant, events=_events(payments, "G"),
                        source=EventSource.WEBHOOK) == []
    assert sim.call_counts()["GET /payments/{id}"] == {"200": 20}


def _audit_rows():
    return sorted(
        AuditEntry.objects.filter(action="payment.status_changed").values_list(
            "actor_type", "actor_user", "actor_label", "action", "object_type", "object_id",
            "before", "after", "message", "tenant",
        )
    )


def _shapes(audit_rows) -> set[str]:
    """Audit rows without what names the payment (object, amount)."""
    return {
        repr((*row[:5], row[6], {k: v for k, v in row[7].items() if k != "amount"}, row[9]))
        for row in audit_rows
    }


def test_bulk_and_one_by_one_write_the_same_rows(sim, connection, monkeypatch):
    payments = _payments(sim, 6)
    # Nothing to send (no signal for a payment pending submission): the bulk path.
    pks = events_store(tenant=connection.tenant, events=_events(payments[:3], "B"),
                       source=EventSource.WEBHOOK)
    events_process(event_pks=pks)
    bulk = _audit_rows()
    assert len(bulk) == 3
    # The same changes written one by one, each in its savepoint (the way a resource that
    # sends signals is written), forced here for resources in the same state.
    monkeypatch.setattr(event_apply.AppliedResource, "isolated", property(lambda self: True))
    pks = events_store(tenant=connection.tenant, events=_events(payments[3:], "O"),
                       source=EventSource.WEBHOOK)
    events_process(event_pks=pks)
    one_by_one = [row for row in _audit_rows() if row not in bulk]
    assert len(one_by_one) == 3
    assert _shapes(bulk) == _shapes(one_by_one)
    for payment in Payment.objects.filter(gocardless_id__in=payments):
        assert payment.raw == sim.resource("payments", payment.gocardless_id)
        assert payment.fetched_at is not None


def test_a_receiver_sees_its_row_written_already(sim, connection):
    payments = _payments(sim, 3)
    sim.advance(days=14)
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(Payment.objects.get(pk=instance.pk).status)

    signals.payment_confirmed.connect(receiver, weak=False)
    signals.payment_paid_out.connect(receiver, weak=False)
    try:
        pks = events_store(tenant=connection.tenant, events=_events(payments, "R"),
                           source=EventSource.WEBHOOK)
        events_process(event_pks=pks)
    finally:
        signals.payment_confirmed.disconnect(receiver)
        signals.payment_paid_out.disconnect(receiver)
    assert seen == ["paid_out"] * 6 == [sim.resource("payments", payments[0])["status"]] * 6


def _names_of_signals() -> dict:
    return {signal: name for name, signal in vars(signals).items() if isinstance(signal, Signal)}


@pytest.fixture
def sent(monkeypatch):
    """Every domain signal sent, as (name, gocardless id), whoever listens."""
    names, calls, real = _names_of_signals(), [], Signal.send

    def send(self, sender, **named):
        if self in names:
            calls.append((names[self], named["instance"].gocardless_id))
        return real(self, sender, **named)

    monkeypatch.setattr(Signal, "send", send)
    return calls


def _process_lifecycles(sim, connection, payments, tag) -> list[str]:
    """Store and process the four events of each payment; the statements, normalised
    (values, ids and savepoint names blanked) so two runs over other payments compare."""
    import re

    pks = events_store(tenant=connection.tenant, events=_events(payments, tag),
                       source=EventSource.WEBHOOK)
    with CaptureQueriesContext(db) as captured:
        assert events_process(event_pks=pks) == {"applied": 3, "current": 9}
    normalised = []
    for query in captured.captured_queries:
        sql = re.sub(r"'[^']*'", "?", query["sql"])
        sql = re.sub(r'"s\d+_x\d+"|\bs\d+_x\d+\b', "SAVEPOINT_NAME", sql)
        normalised.append(re.sub(r"\b\d+(\.\d+)?\b", "N", sql))
    return normalised


def _mirror_rows(sim, payments) -> list[tuple]:
    """What each payment's mirror holds, as compared with GoCardless's (the simulator's)."""
    rows = Payment.objects.filter(gocardless_id__in=payments).order_by("gocardless_id")
    return [
        (p.status, p.currency, p.fetched_at is not None,
         p.raw == sim.resource("payments", p.gocardless_id),
         p.amount == sim.resource("payments", p.gocardless_id)["amount"])
        for p in rows
    ]


def test_mirrors_are_written_identically_with_no_listeners_connected(sim, connection, sent):
    """Every receiver disconnected (this module's autouse fixture) against the product's
    wiring (config/wiring.py): the same signals are sent, the same mirror rows and money audit
    entries are written."""
    from config.wiring import wiring_connect

    payments = _payments(sim, 6)
    sim.advance(days=14)
    assert not signals.payment_confirmed.has_listeners(Payment)
    _process_lifecycles(sim, connection, payments[:3], "N")
    alone = ([name for name, _ in sent], _mirror_rows(sim, payments[:3]), _audit_rows())
    assert alone[0] == ["payment_confirmed", "payment_paid_out"] * 3
    sent.clear()
    wiring_connect()  # the product's receivers (the fixture removes them again afterwards)
    assert signals.payment_confirmed.has_listeners(Payment)
    _process_lifecycles(sim, connection, payments[3:], "W")
    wired_audit = [row for row in _audit_rows() if row not in alone[2]]
    wired = ([name for name, _ in sent], _mirror_rows(sim, payments[3:]), wired_audit)
    assert wired[0] == alone[0]
    assert wired[1] == alone[1] == [("paid_out", "EUR", True, True, True)] * 3
    assert len(wired[2]) == len(alone[2]) == 3
    assert _shapes(wired[2]) == _shapes(alone[2])


def test_the_statements_do_not_depend_on_who_listens(sim, connection, sent):
    payments = _payments(sim, 6)
    sim.advance(days=14)
    alone = _process_lifecycles(sim, connection, payments[:3], "A")
    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs["instance"].gocardless_id)

    for signal in _names_of_signals():
        signal.connect(listener, weak=False)
    try:
        listened = _process_lifecycles(sim, connection, payments[3:], "L")
    finally:
        for signal in _names_of_signals():
            signal.disconnect(listener)
    assert len(heard) == 6
    assert listened == alone
    # Each payment sends signals, so each is written in its own savepoint.
    assert sum(sql.startswith("SAVEPOINT") for sql in alone) >= 3


def test_a_failing_write_fails_only_its_resource(sim, connection, monkeypatch):
    payments = _payments(sim, 3)  # pending submission: nothing to send, the bulk path
    bad = payments[1]
    bulk_calls = []

    def refuse_bulk(objs):
        bulk_calls.append(len(objs))
        raise RuntimeError("bulk write refused")

    def refuse_one(sender, instance, **kwargs):
        if instance.gocardless_id == bad:
            raise RuntimeError("this row cannot be written")

    monkeypatch.setattr(event_apply, "mirrors_save", refuse_bulk)
    post_save.connect(refuse_one, sender=Payment, weak=False)
    try:
        pks = events_store(tenant=connection.tenant, events=_events(payments, "F"),
                           source=EventSource.WEBHOOK)
        counts = events_process(event_pks=pks)
    finally:
        post_save.disconnect(refuse_one, sender=Payment)
    assert bulk_calls == [3]
    assert counts == {"applied": 2, "current": 6, "failed": 4}
    failed = GoCardlessEvent.objects.filter(resource_id=bad)
    assert all(e.processed_at is None and "cannot be written" in e.error for e in failed)
    assert not Payment.objects.filter(gocardless_id=bad).exists()  # its placeholder is gone
    assert AuditEntry.objects.filter(action="payment.status_changed").count() == 2
    assert GoCardlessEvent.objects.filter(outcome=EventOutcome.APPLIED).count() == 2


def test_sdk_http_goes_through_one_keep_alive_session(sim, monkeypatch):
    import requests

    first = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)
    second = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)
    other = GoCardlessClient(access_token="another-token", base_url=sim.url, timeout=5)
    session = first.sdk._api_client._session
    assert second.sdk._api_client._session is session
    assert other.sdk._api_client._session is not session  # tokens never share one
    assert session.trust_env is False
    # The environment is read when the session is made, not on every call.
    scans = []
    real = requests.utils.get_environ_proxies
    monkeypatch.setattr(requests.utils, "get_environ_proxies",
                        lambda *a, **k: scans.append(a) or real(*a, **k))
    monkeypatch.setattr(requests.sessions, "get_environ_proxies",
                        lambda *a, **k: scans.append(a) or real(*a, **k))
    mandate = sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]
    for _ in range(3):
        assert first.mandate_get(mandate)["id"] == mandate
    assert scans == []
    assert sim.call_counts()["GET /mandates/{id}"] == {"200": 3}
    assert len(session.cookies) == 0
