"""Factories for the collection app (merged into tests.factories.FACTORIES).

Every factory accepts ``tenant=``; the admin scoping test builds one object per tenant.
"""

import datetime as dt
import uuid
from decimal import Decimal

import factory

from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    FailureAction,
    FailureRule,
    FailureSettings,
    PayLink,
    PayLinkState,
    RunKind,
    RunState,
    RunTrigger,
)


class CollectionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionRun

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    kind = RunKind.PREVIEW
    trigger = RunTrigger.SCHEDULE
    state = RunState.AWAITING_APPROVAL
    as_of = dt.date(2026, 3, 2)
    evaluated = 1
    to_collect = 1
    totals = factory.LazyFunction(lambda: {"EUR": "121.00"})


class CollectionItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionItem

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    run = factory.SubFactory(CollectionRunFactory, tenant=factory.SelfAttribute("..tenant"))
    receivable_exact_id = factory.LazyFunction(uuid.uuid4)
    invoice_number = factory.Sequence(lambda n: 26_000_000 + n)
    account_label = factory.Sequence(lambda n: f"{2000 + n} Customer {n} B.V.")
    due_date = dt.date(2026, 3, 6)
    currency = "EUR"
    outstanding = Decimal("121.00")
    amount = Decimal("121.00")
    charge_date = dt.date(2026, 3, 6)
    mandate_gocardless_id = factory.Sequence(lambda n: f"MD{n:010d}")
    scheme = "sepa_core"
    decision = Decision.COLLECT


class CollectionAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionAttempt

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    run = None
    receivable_exact_id = factory.LazyFunction(uuid.uuid4)
    invoice_number = factory.Sequence(lambda n: 27_000_000 + n)
    account_label = factory.Sequence(lambda n: f"{3000 + n} Debtor {n} B.V.")
    attempt_number = 1
    key = factory.LazyAttribute(lambda o: f"{o.receivable_exact_id}/{o.attempt_number}")
    idempotency_key = factory.LazyAttribute(lambda o: f"mlc-pay-test-{uuid.uuid4().hex}")
    amount = Decimal("121.00")
    currency = "EUR"
    charge_date = dt.date(2026, 3, 6)
    mandate_gocardless_id = factory.Sequence(lambda n: f"MD{n:010d}")
    payment_gocardless_id = factory.Sequence(lambda n: f"PM{n:010d}")
    state = AttemptState.NEEDS_ATTENTION
    flag = "payment failed: insufficient_funds"


class FailureRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FailureRule

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    cause = "insufficient_funds"
    action = FailureAction.RETRY
    retry_after_days = 4
    retry_times = 2
    pay_link = True


class FailureSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FailureSettings

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    pay_links_enabled = True


class PayLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PayLink

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    attempt = factory.SubFactory(
        CollectionAttemptFactory,
        tenant=factory.SelfAttribute("..tenant"),
        state=AttemptState.PAY_LINK_SENT,
        flag="",
    )
    receivable_exact_id = factory.SelfAttribute("attempt.receivable_exact_id")
    invoice_number = factory.SelfAttribute("attempt.invoice_number")
    account_exact_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("121.00")
    currency = "EUR"
    key = factory.LazyAttribute(lambda o: f"{o.receivable_exact_id}/1.0")
    idempotency_key = factory.LazyAttribute(lambda o: f"mlc-link-test-{uuid.uuid4().hex}")
    email = factory.Sequence(lambda n: f"ap{n}@debtor.example")
    rule = "Default rule: The mandate was cancelled: no retry, then a payment link"
    state = PayLinkState.SENT
    billing_request_gocardless_id = factory.Sequence(lambda n: f"BRQ{n:010d}")
    flow_gocardless_id = factory.Sequence(lambda n: f"BRF{n:010d}")
    authorisation_url = factory.Sequence(lambda n: f"https://pay.example.test/flows/BRF{n}")


COLLECTION_FACTORIES: dict = {
    CollectionRun: CollectionRunFactory,
    CollectionItem: CollectionItemFactory,
    CollectionAttempt: CollectionAttemptFactory,
    FailureRule: FailureRuleFactory,
    FailureSettings: FailureSettingsFactory,
    PayLink: PayLinkFactory,
}
