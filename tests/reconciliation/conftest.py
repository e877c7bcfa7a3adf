"""Fixtures for the customer/mandate tests: tenant A connected to both simulators.

- ``gc_sim`` / ``gc_connection``: the GoCardless simulator (frozen clock) with webhooks
  recorded by a loopback receiver; ``gc_deliver()`` posts the recorded batches to OUR webhook
  view, so events travel the real path (signature check, storage, queue, processing, signals).
- ``ex_sim`` / ``ex_connection``: the Exact simulator, division seeded, tenant A connected
  through a real code exchange.
- ``q_sync``: django-q2 tasks run inline; with ``run_on_commit`` the on_commit callbacks run.
- ``exact_bank_account``: ``exact_bank_account(account_id)`` gives an Exact account a bank
  account in the simulator (crm/BankAccounts, main when it is the first) and returns its ID —
  what a DirectDebitMandates record must name.
"""

from __future__ import annotations

import uuid

import pytest
from django_q.conf import Conf

from reconciliation.customers.models import CustomerSettings, RegistrationPolicy
from tests.exact.conftest import connect as exact_connect
from tests.gocardless.conftest import post_webhook, sim_connection, webhook_url
from tests.plugins.exact_sim import DIVISION

BANK_ACCOUNT_IBAN = "NL91ABNA0417164300"


@pytest.fixture
def q_sync(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Use as ``with run_on_commit(): ...``: on_commit callbacks (and what they queue) run."""

    def runner():
        return django_capture_on_commit_callbacks(execute=True)

    return runner


@pytest.fixture
def gc_sim(gocardless_simulator, gocardless_webhook_receiver):
    return gocardless_simulator


@pytest.fixture
def gc_connection(gc_sim, tenant_a):
    return sim_connection(gc_sim, tenant=tenant_a)


@pytest.fixture
def gc_deliver(gc_sim, gocardless_webhook_receiver, gc_connection, client, run_on_commit, q_sync):
    """Deliver queued GoCardless webhooks through our webhook view; returns the statuses."""

    seen = [0]  # the simulator also delivers at the end of every advance()

    def deliver() -> list[int]:
        gc_sim.deliver_webhooks()
        requests = gocardless_webhook_receiver.requests
        start, seen[0] = seen[0], len(requests)
        statuses = []
        for request in requests[start:]:
            with run_on_commit():
                response = post_webhook(
                    client,
                    webhook_url(gc_connection.tenant),
                    request["body"],
                    request["headers"].get("Webhook-Signature"),
                )
            statuses.append(response.status_code)
        return statuses

    return deliver


@pytest.fixture
def ex_sim(exact_simulator):
    exact_simulator.seed_division(division=DIVISION)
    return exact_simulator


@pytest.fixture
def ex_connection(tenant_a, ex_sim):
    return exact_connect(tenant_a, ex_sim)


@pytest.fixture
def exact_bank_account(ex_sim):
    """Seed a bank account for an Exact account in the simulator; returns its ID."""

    def seed(account_id: str, iban: str = BANK_ACCOUNT_IBAN, **fields) -> str:
        return ex_sim.seed_bank_account(DIVISION, account_id, iban, **fields)["ID"]

    return seed


@pytest.fixture
def customer_settings(tenant_a):
    return CustomerSettings.objects.create(
        tenant=tenant_a,
        registration_policy=RegistrationPolicy.OPEN_RECEIVABLES,
        direct_debit_condition="DD",
        default_payment_condition="30",
        reflect_payment_condition=True,
        reflect_mandate_record=True,
        invitation_sender="Alpha BV <ar@alpha.example>",
    )


def exact_account_state(sim, account_id: str):
    return sim.state.division(DIVISION).accounts.get(str(account_id).lower())


def exact_mandates(sim, account_id: str) -> list:
    return sorted(
        (
            m
            for m in sim.state.division(DIVISION).mandates.values()
            if m.account == str(account_id).lower()
        ),
        key=lambda m: m.created,
    )


def new_guid() -> str:
    return str(uuid.uuid4())
