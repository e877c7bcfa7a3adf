"""Payment and refund rules: validation, charge dates, idempotency, cancel, retry."""

import gocardless_pro
import pytest
import requests
from gocardless_pro import errors as gc_errors

from tests.plugins.gocardless_sim import SIM_ACCESS_TOKEN

HEADERS = {"Authorization": f"Bearer {SIM_ACCESS_TOKEN}", "GoCardless-Version": "2015-07-06"}


@pytest.fixture
def bacs_mandate(gocardless_simulator):
    return gocardless_simulator.seed(mandates=[{"scheme": "bacs", "status": "active"}])[
        "mandates"][0]


@pytest.fixture
def sepa_mandate(gocardless_simulator):
    return gocardless_simulator.seed(mandates=[{"scheme": "sepa_core", "status": "active"}])[
        "mandates"][0]


def create(sim, payment, key=None):
    headers = dict(HEADERS, **({"Idempotency-Key": key} if key else {}))
    return requests.post(sim.url + "/payments", json={"payments": payment}, headers=headers,
                         timeout=5)


def fields(response):
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["type"] == "validation_failed"
    for error in body["errors"]:
        assert error["request_pointer"].startswith("/payments/")
    return {e["field"] for e in body["errors"]}


def test_scheme_currency_and_limits(gocardless_simulator, bacs_mandate, sepa_mandate):
    sim = gocardless_simulator
    assert fields(create(sim, {"amount": 1000, "currency": "EUR",
                               "links": {"mandate": bacs_mandate}})) == {"currency"}
    assert fields(create(sim, {"amount": 1000, "currency": "GBP",
                               "links": {"mandate": sepa_mandate}})) == {"currency"}
    assert fields(create(sim, {"amount": 99, "currency": "GBP",
                               "links": {"mandate": bacs_mandate}})) == {"amount"}
    assert fields(create(sim, {"amount": 500_001, "currency": "GBP",
                               "links": {"mandate": bacs_mandate}})) == {"amount"}
    assert create(sim, {"amount": 500_000, "currency": "GBP",
                        "links": {"mandate": bacs_mandate}}).status_code == 201
    assert create(sim, {"amount": 100, "currency": "EUR",
                        "links": {"mandate": sepa_mandate}}).status_code == 201


def test_amount_must_be_an_integer(gocardless_simulator, bacs_mandate):
    for amount in (10.5, "1000", True, None, 0, -5):
        assert fields(create(gocardless_simulator, {"amount": amount, "currency": "GBP",
                                                    "links": {"mandate": bacs_mandate}})) == {
            "amount"}


def test_reference_length_per_scheme(gocardless_simulator, bacs_mandate, sepa_mandate):
    sim = gocardless_simulator
    assert fields(create(sim, {"amount": 1000, "currency": "GBP", "reference": "X" * 11,
                               "links": {"mandate": bacs_mandate}})) == {"reference"}
    assert create(sim, {"amount": 1000, "currency": "GBP", "reference": "X" * 10,
                        "links": {"mandate": bacs_mandate}}).status_code == 201
    assert create(sim, {"amount": 1000, "currency": "EUR", "reference": "X" * 140,
                        "links": {"mandate": sepa_mandate}}).status_code == 201
    assert fields(create(sim, {"amount": 1000, "currency": "EUR", "reference": "X" * 141,
                               "links": {"mandate": sepa_mandate}})) == {"reference"}


def test_metadata_limits(gocardless_simulator, bacs_mandate):
    base = {"amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}}
    for metadata in ({"a": "1", "b": "2", "c": "3", "d": "4"}, {"k" * 51: "v"},
                     {"k": "v" * 501}, {"k": 5}, ["not", "an", "object"]):
        assert fields(create(gocardless_simulator, {**base, "metadata": metadata})) == {
            "metadata"}
    ok = create(gocardless_simulator,
                {**base, "metadata": {"k" * 50: "v" * 500, "b": "", "c": "x"}})
    assert ok.status_code == 201


def test_unknown_fields_and_missing_mandate(gocardless_simulator, bacs_mandate):
    sim = gocardless_simulator
    assert fields(create(sim, {"amount": 1000, "currency": "GBP", "due_date": "2026-03-10",
                               "links": {"mandate": bacs_mandate}})) == {"due_date"}
    assert fields(create(sim, {"amount": 1000, "currency": "GBP"})) == {"mandate"}
    assert fields(create(sim, {"amount": 1000, "currency": "GBP",
                               "links": {"mandate": "MD000NOPE"}})) == {"mandate"}


def test_charge_date_rules(gocardless_sdk, gocardless_simulator, bacs_mandate):
    mandate = gocardless_sdk.mandates.get(bacs_mandate)
    # Monday 2 March 2026 + 3 working days.
    assert mandate.next_possible_charge_date == "2026-03-05"
    too_early = create(gocardless_simulator, {"amount": 1000, "currency": "GBP",
                                              "charge_date": "2026-03-04",
                                              "links": {"mandate": bacs_mandate}})
    assert fields(too_early) == {"charge_date"}
    default = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}})
    assert default.charge_date == "2026-03-05"
    weekend = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "charge_date": "2026-03-07",
        "links": {"mandate": bacs_mandate}})
    assert weekend.charge_date == "2026-03-09"  # Saturday rolls to Monday
    bank_holiday = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "charge_date": "2026-04-03",  # Good Friday
        "links": {"mandate": bacs_mandate}})
    assert bank_holiday.charge_date == "2026-04-07"  # ...and Easter Monday


def test_new_mandate_needs_one_more_day(gocardless_sdk, gocardless_simulator):
    mandate_id = gocardless_simulator.seed(mandates=[{"status": "pending_submission"}])[
        "mandates"][0]
    assert gocardless_sdk.mandates.get(mandate_id).next_possible_charge_date == "2026-03-06"


def test_inactive_mandate_is_refused(gocardless_simulator):
    mandate_id = gocardless_simulator.seed(mandates=[{"status": "cancelled"}])["mandates"][0]
    response = create(gocardless_simulator, {"amount": 1000, "currency": "GBP",
                                             "links": {"mandate": mandate_id}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_state"
    assert error["errors"][0]["reason"] == "mandate_is_inactive"


def test_repeated_idempotency_key_is_409_with_documented_body(gocardless_simulator,
                                                              bacs_mandate):
    sim = gocardless_simulator
    payment = {"amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}}
    first = create(sim, payment, key="exact-1-inv-42-1")
    assert first.status_code == 201
    second = create(sim, {**payment, "amount": 2000}, key="exact-1-inv-42-1")
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["type"] == "invalid_state" and error["code"] == 409
    assert error["message"] == "A resource has already been created with this idempotency key"
    assert error["documentation_url"] == (
        "https://developer.gocardless.com/api-reference#idempotent_creation_conflict")
    assert error["errors"] == [{
        "reason": "idempotent_creation_conflict",
        "message": "A resource has already been created with this idempotency key",
        "links": {"conflicting_resource_id": first.json()["payments"]["id"]},
    }]
    assert len(sim.resource("payments")) == 1


def test_idempotency_keys_are_scoped_per_access_token(gocardless_simulator, bacs_mandate):
    payment = {"amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}}
    assert create(gocardless_simulator, payment, key="shared").status_code == 201
    other = requests.post(gocardless_simulator.url + "/payments", json={"payments": payment},
                          timeout=5, headers={**HEADERS, "Idempotency-Key": "shared",
                                              "Authorization": "Bearer sim-other-token"})
    assert other.status_code == 201


def test_failed_create_does_not_burn_the_key(gocardless_simulator, bacs_mandate):
    payment = {"amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}}
    assert create(gocardless_simulator, {**payment, "amount": 1}, key="k").status_code == 422
    assert create(gocardless_simulator, payment, key="k").status_code == 201


def test_sdk_sends_our_key_and_returns_the_existing_payment_on_conflict(
        gocardless_sdk, gocardless_simulator, bacs_mandate):
    params = {"amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}}
    first = gocardless_sdk.payments.create(params=params, headers={"Idempotency-Key": "inv-7"})
    again = gocardless_sdk.payments.create(params=params, headers={"Idempotency-Key": "inv-7"})
    assert again.id == first.id
    counts = gocardless_simulator.call_counts()
    assert counts["POST /payments"] == {"201": 1, "409": 1}
    assert counts["GET /payments/{id}"] == {"200": 1}
    strict = gocardless_pro.Client(access_token=SIM_ACCESS_TOKEN, base_url=gocardless_simulator.url,
                                   raise_on_idempotency_conflict=True)
    with pytest.raises(gc_errors.IdempotentCreationConflictError) as excinfo:
        strict.payments.create(params=params, headers={"Idempotency-Key": "inv-7"})
    assert excinfo.value.conflicting_resource_id == first.id


def test_cancel_only_while_pending_submission(gocardless_sdk, gocardless_simulator,
                                              bacs_mandate):
    payment = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}})
    cancelled = gocardless_sdk.payments.cancel(payment.id,
                                               params={"metadata": {"reason": "credited"}})
    assert cancelled.status == "cancelled"
    event = gocardless_simulator.events()[-1]
    assert (event["action"], event["details"]["cause"], event["metadata"]) == (
        "cancelled", "payment_cancelled", {"reason": "credited"})

    submitted = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}})
    gocardless_simulator.advance(days=1)
    assert gocardless_sdk.payments.get(submitted.id).status == "submitted"
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        gocardless_sdk.payments.cancel(submitted.id)
    assert excinfo.value.code == 422
    assert excinfo.value.errors[0]["reason"] == "cancellation_failed"


def test_retry_only_failed_payments_up_to_three_times(gocardless_sdk, gocardless_simulator,
                                                      bacs_mandate):
    sim = gocardless_simulator
    payment = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}})
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        gocardless_sdk.payments.retry(payment.id)
    assert excinfo.value.errors[0]["reason"] == "retry_failed"
    for _ in range(3):
        sim.run_scenario("payment_failed", payment.id)
        retried = gocardless_sdk.payments.retry(payment.id, params={"metadata": {"n": "1"}})
        assert retried.status == "pending_submission"
        assert retried.charge_date >= gocardless_sdk.mandates.get(
            bacs_mandate).next_possible_charge_date
    sim.run_scenario("payment_failed", payment.id)
    with pytest.raises(gc_errors.InvalidStateError):
        gocardless_sdk.payments.retry(payment.id)
    resubmissions = [e for e in sim.events() if e["action"] == "resubmission_requested"]
    assert len(resubmissions) == 3
    assert resubmissions[0]["details"]["cause"] == "payment_retried"
    assert resubmissions[0]["details"]["origin"] == "api"


def test_refunds(gocardless_sdk, gocardless_simulator, bacs_mandate):
    sim = gocardless_simulator
    payment = gocardless_sdk.payments.create(params={
        "amount": 5000, "currency": "GBP", "links": {"mandate": bacs_mandate}})
    with pytest.raises(gc_errors.InvalidStateError):  # not collected yet
        gocardless_sdk.refunds.create(params={"amount": 100, "total_amount_confirmation": 100,
                                              "links": {"payment": payment.id}})
    sim.run_scenario("payment_paid_out", payment.id)
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        gocardless_sdk.refunds.create(params={"amount": 1000, "total_amount_confirmation": 999,
                                              "links": {"payment": payment.id}})
    assert excinfo.value.errors[0]["reason"] == "total_amount_confirmation_invalid"
    refund = gocardless_sdk.refunds.create(params={
        "amount": 1000, "total_amount_confirmation": 1000, "reference": "ACME REFND",
        "metadata": {"reason": "late delivery"}, "links": {"payment": payment.id}})
    assert (refund.status, refund.currency, refund.links.mandate) == (
        "pending_submission", "GBP", bacs_mandate)
    assert gocardless_sdk.payments.get(payment.id).amount_refunded == 1000
    with pytest.raises(gc_errors.InvalidStateError) as excinfo:
        gocardless_sdk.refunds.create(params={"amount": 4001, "total_amount_confirmation": 5001,
                                              "links": {"payment": payment.id}})
    assert excinfo.value.errors[0]["reason"] == "available_refund_amount_insufficient"
    event = sim.events()[-1]
    assert (event["resource_type"], event["action"], event["links"]) == (
        "refunds", "created", {"refund": refund.id, "payment": payment.id,
                               "mandate": bacs_mandate})
    sim.advance(days=3)
    assert gocardless_sdk.refunds.get(refund.id).status == "paid"


def test_concurrent_creates_with_one_key_make_one_payment(gocardless_simulator, bacs_mandate):
    from concurrent.futures import ThreadPoolExecutor

    payment = {"amount": 1000, "currency": "GBP", "links": {"mandate": bacs_mandate}}
    with ThreadPoolExecutor(max_workers=10) as pool:
        same = list(pool.map(lambda _: create(gocardless_simulator, payment, key="race"),
                             range(20)))
        distinct = list(pool.map(lambda n: create(gocardless_simulator, payment, key=f"k{n}"),
                                 range(20)))
    assert sorted(r.status_code for r in same) == [201] + [409] * 19
    assert {r.status_code for r in distinct} == {201}
    assert len({r.json()["payments"]["id"] for r in distinct}) == 20
    assert len(gocardless_simulator.resource("payments")) == 21


def test_sepa_follows_the_target2_calendar(gocardless_sdk, gocardless_simulator, sepa_mandate):
    from datetime import UTC, datetime

    gocardless_simulator.clock.set(datetime(2026, 4, 28, 10, 0, tzinfo=UTC))  # a Tuesday
    # Wed 29, Thu 30 April, then Friday 1 May is a TARGET2 holiday: Monday 4 May.
    assert gocardless_sdk.mandates.get(sepa_mandate).next_possible_charge_date == "2026-05-04"
