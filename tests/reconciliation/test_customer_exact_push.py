"""Exact account changes reach GoCardless after a sync; blocked or deleted accounts stop
collection."""

import pytest

from core.audit import Actor
from core.models import AuditEntry
from exact.sync import exact_sync
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import CustomerLink
from reconciliation.customers.selectors import customer_collectable
from reconciliation.customers.signals import collection_stopped
from tests.plugins.exact_sim import DIVISION

pytestmark = pytest.mark.django_db


@pytest.fixture
def linked(tenant_a, ex_sim, ex_connection, gc_sim, gc_connection, run_on_commit, q_sync):
    account = ex_sim.seed_account(
        DIVISION, name="Omega BV", email="ap@omega.example", city="Delft", country="NL"
    )
    exact_sync(connection=ex_connection, trigger="test")
    customer = gc_sim.seed(
        customers=[{"company_name": "Omega BV", "email": "ap@omega.example", "city": "Delft"}]
    )["customers"][0]
    gc_sim.seed(mandates=[{"customer": customer, "scheme": "sepa_core", "status": "active"}])
    with run_on_commit():
        customers_match(tenant=tenant_a, actor=Actor.system("test"))
    link = CustomerLink.objects.get(tenant=tenant_a)
    assert link.matched_by == "email" and customer_collectable(link=link)
    return {"account": account["ID"], "customer": customer, "link": link}


def _sync(connection, run_on_commit):
    with run_on_commit():
        exact_sync(connection=connection, trigger="test")


def test_changed_email_name_and_city_are_pushed_to_gocardless(
    linked, ex_sim, ex_connection, gc_sim, run_on_commit
):
    ex_sim.update_account(
        DIVISION,
        linked["account"],
        email="finance@omega.example",
        name="Omega Holding BV",
        city="Rotterdam",
    )
    _sync(ex_connection, run_on_commit)

    customer = gc_sim.resource("customers", linked["customer"])
    assert customer["email"] == "finance@omega.example"
    assert customer["company_name"] == "Omega Holding BV" and customer["city"] == "Rotterdam"
    entry = AuditEntry.objects.get(action="customerlink.pushed_to_gocardless")
    assert entry.after == {
        "email": "finance@omega.example",
        "company_name": "Omega Holding BV",
        "city": "Rotterdam",
    }
    assert entry.before["email"] == "ap@omega.example"
    calls = sum(gc_sim.call_counts().get("PUT /customers/{id}", {}).values())
    assert calls == 1

    # An unchanged sync pushes nothing.
    _sync(ex_connection, run_on_commit)
    assert sum(gc_sim.call_counts().get("PUT /customers/{id}", {}).values()) == calls


def test_blocked_then_unblocked_account(linked, ex_sim, ex_connection, run_on_commit):
    stops = []
    collection_stopped.connect(
        lambda sender, **kw: stops.append(kw["reason"]), weak=False, dispatch_uid="test-stops"
    )
    try:
        ex_sim.update_account(DIVISION, linked["account"], blocked=True)
        _sync(ex_connection, run_on_commit)
        link = CustomerLink.objects.get(pk=linked["link"].pk)
        assert link.stop_reason == "exact_account_blocked" and not customer_collectable(link=link)
        assert stops == ["exact_account_blocked"]

        ex_sim.update_account(DIVISION, linked["account"], blocked=False)
        _sync(ex_connection, run_on_commit)
        link.refresh_from_db()
        assert link.stop_reason == "" and customer_collectable(link=link)
    finally:
        collection_stopped.disconnect(dispatch_uid="test-stops")


def test_deleted_account_stops_collection_and_keeps_the_link(
    linked, ex_sim, ex_connection, run_on_commit
):
    ex_sim.delete_account(DIVISION, linked["account"])
    _sync(ex_connection, run_on_commit)
    link = CustomerLink.objects.get(pk=linked["link"].pk)
    assert link.exact_account is None and link.exact_name == "Omega BV"
    assert link.stop_reason == "exact_account_deleted" and not customer_collectable(link=link)


def test_a_webhook_triggered_resync_pushes_too(
    linked, ex_sim, ex_connection, gc_sim, run_on_commit
):
    from exact.sync import account_resync

    ex_sim.update_account(DIVISION, linked["account"], email="new@omega.example")
    with run_on_commit():
        account_resync(connection=ex_connection, key=linked["account"], trigger="webhook:1")
    assert gc_sim.resource("customers", linked["customer"])["email"] == "new@omega.example"
