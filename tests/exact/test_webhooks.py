"""The webhook receiver: Exact's HashCode over the raw Content bytes, every failure class,
deduplication, and the queued targeted re-sync."""

import json
import uuid

import pytest

from exact.models import ExactAccount, ExactWebhookDelivery
from exact.tasks import exact_webhook_resync_task
from exact.webhooks import (
    subscriptions_create,
    webhook_signature,
    webhook_signature_valid,
    webhook_split,
)
from simulators.exact_online.webhooks import event_body
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db
SECRET = "sim-webhook-secret"


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("exact.queue.enqueue", lambda *args: calls.append(args) or "task-1")
    return calls


def _content(**overrides):
    content = {
        "Topic": "Accounts",
        "ClientId": "sim-client-id",
        "Division": DIVISION,
        "Action": "Update",
        "Key": "19cee073-095e-46d1-8d2d-f3fc97ba5bc1",
        "ExactOnlineEndpoint": f"https://start.exactonline.nl/api/v1/{DIVISION}/crm/Accounts",
        "EventCreatedOn": "2026-01-06T16:26:08.587",
    }
    content.update(overrides)
    return content


def _post(client, tenant, body, **extra):
    return client.post(
        f"/webhooks/exact/{tenant.uuid}/", data=body, content_type="application/json", **extra
    )


def test_valid_event_is_stored_and_queues_a_resync(
    client, connection, queued, django_capture_on_commit_callbacks
):
    body = event_body(_content(), SECRET)  # signed exactly as the simulator (and Exact) do
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post(client, connection.tenant, body)
    assert resp.status_code == 200
    delivery = ExactWebhookDelivery.objects.get()
    assert delivery.valid and not delivery.duplicate and delivery.response_status == 200
    assert bytes(delivery.body) == body
    assert (delivery.topic, delivery.action, delivery.division) == ("Accounts", "Update", DIVISION)
    assert queued == [("exact.tasks.exact_webhook_resync_task", delivery.pk)]
    delivery.refresh_from_db()
    assert delivery.queued_task == "task-1"


def test_signature_is_over_the_raw_substring_not_reserialised_json(client, connection, queued):
    # spacing and escaping Exact's serializer might produce: re-serialising would change it
    raw = (
        b'{"Topic":"Accounts","Division":%d,"Action":"Update","Key":"a\\/b",'
        b'"EventCreatedOn":"2026-01-06T16:26:08.587"}' % DIVISION
    )
    body = (
        b'{"Content":'
        + raw
        + b',"HashCode":"'
        + webhook_signature(raw, secret=SECRET).encode()
        + b'"}'
    )
    assert _post(client, connection.tenant, body).status_code == 200


def test_wrong_signature_is_401_stored_invalid_not_processed(client, connection, queued):
    body = event_body(_content(), "not-the-secret")
    resp = _post(client, connection.tenant, body)
    assert resp.status_code == 401
    delivery = ExactWebhookDelivery.objects.get()
    assert not delivery.valid and delivery.response_status == 401 and delivery.topic == ""
    assert queued == []


def test_lower_case_hash_of_the_right_secret_is_still_accepted(client, connection, queued):
    body = event_body(_content(), SECRET)
    content, _, rest = body.partition(b',"HashCode":"')
    body = content + b',"HashCode":"' + rest.lower()
    assert _post(client, connection.tenant, body).status_code == 200


def test_empty_body_is_200_and_nothing_else(client, connection, queued):
    assert _post(client, connection.tenant, b"").status_code == 200
    assert ExactWebhookDelivery.objects.count() == 0 and queued == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"HashCode":"ABC"}',
        b'{"Content":{"Topic":"Accounts"},"HashCode":"%s"}',  # missing fields
        b'{"Content":{"Topic":,"HashCode":"%s"}',  # broken JSON inside Content
    ],
    ids=["garbage", "no-content", "missing-fields", "broken-content"],
)
def test_malformed_is_400(client, connection, queued, body):
    if b"%s" in body:
        content = body.split(b'{"Content":', 1)[1].rsplit(b',"HashCode"', 1)[0]
        body = body.replace(b"%s", webhook_signature(content, secret=SECRET).encode())
    resp = _post(client, connection.tenant, body)
    assert resp.status_code == 400
    assert ExactWebhookDelivery.objects.get().response_status == 400
    assert queued == []


def test_oversized_body_is_refused_before_reading(client, connection, queued, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 200
    body = event_body(_content(Key="x" * 300), SECRET)
    resp = _post(client, connection.tenant, body)
    assert resp.status_code == 413
    delivery = ExactWebhookDelivery.objects.get()
    assert bytes(delivery.body) == b"" and delivery.response_status == 413
    assert queued == []


def test_unknown_tenant_is_404(client, connection, queued):
    resp = client.post(
        f"/webhooks/exact/{uuid.uuid4()}/",
        data=event_body(_content(), SECRET),
        content_type="application/json",
    )
    assert resp.status_code == 404
    assert ExactWebhookDelivery.objects.get().tenant is None
    assert queued == []


def test_division_of_another_tenant_is_403(client, connection, queued):
    resp = _post(client, connection.tenant, event_body(_content(Division=654321), SECRET))
    assert resp.status_code == 403
    delivery = ExactWebhookDelivery.objects.get()
    assert delivery.valid and delivery.response_status == 403 and delivery.division == 654321
    assert queued == []


def test_duplicate_delivery_is_stored_but_processed_once(
    client, connection, queued, django_capture_on_commit_callbacks
):
    body = event_body(_content(), SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        first = _post(client, connection.tenant, body)
        second = _post(client, connection.tenant, body)
    assert first.status_code == second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert ExactWebhookDelivery.objects.filter(duplicate=True).count() == 1
    assert len(queued) == 1
    # a later event for the same key is a new event
    with django_capture_on_commit_callbacks(execute=True):
        _post(
            client,
            connection.tenant,
            event_body(_content(EventCreatedOn="2026-01-06T16:30:00.000"), SECRET),
        )
    assert len(queued) == 2


def test_get_is_not_allowed(client, connection):
    assert client.get(f"/webhooks/exact/{connection.tenant.uuid}/").status_code == 405


def test_queued_task_resyncs_the_entity(
    sim, client, connection, queued, django_capture_on_commit_callbacks
):
    account = sim.seed_account(DIVISION, name="Webhook Customer", code="777")
    body = event_body(_content(Key=account["ID"], Action="Create"), SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, connection.tenant, body)
    ((_func, delivery_id),) = queued
    result = exact_webhook_resync_task(delivery_id)
    assert result.startswith("accounts: +1")
    assert ExactAccount.objects.get(exact_id=account["ID"]).name == "Webhook Customer"


@pytest.mark.django_db(transaction=True)
def test_simulator_delivers_to_our_endpoint(sim, connection, queued, live_server, settings):
    """End to end: subscribe, Exact's empty validation POST, then a signed event."""
    settings.PUBLIC_BASE_URL = live_server.url
    ids = subscriptions_create(connection=connection)
    assert len(ids) == 2
    assert subscriptions_create(connection=connection) == ids  # idempotent
    sim.seed_account(DIVISION, name="Live Customer")
    results = sim.deliver_webhooks()
    assert [status for _, status in results] == [200, 200, 200]  # 2 validations + 1 event
    delivery = ExactWebhookDelivery.objects.get()
    assert delivery.valid and delivery.topic == "Accounts" and delivery.action == "Create"
    assert json.loads(bytes(delivery.body))["Content"]["Division"] == DIVISION
    assert len(queued) == 1


# --- the app-wide endpoint: routed by the event's division ---------------------------------


def _post_app(client, body):
    return client.post("/webhooks/exact/", data=body, content_type="application/json")


def test_app_wide_event_is_routed_to_the_tenant_connected_to_its_division(
    client, connection, tenant_b, queued, django_capture_on_commit_callbacks
):
    from tests.factories import ExactConnectionFactory

    ExactConnectionFactory(tenant=tenant_b, division=DIVISION + 1)  # another division
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_app(client, event_body(_content(), SECRET))
    assert resp.status_code == 200 and resp.json() == {"status": "queued"}
    delivery = ExactWebhookDelivery.objects.get()
    assert delivery.tenant == connection.tenant and delivery.valid
    assert queued == [("exact.tasks.exact_webhook_resync_task", delivery.pk)]


def test_a_division_belongs_to_one_tenant_so_an_event_reaches_exactly_one(
    client, connection, tenant_b, queued, django_capture_on_commit_callbacks
):
    from django.db import IntegrityError, transaction

    from exact.models import ConnectionStatus, ExactConnection
    from tests.factories import ExactConnectionFactory

    with pytest.raises(IntegrityError), transaction.atomic():
        ExactConnection.objects.create(
            tenant=tenant_b, region=connection.region, division=DIVISION, status="connected"
        )
    # a disconnected connection holds nothing: it may keep its old division number
    ExactConnectionFactory(
        tenant=tenant_b, region=connection.region, division=DIVISION,
        status=ConnectionStatus.DISCONNECTED,
    )
    body = event_body(_content(), SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post_app(client, body).json() == {"status": "queued"}
        assert _post_app(client, body).json() == {"status": "duplicate"}  # redelivered
    assert list(ExactWebhookDelivery.objects.values_list("tenant", "duplicate")) == [
        (connection.tenant_id, True),
        (connection.tenant_id, False),
    ]
    assert len(queued) == 1


def test_same_division_number_in_two_regions_is_routed_by_the_endpoint_host(
    client, tenant_a, tenant_b, queued, django_capture_on_commit_callbacks
):
    from tests.factories import ExactConnectionFactory

    ExactConnectionFactory(tenant=tenant_a, region="nl", division=DIVISION)
    be = ExactConnectionFactory(tenant=tenant_b, region="be", division=DIVISION)
    endpoint = f"https://start.exactonline.be/api/v1/{DIVISION}/crm/Accounts"
    with django_capture_on_commit_callbacks(execute=True):
        resp = _post_app(client, event_body(_content(ExactOnlineEndpoint=endpoint), SECRET))
    assert resp.status_code == 200
    assert ExactWebhookDelivery.objects.get().tenant_id == be.tenant_id
    # an endpoint that names neither region: refused, not guessed
    elsewhere = _content(ExactOnlineEndpoint="https://example.test/x", Key=str(uuid.uuid4()))
    resp = _post_app(client, event_body(elsewhere, SECRET))
    assert resp.status_code == 409
    assert len(queued) == 1


def test_app_wide_event_for_an_inactive_tenants_division_is_404(
    client, connection, queued
):
    connection.tenant.is_active = False
    connection.tenant.save()
    assert _post_app(client, event_body(_content(), SECRET)).status_code == 404
    assert queued == []


def test_app_wide_event_for_an_unknown_division_is_404_and_stored(client, connection, queued):
    resp = _post_app(client, event_body(_content(Division=999_999), SECRET))
    assert resp.status_code == 404
    delivery = ExactWebhookDelivery.objects.get()
    assert delivery.tenant is None and delivery.valid and delivery.division == 999_999
    assert queued == []


def test_app_wide_endpoint_checks_the_signature_before_routing(client, connection, queued):
    resp = _post_app(client, event_body(_content(), "not-the-secret"))
    assert resp.status_code == 401
    assert not ExactWebhookDelivery.objects.get().valid and queued == []


def test_app_wide_validation_post_is_answered_200(client, db):
    assert _post_app(client, b"").status_code == 200
    assert not ExactWebhookDelivery.objects.exists()


# --- known-answer vector: Exact's HashCode computed outside the product ---------------------
# Computed once by hand, independently of exact/webhooks.py:
#   python3 -c 'import hmac,hashlib; print(hmac.new(KAT_SECRET, KAT_CONTENT,
#               hashlib.sha256).hexdigest().upper())'
# and cross-checked with `printf %s "$CONTENT" | openssl dgst -sha256 -hmac "$SECRET"`.
# Upper-case hex HMAC-SHA256 of the raw Content substring (API-NOTES-EXACT §7.4).
KAT_SECRET = "kat-webhook-secret-7f3a"
KAT_CONTENT = (
    b'{"Topic":"Accounts","ClientId":"0b5c3a9e-1d2f-4e6a-9b8c-7d6e5f4a3b2c","Division":123456,'
    b'"Action":"Update","Key":"19cee073-095e-46d1-8d2d-f3fc97ba5bc1","ExactOnlineEndpoint":'
    b'"https://start.exactonline.nl/api/v1/123456/crm/Accounts(guid\'19cee073-095e-46d1-8d2d-'
    b'f3fc97ba5bc1\')","EventCreatedOn":"2026-01-06T16:26:08.587"}'
)
KAT_HASH_CODE = "037C54340C662958AA9243E5A334366D462BB6B5ABCE82CAA730344C85563765"
KAT_BODY = b'{"Content":' + KAT_CONTENT + b',"HashCode":"' + KAT_HASH_CODE.encode() + b'"}'


def _kat_verified(body: bytes) -> bool:
    content, hash_code = webhook_split(body)
    return webhook_signature_valid(content, hash_code, secret=KAT_SECRET)


def test_known_answer_vector_is_accepted():
    assert DIVISION == 123456  # the vector's division is the test tenant's
    assert _kat_verified(KAT_BODY)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"Action":"Update"', b'"Action":"Updatf"'),  # one character of Content
        (b'"Division":123456', b'"Division":123457'),
        (b'"HashCode":"037C', b'"HashCode":"137C'),  # one character of the HashCode
    ],
    ids=["content", "division", "hash-code"],
)
def test_known_answer_vector_with_one_character_changed_is_refused(old, new):
    changed = KAT_BODY.replace(old, new, 1)
    assert changed != KAT_BODY and len(changed) == len(KAT_BODY)
    assert not _kat_verified(changed)


def test_known_answer_vector_through_the_endpoint(client, connection, queued, settings):
    settings.EXACT_WEBHOOK_SECRET = KAT_SECRET
    assert _post(client, connection.tenant, KAT_BODY).status_code == 200
    changed = KAT_BODY.replace(b'"Action":"Update"', b'"Action":"Updatf"', 1)
    assert _post(client, connection.tenant, changed).status_code == 401


def test_receive_reads_at_most_the_limit_plus_one_byte_whatever_the_length_header(
    connection, queued, settings
):
    """The service, called as the view calls it: a client that declares a small body and sends
    a large one gets 413, and no more than WEBHOOK_MAX_BODY_BYTES + 1 bytes are read."""
    from exact.webhooks import delivery_receive

    settings.WEBHOOK_MAX_BODY_BYTES = 200

    class Stream:
        asked: list[int] = []

        def read(self, size):
            self.asked.append(size)
            return b"x" * size  # endless

    stream = Stream()
    outcome = delivery_receive(
        tenant_uuid=connection.tenant.uuid,
        body_stream=stream,
        content_length="10",
        headers={"Content-Type": "application/json", "Cookie": "not kept"},
    )
    assert (outcome.status, stream.asked) == (413, [201])
    delivery = ExactWebhookDelivery.objects.get()
    assert delivery.headers == {"Content-Type": "application/json"} and bytes(delivery.body) == b""
    assert queued == []
