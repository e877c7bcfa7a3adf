"""Token care: one refresh at a time, only inside Exact's window, and a broken or lost chain
stops the connection loudly instead of being retried."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from exact.client import ExactClient
from exact.errors import ExactNeedsReauth, ExactTokenError
from exact.keepalive import token_keepalive
from exact.models import ConnectionStatus, ExactConnection, ExactGrant
from exact.sync import accounts_sync
from exact.tasks import exact_keepalive_task, exact_sync_task
from exact.tokens import REFRESH_AFTER
from tests.concurrency import at_once
from tests.exact.conftest import connect, token_calls
from tests.plugins.exact_sim import ExactApi

pytestmark = pytest.mark.django_db


def _age(connection, seconds):
    """Make our copy of the token `seconds` old (the simulator must agree separately)."""
    ExactGrant.objects.filter(pk=connection.grant_id).update(
        token_issued_at=timezone.now() - timedelta(seconds=seconds)
    )
    connection.refresh_from_db()


def _journals(api):
    return list(api.iter_rows("financial/Journals", select=("Code",)))


def test_fresh_token_is_used_without_refreshing(sim, connection, api):
    _journals(api)
    assert token_calls(sim) == 0


def test_due_token_is_refreshed_once_and_persisted(sim, connection, api):
    old_access, old_refresh = connection.access_token, connection.refresh_token
    _age(connection, 580)
    sim.advance(580)
    _journals(api)
    _journals(api)
    assert token_calls(sim) == 1
    connection.refresh_from_db()
    assert connection.access_token != old_access and connection.refresh_token != old_refresh
    assert connection.last_refresh_at is not None
    assert timezone.now() - connection.token_issued_at < timedelta(seconds=5)
    assert connection.access_expires_at - connection.token_issued_at == timedelta(seconds=600)
    assert connection.status == ConnectionStatus.CONNECTED


def test_refresh_window_has_a_safety_margin():
    # never before Exact's 570 s floor; the token stays valid ≥ 28 s for the request
    assert timedelta(seconds=570) < REFRESH_AFTER <= timedelta(seconds=575)


def test_too_early_keeps_the_valid_token(sim, connection, api):
    _age(connection, 580)  # our clock says due, Exact's does not
    assert _journals(api)
    assert _journals(api)  # not asked again on the next call: retried 10 s later
    counts = sim.call_counts()["POST /api/oauth2/token grant_type=refresh_token"]
    assert counts == {"total": 1, "400": 1}
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED


def _assert_reported(connection, mail_outbox, admin, words):
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_REAUTH
    assert words in connection.status_reason
    entry = AuditEntry.objects.get(action="exact_connection.needs_reauth")
    assert entry.tenant_id == connection.tenant_id and words in entry.message
    assert connection.refresh_token not in str(entry.before) + str(entry.after) + entry.message
    assert len(mail_outbox) == 1 and mail_outbox[0].to == [admin.email]
    assert "Reconnect" in mail_outbox[0].body


def test_old_refresh_token_used_needs_reauth(
    sim, connection, api, admin_of_a, exact_mail, django_capture_on_commit_callbacks
):
    thief = ExactApi(sim)
    thief.tokens = {"refresh_token": connection.refresh_token}
    sim.advance(580)
    assert thief.refresh().status_code == 200  # the chain rotates behind our back
    _age(connection, 580)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ExactNeedsReauth):
        _journals(api)
    _assert_reported(connection, exact_mail, admin_of_a, "Old refresh token used")
    # its jobs stop: nothing is sent any more
    before = sim.call_counts()
    with pytest.raises(ExactNeedsReauth):
        accounts_sync(connection=connection)
    assert exact_sync_task(connection.tenant_id).startswith("skipped")
    assert sim.call_counts() == before


def test_expired_refresh_token_needs_reauth(
    sim, connection, api, admin_of_a, exact_mail, django_capture_on_commit_callbacks
):
    sim.advance(31 * 86400)
    _age(connection, 31 * 86400)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ExactNeedsReauth):
        _journals(api)
    _assert_reported(connection, exact_mail, admin_of_a, "refresh token expired")


def test_lost_token_response_is_reported_not_retried(
    sim, connection, api, admin_of_a, exact_mail, django_capture_on_commit_callbacks
):
    stored_refresh = connection.refresh_token
    sim.inject("lose_token_response", seconds=0)
    _age(connection, 580)
    sim.advance(580)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ExactNeedsReauth):
        _journals(api)
    _assert_reported(connection, exact_mail, admin_of_a, "answer to a token refresh was lost")
    calls = sim.call_counts()["POST /api/oauth2/token grant_type=refresh_token"]
    assert calls == {"total": 1, "dropped": 1}  # one attempt, never retried
    # Exact did rotate: the refresh token we still hold is already dead
    probe = ExactApi(sim)
    probe.tokens = {"refresh_token": stored_refresh}
    resp = probe.refresh()
    assert resp.status_code == 401 and resp.json()["error_description"] == "Old refresh token used."
    # and no later job tries it again
    with pytest.raises(ExactNeedsReauth):
        _journals(api)
    assert token_calls(sim) == 2  # only our probe above


def test_token_endpoint_5xx_is_not_fatal(sim, connection, api):
    sim.inject("status", status=500, count=1, path="/api/oauth2/token")
    _age(connection, 580)
    sim.advance(580)
    with pytest.raises(ExactTokenError) as caught:
        _journals(api)
    assert caught.value.status == 500
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.CONNECTED
    assert _journals(api)  # the chain did not move: the next attempt refreshes
    assert token_calls(sim) == 2


def test_keepalive_refreshes_quiet_connections(sim, connection):
    ExactGrant.objects.filter(pk=connection.grant_id).update(
        token_issued_at=timezone.now() - timedelta(days=2), last_refresh_at=None
    )
    connection.refresh_from_db()
    sim.advance(2 * 86400)
    assert token_keepalive(connection=connection) is True
    assert token_keepalive(connection=connection) is False  # refreshed less than a day ago
    assert exact_keepalive_task() == 0
    assert token_calls(sim) == 1


def test_after_401_picks_up_a_token_refreshed_elsewhere(sim, connection):
    other = ExactConnection.objects.get(pk=connection.pk)
    mine = ExactClient(connection, clock=sim.clock.now, sleep=lambda s: None)
    sim.advance(600)  # everybody's access token has expired at Exact
    _age(other, 600)
    ExactClient(other, clock=sim.clock.now)  # another process refreshes
    list(ExactClient(other, clock=sim.clock.now).iter_rows("financial/Journals", select=("Code",)))
    # our in-memory copy is stale and looks fresh to us: the 401 makes us re-read
    connection.grant.token_issued_at = timezone.now()
    assert _journals(mine)
    assert token_calls(sim) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_workers_cause_exactly_one_refresh(sim, tenant_a):
    conn = connect(tenant_a, sim)
    _age(conn, 580)
    sim.advance(580)
    results = at_once(
        *[lambda api: len(_journals(api))] * 8,
        prepare=lambda: ExactClient(ExactConnection.objects.get(pk=conn.pk), clock=sim.clock.now),
        timeout=30,
    )
    assert len(results) == 8 and all(results)
    assert token_calls(sim) == 1
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.CONNECTED
    assert conn.last_refresh_at is not None
