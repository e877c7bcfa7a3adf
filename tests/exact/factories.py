"""Factories for exact/ models (merged into tests.factories.FACTORIES)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory
from django.utils import timezone

from exact.models import (
    ExactAccount,
    ExactGrant,
    ExactReceivable,
    ExactWebhookDelivery,
    ReceivableKind,
    SyncEntity,
    SyncMode,
    SyncRun,
)


class ExactGrantFactory(factory.django.DjangoModelFactory):
    """An Exact user's token chain (what ExactConnectionFactory's tokens become; pass
    ``grant=ExactGrantFactory()`` to share one between companies)."""

    class Meta:
        model = ExactGrant

    client_id = "sim-client-id"
    region = "nl"
    exact_user_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    exact_user_name = factory.Sequence(lambda n: f"Exact User {n}")
    access_token = factory.Sequence(lambda n: f"exact-access-token-{n}-PLAINTEXT")
    refresh_token = factory.Sequence(lambda n: f"exact-refresh-token-{n}-PLAINTEXT")
    token_issued_at = factory.LazyFunction(timezone.now)


class ExactAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExactAccount

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    exact_id = factory.LazyFunction(uuid.uuid4)
    code = factory.Sequence(lambda n: str(1000 + n))
    name = factory.Sequence(lambda n: f"Customer {n} B.V.")
    email = factory.Sequence(lambda n: f"ar{n}@customer.example")
    country = "NL"
    status = "C"
    synced_at = factory.LazyFunction(timezone.now)


class ExactReceivableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExactReceivable

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    exact_id = factory.LazyFunction(uuid.uuid4)
    account = factory.SubFactory(ExactAccountFactory, tenant=factory.SelfAttribute("..tenant"))
    account_exact_id = factory.LazyAttribute(lambda r: r.account.exact_id if r.account else None)
    invoice_number = factory.Sequence(lambda n: 25_000_000 + n)
    currency = "EUR"
    amount = Decimal("121.00")
    outstanding = Decimal("121.00")
    kind = ReceivableKind.INVOICE
    synced_at = factory.LazyFunction(timezone.now)


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncRun

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    entity = SyncEntity.ACCOUNTS
    mode = SyncMode.FULL
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    pages = 1
    calls = 2


class ExactWebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExactWebhookDelivery

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    received_at = factory.LazyFunction(timezone.now)
    body = b'{"Content":{},"HashCode":""}'
    valid = True
    response_status = 200
    topic = "Accounts"
    action = "Update"
    key = factory.LazyFunction(lambda: str(uuid.uuid4()))


EXACT_FACTORIES: dict = {
    ExactAccount: ExactAccountFactory,
    ExactReceivable: ExactReceivableFactory,
    SyncRun: SyncRunFactory,
    ExactWebhookDelivery: ExactWebhookDeliveryFactory,
}
