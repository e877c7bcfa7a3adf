"""manage.py gocardless_events: replay stored events through the same processor."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEntry
from gocardless.client import GoCardlessClient
from gocardless.event_processing import events_process
from gocardless.events_store import events_store
from gocardless.models import EventOutcome, EventSource, GoCardlessEvent, Payment
from reconciliation.bookings.models import Booking, BookingSettings
from tests.factories import TenantFactory
from tests.gocardless.conftest import sim_connection
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(gocardless_simulator):
    return gocardless_simulator


@pytest.fixture
def connection(sim, tenant_a):
    return sim_connection(sim, tenant=tenant_a)


@pytest.fixture
def api(sim):
    return GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=5)


@pytest.fixture
def mandate_id(sim):
    return sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]


def _pay(api, mandate_id, key="T1"):
    """A payment the way the collection engine makes it (so bookings take it)."""
    return api.payment_create(
        params={"amount": 1250, "currency": "EUR", "links": {"mandate": mandate_id},
                "metadata": {"mlc_attempt": f"{key}/1", "exact_invoice": "1001",
                             "exact_account": "a1b2c3"}},
        idempotency_key=key,
    )["id"]


def _store(sim, connection, only=None) -> list[int]:
    events = [e for e in sim.events() if only is None or only(e)]
    return events_store(tenant=connection.tenant, events=events, source=EventSource.WEBHOOK)


def _replay(*args) -> dict:
    out = StringIO()
    call_command("gocardless_events", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def _money_audits() -> int:
    return AuditEntry.objects.filter(action__endswith=".status_changed").exclude(
        action__startswith="gocardlessconnection").count()


def test_replaying_a_failed_event_processes_it(sim, connection, api, mandate_id, signal_log):
    payment_id = _pay(api, mandate_id)
    sim.advance(days=5)
    sim.inject("error_500", 1, method="GET", path=f"/payments/{payment_id}")
    pks = _store(sim, connection, only=lambda e: e["action"] == "confirmed")
    assert events_process(event_pks=pks) == {"failed": 1}

    result = _replay("--failed")
    assert [e["event_id"] for e in result["events"]] == [
        GoCardlessEvent.objects.get(pk=pks[0]).event_id]
    assert result["counts"] == {"applied": 1}
    event = GoCardlessEvent.objects.get(pk=pks[0])
    assert event.processed_at and event.outcome == EventOutcome.APPLIED and event.error == ""
    assert Payment.objects.get(gocardless_id=payment_id).status == "confirmed"
    assert signal_log.names(payment_id) == ["payment_confirmed"]
    requested = AuditEntry.objects.get(action="gocardlessevent.reprocess_requested")
    assert requested.actor_label == "manage.py gocardless_events"
    assert _replay("--failed") == {"dry_run": False, "events": [], "counts": None}


def test_replaying_processed_events_changes_nothing(
    sim, connection, api, mandate_id, signal_log
):
    BookingSettings.objects.create(
        tenant=connection.tenant, clearing_journal_code="21", receivables_gl_code="1300",
        fees_gl_code="4600", transfer_gl_code="1190",
    )
    payment_id = _pay(api, mandate_id)
    sim.advance(days=5)
    events_process(event_pks=_store(sim, connection))
    assert Booking.objects.filter(gocardless_id=payment_id).count() == 1  # the receipt
    before = (list(Booking.objects.values_list("key", "state", "amount_minor")),
              _money_audits(), list(signal_log.calls))
    confirmed = GoCardlessEvent.objects.get(resource_id=payment_id, action="confirmed")

    assert _replay("--ids", confirmed.event_id)["counts"] == {"applied": 1}
    assert _replay("--type", "payments")["counts"]["applied"] == 1
    after = (list(Booking.objects.values_list("key", "state", "amount_minor")),
             _money_audits(), list(signal_log.calls))
    assert after == before
    assert not GoCardlessEvent.objects.filter(processed_at__isnull=True).exists()


def test_type_filters_by_resource_type_and_action(sim, connection, api, mandate_id):
    _pay(api, mandate_id)
    sim.advance(days=5)
    _store(sim, connection)
    stored = list(GoCardlessEvent.objects.values_list("resource_type", "action"))
    assert ("payments", "confirmed") in stored and ("payments", "created") in stored

    def types(*args):
        return {e["type"] for e in _replay("--dry-run", "--type", *args)["events"]}

    assert types("payments.confirmed") == {"payments.confirmed"}
    assert types("payments") == {f"payments.{a}" for t, a in stored if t == "payments"}
    assert types("refunds") == set()
    # A dry run lists, and changes nothing.
    assert not AuditEntry.objects.filter(action="gocardlessevent.reprocess_requested").exists()
    assert not GoCardlessEvent.objects.filter(processed_at__isnull=False).exists()


def test_a_human_readable_listing_by_default(sim, connection, api, mandate_id):
    _pay(api, mandate_id)
    _store(sim, connection)
    out = StringIO()
    call_command("gocardless_events", "--type", "payments.created", "--dry-run", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "1 event(s) (dry run, nothing replayed):"
    assert "payments.created" in lines[1] and "not processed" in lines[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ids", "EV_NOT_THERE,EV_NOR_THIS"], "no stored GoCardless event EV_NOR_THIS, "
                                                "EV_NOT_THERE"),
        (["--ids", " , "], "--ids needs at least one event id"),
        (["--type", "paymnts"], "unknown event type 'paymnts'"),
        (["--type", "payments."], "unknown event type 'payments.'"),
        (["--failed", "--tenant", "nobody"], "no tenant 'nobody'"),
    ],
)
def test_what_names_nothing_is_a_clear_error(connection, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("gocardless_events", *args, stdout=StringIO())
    assert not AuditEntry.objects.filter(action="gocardlessevent.reprocess_requested").exists()


def test_a_selection_is_required_and_only_one(connection):
    with pytest.raises(CommandError):
        call_command("gocardless_events", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("gocardless_events", "--failed", "--type", "payments", stdout=StringIO())


def test_tenant_scopes_the_replay(sim, connection, tenant_b, api, mandate_id):
    other = sim_connection(sim, tenant=tenant_b, organisation_id="")
    _pay(api, mandate_id)
    mine, theirs = _store(sim, connection), _store(sim, other)
    GoCardlessEvent.objects.filter(pk__in=mine + theirs).update(failed_at="2026-03-01T00:00Z")
    event_id = GoCardlessEvent.objects.get(pk=mine[0]).event_id  # the same id in both tenants

    assert {e["tenant"] for e in _replay("--failed", "--dry-run")["events"]} == {
        "alpha", "bravo"}
    result = _replay("--failed", "--tenant", "bravo")
    assert {e["tenant"] for e in result["events"]} == {"bravo"}
    assert not GoCardlessEvent.objects.filter(pk__in=theirs, processed_at__isnull=True).exists()
    assert not GoCardlessEvent.objects.filter(pk__in=mine, processed_at__isnull=False).exists()

    result = _replay("--ids", event_id, "--tenant", "alpha")
    assert [(e["event_id"], e["tenant"]) for e in result["events"]] == [(event_id, "alpha")]
    TenantFactory(slug="charlie")  # a tenant without that event
    with pytest.raises(CommandError, match=f"no stored GoCardless event {event_id}"):
        call_command("gocardless_events", "--ids", event_id, "--tenant", "charlie",
                     stdout=StringIO())


def test_an_inactive_tenants_events_are_left_waiting(sim, connection, api, mandate_id):
    _pay(api, mandate_id)
    pks = _store(sim, connection)
    GoCardlessEvent.objects.filter(pk__in=pks).update(failed_at="2026-03-01T00:00Z")
    connection.tenant.is_active = False
    connection.tenant.save(update_fields=["is_active"])
    assert _replay("--failed")["events"] == []
    event_id = GoCardlessEvent.objects.get(pk=pks[0]).event_id
    with pytest.raises(CommandError, match="inactive tenant"):
        call_command("gocardless_events", "--ids", event_id, stdout=StringIO())


def test_an_event_that_fails_again_exits_with_an_error(sim, connection, api, mandate_id):
    payment_id = _pay(api, mandate_id)
    pks = _store(sim, connection)
    events_process(event_pks=pks)
    sim.inject("error_500", 1, method="GET", path=f"/payments/{payment_id}")
    out = StringIO()
    with pytest.raises(CommandError, match="1 event\\(s\\) failed again") as raised:
        call_command("gocardless_events", "--ids",
                     GoCardlessEvent.objects.get(pk=pks[0]).event_id, "--json", stdout=out)
    assert raised.value.returncode == 1
    assert json.loads(out.getvalue())["counts"] == {"failed": 1}
