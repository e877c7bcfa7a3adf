"""The webhook intake while the database cannot be reached (issue 18, item 2).

A delivery that cannot be stored must get an answer GoCardless retries (503 + Retry-After),
be logged in one line without its body or signature, and leave nothing half-stored: the
delivery, its events and its task are one transaction. The database failures are simulated
here (every statement, or only the events' INSERT, raises as a dead server makes the driver
raise); test_webhook_db_outage_pg.py stops and starts a real PostgreSQL server under a real
gunicorn.
"""

import logging
from contextlib import contextmanager

import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError, connection
from django.test import override_settings
from django_q.models import OrmQ

from gocardless.models import GoCardlessEvent, WebhookDelivery
from gocardless.webhooks import DATABASE_RETRY_AFTER
from tests.factories import GoCardlessConnectionFactory
from tests.gocardless.conftest import body_of, fixture_event, post_webhook, sign, webhook_url

pytestmark = pytest.mark.django_db

SECRET = "outage-secret"
PARTNER = "outage-partner-secret"


@pytest.fixture
def gc_connection(db):
    return GoCardlessConnectionFactory(webhook_secret=SECRET, organisation_id="OROUTAGE")


def _events(n: int = 3, prefix: str = "EVOUT") -> list[dict]:
    return [fixture_event("payments__confirmed", id=f"{prefix}{k}",
                          links={"payment": f"PMOUT{k}", "organisation": "OROUTAGE"})
            for k in range(n)]


def _post(client, gc_connection, body: bytes):
    return post_webhook(client, webhook_url(gc_connection.tenant), body, sign(body, SECRET))


@contextmanager
def database_failing(error: Exception, *, when=lambda sql: True):
    """Every statement for which ``when(sql)`` holds raises ``error`` instead of running, as
    the driver raises when the server is gone (refused, restarting, connection cut)."""
    def fail(execute, sql, params, many, context):
        if when(sql):
            raise error
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail):
        yield


def _stored() -> tuple[int, int, int]:
    return (WebhookDelivery.objects.count(), GoCardlessEvent.objects.count(),
            OrmQ.objects.count())


@pytest.mark.parametrize("error", [
    OperationalError('connection failed: connection to server at "127.0.0.1", port 5432 '
                     "failed: Connection refused"),
    OperationalError("terminating connection due to administrator command"),
    InterfaceError("the connection is closed"),
], ids=["refused", "terminated", "closed"])
def test_an_unreachable_database_is_503_with_retry_after_and_nothing_stored(
    client, gc_connection, caplog, error
):
    body = body_of(*_events())
    with database_failing(error), caplog.at_level(logging.WARNING, "gocardless.webhooks"):
        response = _post(client, gc_connection, body)
    assert response.status_code == 503
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER)
    assert _stored() == (0, 0, 0)
    # One line: what happened, where, and the driver's reason; not the body or the signature.
    [record] = [r for r in caplog.records if r.name == "gocardless.webhooks"]
    assert record.levelno == logging.WARNING and not record.exc_info
    message = record.getMessage()
    assert "503" in message and type(error).__name__ in message
    assert str(gc_connection.tenant.uuid) in message and str(error) in message
    assert "EVOUT0" not in message and sign(body, SECRET) not in message
    assert SECRET not in caplog.text


def test_the_same_delivery_sent_again_after_the_outage_is_stored_once(client, gc_connection):
    body = body_of(*_events())
    with database_failing(OperationalError("server closed the connection unexpectedly")):
        assert _post(client, gc_connection, body).status_code == 503
    assert _post(client, gc_connection, body).status_code == 204
    # GoCardless may also have delivered it twice (our answer lost after the commit).
    assert _post(client, gc_connection, body).status_code == 204
    assert GoCardlessEvent.objects.count() == 3
    assert sorted(GoCardlessEvent.objects.values_list("event_id", flat=True)) == [
        "EVOUT0", "EVOUT1", "EVOUT2"]


def test_a_connection_lost_mid_transaction_leaves_nothing_half_stored(client, gc_connection):
    """The delivery row is written, then the events' INSERT fails: the delivery row and the
    task go with it (one transaction), so the redelivery is the only copy."""
    body = body_of(*_events())
    insert_events = f'INSERT INTO "{GoCardlessEvent._meta.db_table}"'
    with database_failing(OperationalError("server closed the connection unexpectedly"),
                          when=lambda sql: sql.startswith(insert_events)):
        response = _post(client, gc_connection, body)
    assert response.status_code == 503
    assert _stored() == (0, 0, 0)
    assert _post(client, gc_connection, body).status_code == 204
    assert _stored() == (1, 3, 1)


@override_settings(GOCARDLESS_WEBHOOK_SECRET=PARTNER)
def test_the_partner_endpoint_answers_503_too(client, gc_connection):
    body = body_of(*_events(prefix="EVPARTNER"))
    with database_failing(OperationalError("the database system is starting up")):
        response = post_webhook(client, "/webhooks/gocardless/", body, sign(body, PARTNER))
    assert response.status_code == 503 and response["Retry-After"]
    assert _stored() == (0, 0, 0)
    response = post_webhook(client, "/webhooks/gocardless/", body, sign(body, PARTNER))
    assert response.status_code == 204 and GoCardlessEvent.objects.count() == 3


def test_a_bug_is_not_answered_as_an_outage(client, gc_connection):
    """A ProgrammingError (a missing table, wrong SQL) is ours to fix, not a moment to wait:
    it stays an error (Django's 500, with its traceback logged)."""
    body = body_of(*_events())
    with database_failing(ProgrammingError('relation "x" does not exist')), \
            pytest.raises(ProgrammingError):
        _post(client, gc_connection, body)
