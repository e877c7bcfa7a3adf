"""Fidelity: the simulator refuses what the real API refuses and accepts what it accepts.

Driven through the official SDK (``gocardless_sdk``). Each test fails if the simulator is
more lenient or stricter than the documented rule it names; the rules and their public
sources are listed in docs/simulator-gocardless.md, "Fidelity rules".
"""

from __future__ import annotations

import pytest
from gocardless_pro import errors as gc_errors


@pytest.fixture
def paid_out(gocardless_simulator, gocardless_sdk):
    """A collected Bacs payment and a collected SEPA payment, each of 5000."""
    sim = gocardless_simulator
    ids = sim.seed(mandates=[{"scheme": "bacs"}, {"scheme": "sepa_core"}])["mandates"]
    payments = {}
    for mandate, currency in zip(ids, ("GBP", "EUR"), strict=True):
        payment = gocardless_sdk.payments.create(params={
            "amount": 5000, "currency": currency, "links": {"mandate": mandate}})
        sim.run_scenario("payment_paid_out", payment.id)
        payments[currency] = payment.id
    return payments


def field_errors(excinfo) -> dict[str, str]:
    return {e["field"]: e["request_pointer"] for e in excinfo.value.errors}


# -- refunds ------------------------------------------------------------------------------

def test_refund_for_a_payment_needs_total_amount_confirmation(gocardless_sdk, paid_out):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        gocardless_sdk.refunds.create(params={"amount": 100,
                                              "links": {"payment": paid_out["GBP"]}})
    assert excinfo.value.code == 422
    assert field_errors(excinfo) == {
        "total_amount_confirmation": "/refunds/total_amount_confirmation"}
    refund = gocardless_sdk.refunds.create(params={
        "amount": 100, "total_amount_confirmation": 100, "links": {"payment": paid_out["GBP"]}})
    assert refund.amount == 100


@pytest.mark.parametrize(("currency", "limit"), [("GBP", 10), ("EUR", 140)])
def test_refund_reference_limit_is_the_schemes(gocardless_sdk, paid_out, currency, limit):
    payment = paid_out[currency]
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        gocardless_sdk.refunds.create(params={
            "amount": 100, "total_amount_confirmation": 100, "reference": "R" * (limit + 1),
            "links": {"payment": payment}})
    assert field_errors(excinfo) == {"reference": "/refunds/reference"}
    # Exactly the limit is accepted -- also beyond the 18 characters the simulator used to cap
    # every scheme at (SEPA).
    refund = gocardless_sdk.refunds.create(params={
        "amount": 100, "total_amount_confirmation": 100, "reference": "R" * limit,
        "links": {"payment": payment}})
    assert refund.reference == "R" * limit


def test_refunds_list_takes_refund_type(gocardless_sdk, paid_out):
    refund = gocardless_sdk.refunds.create(params={
        "amount": 100, "total_amount_confirmation": 100, "links": {"payment": paid_out["GBP"]}})
    listed = gocardless_sdk.refunds.list(params={"refund_type": "payment"}).records
    assert [r.id for r in listed] == [refund.id]
    assert gocardless_sdk.refunds.list(params={"refund_type": "mandate"}).records == []
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.refunds.list(params={"refund_type": "everything"})


# -- documented list filters ----------------------------------------------------------------

def test_payments_list_sorts_and_filters_by_subscription(gocardless_simulator, gocardless_sdk):
    mandate = gocardless_simulator.seed(mandates=[{"scheme": "bacs"}])["mandates"][0]
    for amount in (3000, 1000, 2000):
        gocardless_sdk.payments.create(params={"amount": amount, "currency": "GBP",
                                               "links": {"mandate": mandate}})
    ascending = gocardless_sdk.payments.list(params={"sort_field": "amount",
                                                     "sort_direction": "asc"}).records
    assert [p.amount for p in ascending] == [1000, 2000, 3000]
    descending = gocardless_sdk.payments.list(params={"sort_field": "amount",
                                                      "sort_direction": "desc"}).records
    assert [p.amount for p in descending] == [3000, 2000, 1000]
    by_date = gocardless_sdk.payments.list(params={"sort_field": "charge_date"}).records
    assert len(by_date) == 3
    assert gocardless_sdk.payments.list(params={"subscription": "SB000NONE"}).records == []
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.payments.list(params={"sort_field": "reference"})
    with pytest.raises(gc_errors.ValidationFailedError):  # "cannot also pass customer"
        gocardless_sdk.payments.list(params={"customer": "CU1", "creditor": "CR000SIM"})


def test_customers_list_takes_currency(gocardless_simulator, gocardless_sdk):
    seeded = gocardless_simulator.seed(mandates=[{"scheme": "bacs"}, {"scheme": "sepa_core"}])
    gbp, eur = seeded["customers"]
    assert [c.id for c in gocardless_sdk.customers.list(params={"currency": "GBP"}).records] \
        == [gbp]
    assert [c.id for c in gocardless_sdk.customers.list(params={"currency": "EUR"}).records] \
        == [eur]
    by_created = gocardless_sdk.customers.list(params={"sort_field": "created_at",
                                                       "sort_direction": "asc"}).records
    assert [c.id for c in by_created] == [gbp, eur]


def test_mandates_list_takes_mandate_type(gocardless_simulator, gocardless_sdk):
    mandate = gocardless_simulator.seed(mandates=[{"scheme": "bacs"}])["mandates"][0]
    listed = gocardless_sdk.mandates.list(params={"mandate_type": "bank_debit"}).records
    assert [m.id for m in listed] == [mandate]
    assert gocardless_sdk.mandates.list(params={"mandate_type": "instant"}).records == []
    with pytest.raises(gc_errors.ValidationFailedError):  # "cannot be used in conjunction"
        gocardless_sdk.mandates.list(params={"customer": "CU1", "creditor": "CR000SIM"})


def test_undocumented_list_filters_are_still_refused(gocardless_sdk):
    for params in ({"payout": "PO1"}, {"scheme": "bacs"}):
        with pytest.raises(gc_errors.ValidationFailedError):
            gocardless_sdk.payments.list(params=params)


# -- payment update -------------------------------------------------------------------------

def test_payment_update_takes_retry_if_possible(gocardless_simulator, gocardless_sdk):
    mandate = gocardless_simulator.seed(mandates=[{"scheme": "bacs"}])["mandates"][0]
    payment = gocardless_sdk.payments.create(params={
        "amount": 1000, "currency": "GBP", "metadata": {"invoice": "INV-1"},
        "links": {"mandate": mandate}})
    updated = gocardless_sdk.payments.update(payment.id, params={"retry_if_possible": True})
    assert updated.retry_if_possible is True
    assert updated.metadata == {"invoice": "INV-1"}  # metadata left alone when not given
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.payments.update(payment.id, params={"retry_if_possible": "yes"})
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.payments.update(payment.id, params={"amount": 2000})


# -- events ---------------------------------------------------------------------------------

def test_events_carry_source(gocardless_simulator, gocardless_sdk):
    mandate = gocardless_simulator.seed(mandates=[{"scheme": "bacs"}])["mandates"][0]
    payment = gocardless_sdk.payments.create(params={"amount": 1000, "currency": "GBP",
                                                     "links": {"mandate": mandate}})
    gocardless_simulator.advance(days=2)
    events = gocardless_sdk.events.list(params={"payment": payment.id}).records
    assert events, "the payment has events"
    for event in events:
        assert event.source.type in ("app", "user", "gc_team", "access_token")
        assert isinstance(event.source.name, str) and event.source.name
    created = next(e for e in events if e.action == "created")
    assert created.source.type == "access_token"


# -- payout items -----------------------------------------------------------------------------

def test_every_payout_item_has_taxes(gocardless_sdk, paid_out):
    payout = gocardless_sdk.payments.get(paid_out["GBP"]).links.payout
    items = gocardless_sdk.payout_items.list(params={"payout": payout}).records
    kinds = {item.type: item for item in items}
    assert set(kinds) == {"payment_paid_out", "gocardless_fee"}
    assert kinds["payment_paid_out"].taxes == []
    (tax,) = kinds["gocardless_fee"].taxes
    assert set(tax) == {"amount", "currency", "destination_amount", "destination_currency",
                        "exchange_rate", "tax_rate_id"}
    assert tax["amount"].endswith(".0") and tax["currency"] == "GBP"


def test_payout_items_of_payouts_older_than_six_months_are_gone(gocardless_simulator,
                                                                 gocardless_sdk, paid_out):
    payout = gocardless_sdk.payments.get(paid_out["GBP"]).links.payout
    gocardless_simulator.advance(days=180)  # 2 Mar -> 29 Aug: still within six months
    assert gocardless_sdk.payout_items.list(params={"payout": payout}).records
    gocardless_simulator.advance(days=5)  # 3 Sep
    with pytest.raises(gc_errors.ApiError) as excinfo:
        gocardless_sdk.payout_items.list(params={"payout": payout})
    assert excinfo.value.code == 410
    assert excinfo.value.type == "invalid_api_usage"
    assert excinfo.value.errors[0]["reason"] == "gone"
    # The payout itself stays readable.
    assert gocardless_sdk.payouts.get(payout).id == payout


# -- country codes ------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["XX", "gb", "GBR", "UK"])
def test_customer_country_code_must_be_iso_3166_alpha2(gocardless_sdk, code):
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        gocardless_sdk.customers.create(params={"given_name": "A", "family_name": "B",
                                                "country_code": code})
    assert excinfo.value.errors == [{"field": "country_code", "message": "is invalid",
                                     "request_pointer": "/customers/country_code"}]


@pytest.mark.parametrize("code", ["GB", "NL", "DE", "US"])
def test_customer_country_code_accepts_iso_codes(gocardless_sdk, code):
    customer = gocardless_sdk.customers.create(params={"given_name": "A", "family_name": "B",
                                                       "country_code": code})
    assert customer.country_code == code
    with pytest.raises(gc_errors.ValidationFailedError):
        gocardless_sdk.customers.update(customer.id, params={"country_code": "ZZ"})


def test_flow_prefilled_country_code_is_checked(gocardless_sdk):
    request = gocardless_sdk.billing_requests.create(params={
        "mandate_request": {"currency": "GBP"}})
    with pytest.raises(gc_errors.ValidationFailedError) as excinfo:
        gocardless_sdk.billing_request_flows.create(params={
            "prefilled_customer": {"country_code": "England"},
            "links": {"billing_request": request.id}})
    assert field_errors(excinfo) == {
        "country_code": "/billing_request_flows/prefilled_customer/country_code"}


def test_six_months_is_calendar_months():
    from datetime import date

    from simulators.gocardless.payouts import _months_before

    assert _months_before(date(2026, 9, 3), 6) == date(2026, 3, 3)
    assert _months_before(date(2026, 8, 31), 6) == date(2026, 2, 28)
    assert _months_before(date(2026, 3, 2), 6) == date(2025, 9, 2)


def test_events_of_an_oauth_app_carry_the_app_as_source(gocardless_simulator):
    import gocardless_pro

    sim = gocardless_simulator
    redirect = "https://connector.example.test/connect/gocardless/callback/"
    code = sim.oauth.issue_code(redirect_uri=redirect, organisation_id="OR000SIM",
                                scope="read_write", email="owner@simulated-creditor.test")
    token = sim.oauth.exchange({"grant_type": "authorization_code", "code": code,
                                "redirect_uri": redirect, "client_id": "sim-gc-client-id",
                                "client_secret": "sim-gc-client-secret"}, None)
    app = gocardless_pro.Client(access_token=token["access_token"], base_url=sim.url,
                                timeout=5)
    mandate = sim.seed(mandates=[{"scheme": "bacs"}])["mandates"][0]
    payment = app.payments.create(params={"amount": 1000, "currency": "GBP",
                                          "links": {"mandate": mandate}})
    (created,) = app.events.list(params={"payment": payment.id}).records
    assert (created.source.type, created.source.name) == ("app", "Simulated partner app")
