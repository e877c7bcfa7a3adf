"""Factories for gocardless/ models (merged into tests.factories.FACTORIES).

Every factory accepts ``tenant=``; the admin scoping test builds one object per tenant.
"""

import factory

from gocardless.models import (
    BillingRequest,
    Customer,
    CustomerBankAccount,
    EventSource,
    GoCardlessEvent,
    InstalmentSchedule,
    Mandate,
    Payment,
    Payout,
    PayoutItem,
    Refund,
    Subscription,
    WebhookDelivery,
)
from tests.factories import TenantFactory


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    tenant = factory.SubFactory(TenantFactory)
    body = b'{"events":[]}'
    headers = factory.LazyFunction(lambda: {"HTTP_WEBHOOK_SIGNATURE": "00"})
    valid = True
    response_status = 204


class GoCardlessEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoCardlessEvent

    tenant = factory.SubFactory(TenantFactory)
    event_id = factory.Sequence(lambda n: f"EV{n:010d}")
    resource_type = "payments"
    action = "confirmed"
    resource_id = factory.Sequence(lambda n: f"PM{n:010d}")
    links = factory.LazyAttribute(lambda o: {"payment": o.resource_id})
    source = EventSource.WEBHOOK


class _MirrorFactory(factory.django.DjangoModelFactory):
    tenant = factory.SubFactory(TenantFactory)
    status = "active"


class CustomerFactory(_MirrorFactory):
    class Meta:
        model = Customer

    gocardless_id = factory.Sequence(lambda n: f"CU{n:010d}")
    status = ""
    email = factory.Sequence(lambda n: f"payer{n}@example.test")


class CustomerBankAccountFactory(_MirrorFactory):
    class Meta:
        model = CustomerBankAccount

    gocardless_id = factory.Sequence(lambda n: f"BA{n:010d}")
    status = "enabled"
    currency = "EUR"


class MandateFactory(_MirrorFactory):
    class Meta:
        model = Mandate

    gocardless_id = factory.Sequence(lambda n: f"MD{n:010d}")
    scheme = "sepa_core"


class PaymentFactory(_MirrorFactory):
    class Meta:
        model = Payment

    gocardless_id = factory.Sequence(lambda n: f"PM{n:010d}")
    status = "confirmed"
    amount = 1250
    currency = "EUR"


class PayoutFactory(_MirrorFactory):
    class Meta:
        model = Payout

    gocardless_id = factory.Sequence(lambda n: f"PO{n:010d}")
    status = "paid"
    amount = 10000
    currency = "EUR"


class PayoutItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PayoutItem

    tenant = factory.SubFactory(TenantFactory)
    payout = factory.LazyAttribute(lambda o: PayoutFactory(tenant=o.tenant))
    position = factory.Sequence(lambda n: n)
    item_type = "payment_paid_out"
    amount = "1250.0"


class RefundFactory(_MirrorFactory):
    class Meta:
        model = Refund

    gocardless_id = factory.Sequence(lambda n: f"RF{n:010d}")
    status = "paid"
    amount = 500
    currency = "EUR"


class BillingRequestFactory(_MirrorFactory):
    class Meta:
        model = BillingRequest

    gocardless_id = factory.Sequence(lambda n: f"BRQ{n:010d}")
    status = "pending"


class SubscriptionFactory(_MirrorFactory):
    class Meta:
        model = Subscription

    gocardless_id = factory.Sequence(lambda n: f"SB{n:010d}")
    amount = 2500
    currency = "EUR"
    name = "Monthly service"
    interval_unit = "monthly"


class InstalmentScheduleFactory(_MirrorFactory):
    class Meta:
        model = InstalmentSchedule

    gocardless_id = factory.Sequence(lambda n: f"IS{n:010d}")
    currency = "EUR"
    total_amount = 30000
    name = "Three parts"


GOCARDLESS_FACTORIES: dict = {
    WebhookDelivery: WebhookDeliveryFactory,
    GoCardlessEvent: GoCardlessEventFactory,
    Customer: CustomerFactory,
    CustomerBankAccount: CustomerBankAccountFactory,
    Mandate: MandateFactory,
    Payment: PaymentFactory,
    Payout: PayoutFactory,
    PayoutItem: PayoutItemFactory,
    Refund: RefundFactory,
    BillingRequest: BillingRequestFactory,
    Subscription: SubscriptionFactory,
    InstalmentSchedule: InstalmentScheduleFactory,
}
