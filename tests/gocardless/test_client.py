"""The client wrapper against the simulator: the SDK behaviour we rely on, pinned.

- the Idempotency-Key we pass is the key sent (never the SDK's random one);
- a 409 conflict yields the existing resource, and only when it is the one we meant;
- an HTML 502 is retried by the SDK with the same key (one payment, not two);
- 429 waits until RateLimit-Reset and tries again;
- errors are mapped to our small set.
"""

from datetime import timedelta

import pytest

from gocardless import errors
from gocardless.client import GoCardlessClient
from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN, SIM_START


@pytest.fixture
def sim(gocardless_simulator):
    return gocardless_simulator


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sim, sleeps, settings):
    return GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=2,
                            sleep=sleeps.append, now=lambda: SIM_START)


@pytest.fixture
def mandate_id(sim):
    return sim.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])["mandates"][0]


def _payment(mandate_id, **overrides):
    params = {"amount": 1250, "currency": "EUR", "links": {"mandate": mandate_id},
              "metadata": {"exact_invoice": "INV-1"}}
    params.update(overrides)
    return params


def test_the_key_we_pass_is_the_key_sent(sim, client, mandate_id):
    payment = client.payment_create(params=_payment(mandate_id), idempotency_key="inv-1-attempt-1")
    assert sim.state.idempotency[(SIM_ACCESS_TOKEN, "inv-1-attempt-1")][1] == payment["id"]
    assert len(sim.state.idempotency) == 1  # and no other (random) key was used


def test_a_create_without_our_key_is_refused(client, mandate_id):
    with pytest.raises(ValueError):
        client.payment_create(params=_payment(mandate_id), idempotency_key="")


def test_a_409_yields_the_existing_payment(sim, client, mandate_id):
    first = client.payment_create(params=_payment(mandate_id), idempotency_key="k-1")
    again = client.payment_create(params=_payment(mandate_id), idempotency_key="k-1")
    assert again["id"] == first["id"]
    counts = sim.call_counts()
    assert counts["POST /payments"] == {"201": 1, "409": 1}
    assert counts["GET /payments/{id}"] == {"200": 1}
    assert len(sim.resource("payments")) == 1


@pytest.mark.parametrize(
    "change",
    [{"metadata": {"exact_invoice": "INV-2"}}, {"amount": 999}],
    ids=["other-metadata", "other-amount"],
)
def test_a_409_pointing_at_a_different_payment_is_loud(client, mandate_id, change):
    client.payment_create(params=_payment(mandate_id), idempotency_key="k-1")
    with pytest.raises(errors.IdempotencyMismatchError) as caught:
        client.payment_create(params=_payment(mandate_id, **change), idempotency_key="k-1")
    assert "k-1" in str(caught.value)


def test_an_html_502_is_retried_with_the_same_key(sim, client, mandate_id):
    sim.inject("html_502", 1, method="POST", path="/payments")
    payment = client.payment_create(params=_payment(mandate_id), idempotency_key="k-502")
    assert sim.call_counts()["POST /payments"] == {"502": 1, "201": 1}
    assert sim.state.idempotency[(SIM_ACCESS_TOKEN, "k-502")][1] == payment["id"]
    assert len(sim.resource("payments")) == 1


def test_a_dropped_response_is_retried_and_adopts_the_created_payment(sim, client, mandate_id):
    # Processed, then the connection is reset: the SDK retries with the same key → 409 →
    # we fetch the conflicting payment and check it is ours.
    sim.inject("drop_response", 1, method="POST", path="/payments")
    payment = client.payment_create(params=_payment(mandate_id), idempotency_key="k-drop")
    assert len(sim.resource("payments")) == 1
    assert payment["id"] == sim.resource("payments")[0]["id"]


def test_repeated_html_502s_become_retryable(sim, client, mandate_id):
    sim.inject("html_502", 3, method="POST", path="/payments")
    with pytest.raises(errors.RetryableError):
        client.payment_create(params=_payment(mandate_id), idempotency_key="k-3x502")
    assert sim.call_counts()["POST /payments"] == {"502": 3}


def test_429_waits_until_ratelimit_reset_then_retries(sim, client, sleeps, mandate_id):
    sim.inject("rate_limit", 1, method="GET")
    payment = client.payment_create(params=_payment(mandate_id), idempotency_key="k-429")
    assert client.payment_get(payment["id"])["id"] == payment["id"]
    # The simulator's window resets at the next minute of its (frozen) clock.
    assert sleeps and sleeps[0] == pytest.approx(60.05, abs=0.01)


def test_429_gives_up_after_the_configured_waits(sim, sleeps, mandate_id):
    client = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=2,
                              sleep=sleeps.append, now=lambda: SIM_START,
                              max_rate_limit_retries=2)
    sim.inject("rate_limit", 5, method="GET")
    with pytest.raises(errors.RetryableError) as caught:
        client.mandate_get(mandate_id)
    assert caught.value.status == 429 and "rate_limit_exceeded" in caught.value.reasons
    assert len(sleeps) == 2


def test_429_with_a_reset_too_far_away_is_not_waited_for(sim, sleeps, mandate_id):
    client = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=2,
                              sleep=sleeps.append, now=lambda: SIM_START - timedelta(hours=1))
    sim.inject("rate_limit", 1, method="GET")
    with pytest.raises(errors.RetryableError):
        client.mandate_get(mandate_id)
    assert sleeps == []


def test_5xx_is_retryable_with_request_id(sim, client, mandate_id):
    sim.inject("error_500", 1, method="GET")
    with pytest.raises(errors.RetryableError) as caught:
        client.mandate_get(mandate_id)
    assert caught.value.status == 500 and caught.value.request_id


def test_timeouts_are_retryable(sim, mandate_id):
    client = GoCardlessClient(access_token=SIM_ACCESS_TOKEN, base_url=sim.url, timeout=0.3)
    sim.inject("timeout", 3, seconds=0.6, method="GET")
    with pytest.raises(errors.RetryableError):
        client.mandate_get(mandate_id)


def test_401_is_an_auth_error_and_calls_the_hook(sim):
    seen = []
    client = GoCardlessClient(access_token="not-a-token", base_url=sim.url, timeout=2,
                              on_auth_error=seen.append)
    with pytest.raises(errors.AuthError) as caught:
        client.creditors_list()
    assert caught.value.status == 401 and seen == [caught.value]
    assert "not-a-token" not in str(caught.value)


def test_validation_errors_carry_field_errors(client, mandate_id):
    with pytest.raises(errors.ValidationError) as caught:
        client.payment_create(params=_payment(mandate_id, amount=-5), idempotency_key="k-bad")
    assert caught.value.field_errors
    assert caught.value.field_errors[0]["field"]


def test_invalid_state(sim, client, mandate_id):
    payment = client.payment_create(params=_payment(mandate_id), idempotency_key="k-1")
    sim.advance(days=10)  # submitted and beyond: no longer cancellable
    with pytest.raises(errors.InvalidStateError) as caught:
        client.payment_cancel(payment["id"])
    assert caught.value.reasons


def test_not_found(client):
    with pytest.raises(errors.NotFoundError):
        client.payment_get("PM0000NOPE")


def test_lists_stream_through_the_paginator(sim, client):
    sim.seed(bulk={"count": 120, "scheme": "bacs"})
    mandates = list(client.mandates_iter({"limit": 50}))
    assert len(mandates) == 120 and len({m["id"] for m in mandates}) == 120
    assert sim.call_counts()["GET /mandates"] == {"200": 3}


def test_creditors_payouts_items_refunds_billing_requests(sim, client, mandate_id):
    creditors = client.creditors_list()
    assert creditors[0]["id"] == sim.state.creditor_id
    payment = client.payment_create(params=_payment(mandate_id), idempotency_key="k-p")
    sim.advance(days=14)
    payment = client.payment_get(payment["id"])
    assert payment["status"] == "paid_out"
    payout_id = payment["links"]["payout"]
    assert client.payout_get(payout_id)["status"] in ("pending", "paid")
    items = list(client.payout_items_iter(payout_id))
    assert {i["type"] for i in items} >= {"payment_paid_out"}
    assert all(isinstance(i["amount"], str) for i in items)
    refund = client.refund_create(
        params={"amount": 100, "total_amount_confirmation": 100,
                "links": {"payment": payment["id"]}, "metadata": {"reason": "test"}},
        idempotency_key="k-r",
    )
    assert client.refund_get(refund["id"])["amount"] == 100
    request = client.billing_request_create(
        params={"mandate_request": {"currency": "EUR"}, "metadata": {"exact_account": "A1"}},
        idempotency_key="k-br",
    )
    flow = client.billing_request_flow_create(
        params={"redirect_uri": "https://example.test/done",
                "links": {"billing_request": request["id"]}},
        idempotency_key="k-brf",
    )
    assert flow["authorisation_url"]
    with pytest.raises(errors.InvalidStateError):  # flows cannot be fetched to check them
        client.billing_request_flow_create(
            params={"redirect_uri": "https://example.test/done",
                    "links": {"billing_request": request["id"]}},
            idempotency_key="k-brf",
        )


def test_events_page_and_get(sim, client, mandate_id):
    client.payment_create(params=_payment(mandate_id), idempotency_key="k-e")
    sim.advance(days=3)
    records, after = client.events_page({"limit": 1})
    assert len(records) == 1 and after
    assert client.event_get(records[0]["id"])["id"] == records[0]["id"]
    assert len(list(client.events_iter({"limit": 2}))) == len(sim.events())
