"""The webhook endpoints: signature first, 498 on anything wrong, every delivery stored,
events stored once, processing queued (not run) before answering."""

import json

import pytest
from django.test import override_settings
from django_q.conf import Conf

from gocardless.models import GoCardlessEvent, WebhookDelivery
from tests.factories import GoCardlessConnectionFactory, TenantFactory
from tests.gocardless.conftest import (
    FIXTURES,
    body_of,
    fixture_event,
    post_webhook,
    sign,
    webhook_url,
)

pytestmark = pytest.mark.django_db

VECTOR_SECRET = "ED7D658C-D8EB-4941-948B-3973214F2D49"
VECTOR_SIGNATURE = "2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e"
VECTOR_BODY = (FIXTURES / "official_webhook_vector.body").read_bytes()


@pytest.fixture
def connection(db):
    return GoCardlessConnectionFactory(webhook_secret=VECTOR_SECRET)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


def test_official_vector_verifies_and_stores_both_events(client, connection, no_queue):
    response = post_webhook(client, webhook_url(connection.tenant), VECTOR_BODY, VECTOR_SIGNATURE)
    assert response.status_code == 204
    delivery = WebhookDelivery.objects.get()
    assert delivery.valid and delivery.response_status == 204 and delivery.event_count == 2
    assert bytes(delivery.body) == VECTOR_BODY  # the exact bytes, not a re-serialisation
    assert set(GoCardlessEvent.objects.values_list("event_id", flat=True)) == {
        "EV00BD05S5VM2T", "EV00BD05TB8K63"}


@pytest.mark.parametrize(
    ("body", "signature"),
    [
        pytest.param(_flip(VECTOR_BODY, 40), VECTOR_SIGNATURE, id="one-changed-byte"),
        pytest.param(VECTOR_BODY, None, id="missing-header"),
        pytest.param(VECTOR_BODY, "", id="empty-header"),
        pytest.param(VECTOR_BODY, VECTOR_SIGNATURE.upper(), id="upper-case"),
        pytest.param(VECTOR_BODY, VECTOR_SIGNATURE[:-1], id="truncated"),
        pytest.param(VECTOR_BODY, "sha256=" + VECTOR_SIGNATURE, id="prefixed"),
        pytest.param(VECTOR_BODY, "é" * 64, id="non-ascii"),
        pytest.param(VECTOR_BODY + b"\n", VECTOR_SIGNATURE, id="trailing-newline"),
    ],
)
def test_bad_signatures_get_498_and_nothing_is_processed(
    client, connection, no_queue, body, signature
):
    response = post_webhook(client, webhook_url(connection.tenant), body, signature)
    assert response.status_code == 498
    assert GoCardlessEvent.objects.count() == 0
    assert no_queue == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.valid is False and delivery.response_status == 498
    assert delivery.event_count == 0


def test_wrong_secret_is_498(client, no_queue):
    connection = GoCardlessConnectionFactory(webhook_secret="another-secret")
    response = post_webhook(client, webhook_url(connection.tenant), VECTOR_BODY, VECTOR_SIGNATURE)
    assert response.status_code == 498
    assert not GoCardlessEvent.objects.exists()


def test_no_secret_configured_is_498(client, no_queue):
    connection = GoCardlessConnectionFactory(webhook_secret=None)
    response = post_webhook(client, webhook_url(connection.tenant), VECTOR_BODY, VECTOR_SIGNATURE)
    assert response.status_code == 498


def test_unknown_tenant_is_404_and_logged(client, no_queue):
    response = post_webhook(client, f"/webhooks/gocardless/{TenantFactory().uuid}/",
                            VECTOR_BODY, VECTOR_SIGNATURE)
    assert response.status_code == 404
    assert WebhookDelivery.objects.get().response_status == 404
    assert not GoCardlessEvent.objects.exists()


@override_settings(WEBHOOK_MAX_BODY_BYTES=100)
def test_bodies_over_the_limit_are_refused_before_reading(client, connection, no_queue):
    response = post_webhook(client, webhook_url(connection.tenant), VECTOR_BODY, VECTOR_SIGNATURE)
    assert response.status_code == 413
    delivery = WebhookDelivery.objects.get()
    assert delivery.response_status == 413 and bytes(delivery.body) == b""
    assert not GoCardlessEvent.objects.exists()


def test_malformed_json_with_valid_signature_is_400_and_stored(client, connection, no_queue):
    body = b'{"events": [ not json'
    response = post_webhook(client, webhook_url(connection.tenant), body, sign(body, VECTOR_SECRET))
    assert response.status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert delivery.valid is True and delivery.response_status == 400
    assert bytes(delivery.body) == body
    assert not GoCardlessEvent.objects.exists()


def test_unknown_event_type_is_stored_and_answered_204(client, connection, no_queue):
    event = fixture_event("subscriptions__created", resource_type="brand_new_things",
                          action="appeared")
    body = body_of(event)
    response = post_webhook(client, webhook_url(connection.tenant), body,
                            sign(body, VECTOR_SECRET))
    assert response.status_code == 204
    stored = GoCardlessEvent.objects.get()
    assert stored.resource_type == "brand_new_things" and stored.raw == event


def test_duplicates_are_stored_once_and_queued_after_commit(
    client, connection, no_queue, django_capture_on_commit_callbacks, monkeypatch
):
    # A broker outside the database (Redis): the task is sent from on_commit.
    monkeypatch.setattr(Conf, "ORM", None)
    event = fixture_event("payments__confirmed")
    body = body_of(event, event)
    for done in range(3):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = post_webhook(client, webhook_url(connection.tenant), body,
                                    sign(body, VECTOR_SECRET))
        assert response.status_code == 204
        assert len(no_queue) == done  # nothing is queued before the commit
        for callback in callbacks:
            callback()
    assert WebhookDelivery.objects.count() == 3
    stored = GoCardlessEvent.objects.get()
    assert (stored.resource_type, stored.action, stored.resource_id) == (
        "payments", "confirmed", "PM0001")
    assert stored.processed_at is None  # processing is queued, not done in the request
    assert no_queue == [[stored.pk]] * 3


def test_with_the_orm_broker_the_task_commits_with_the_events(client, connection, no_queue):
    body = body_of(fixture_event("payments__confirmed"))
    response = post_webhook(client, webhook_url(connection.tenant), body,
                            sign(body, VECTOR_SECRET))
    assert response.status_code == 204
    assert no_queue == [[GoCardlessEvent.objects.get().pk]]
    assert no_queue.inside_transaction == [True]  # same transaction as the events


def test_secrets_and_cookies_are_not_kept_in_headers(client, connection, no_queue):
    body = body_of(fixture_event("payments__confirmed"))
    post_webhook(client, webhook_url(connection.tenant), body, sign(body, VECTOR_SECRET),
                 HTTP_AUTHORIZATION="Bearer nope", HTTP_COOKIE="sessionid=x")
    headers = WebhookDelivery.objects.get().headers
    assert "HTTP_AUTHORIZATION" not in headers and "HTTP_COOKIE" not in headers
    assert headers["HTTP_WEBHOOK_SIGNATURE"] == sign(body, VECTOR_SECRET)


@override_settings(GOCARDLESS_WEBHOOK_SECRET="partner-secret")
def test_partner_endpoint_routes_by_organisation(
    client, no_queue, django_capture_on_commit_callbacks
):
    alpha = GoCardlessConnectionFactory(organisation_id="ORALPHA")
    bravo = GoCardlessConnectionFactory(organisation_id="ORBRAVO")
    events = [
        fixture_event("payments__confirmed", id="EV1", links={"payment": "PM1",
                                                              "organisation": "ORALPHA"}),
        fixture_event("payments__confirmed", id="EV2", links={"payment": "PM2",
                                                              "organisation": "ORBRAVO"}),
        fixture_event("payments__confirmed", id="EV3", links={"payment": "PM3",
                                                              "organisation": "ORUNKNOWN"}),
    ]
    body = body_of(*events)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(client, "/webhooks/gocardless/", body,
                                sign(body, "partner-secret"))
    assert response.status_code == 204
    routed = dict(GoCardlessEvent.objects.values_list("event_id", "tenant_id"))
    assert routed == {"EV1": alpha.tenant_id, "EV2": bravo.tenant_id}
    delivery = WebhookDelivery.objects.get()
    assert delivery.tenant is None and delivery.unrouted_count == 1 and delivery.event_count == 3
    assert len(no_queue) == 1 and len(no_queue[0]) == 2  # one task for the batch


@override_settings(GOCARDLESS_WEBHOOK_SECRET="partner-secret")
def test_partner_endpoint_rejects_a_tenant_secret(client, no_queue):
    connection = GoCardlessConnectionFactory(organisation_id="ORALPHA")
    body = body_of(fixture_event("payments__confirmed",
                                 links={"payment": "PM1", "organisation": "ORALPHA"}))
    response = post_webhook(client, "/webhooks/gocardless/", body,
                            sign(body, connection.webhook_secret))
    assert response.status_code == 498
    assert not GoCardlessEvent.objects.exists()


@override_settings(GOCARDLESS_WEBHOOK_SECRET="")
def test_partner_endpoint_without_a_secret_refuses_everything(client, no_queue):
    body = body_of(fixture_event("payments__confirmed"))
    assert post_webhook(client, "/webhooks/gocardless/", body, sign(body, "")).status_code == 498


def test_get_is_not_allowed(client, connection):
    assert client.get(webhook_url(connection.tenant)).status_code == 405


def test_the_answer_does_not_wait_for_processing(client, connection, no_queue,
                                                 django_assert_max_num_queries):
    body = body_of(*[fixture_event("payments__confirmed", id=f"EV{n}",
                                   links={"payment": f"PM{n}"}) for n in range(50)])
    # A constant number of queries for a batch of 50 (no per-event work in the request).
    with django_assert_max_num_queries(12):
        response = post_webhook(client, webhook_url(connection.tenant), body,
                                sign(body, VECTOR_SECRET))
    assert response.status_code == 204
    assert GoCardlessEvent.objects.filter(processed_at__isnull=True).count() == 50
    assert json.loads(bytes(WebhookDelivery.objects.get().body))["events"][0]["id"] == "EV0"
