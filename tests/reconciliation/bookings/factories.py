"""Factories for the bookings app (merged into tests.factories.FACTORIES)."""

from __future__ import annotations

import datetime

import factory

from reconciliation.bookings.models import (
    Booking,
    BookingSettings,
    PlanPaymentMatch,
    RepostBatch,
    Rule,
)


class BookingSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BookingSettings

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    clearing_journal_code = "21"
    receivables_gl_code = "1300"
    fees_gl_code = "4600"
    transfer_gl_code = "1190"


class BookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Booking

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    rule = Rule.RECEIPT
    gocardless_id = factory.Sequence(lambda n: f"PM{n:012d}")
    key = factory.LazyAttribute(lambda b: f"{b.rule}:{b.gocardless_id}:1")
    reference = factory.LazyFunction(Booking.new_reference)
    currency = "EUR"
    amount_minor = 12100
    booking_date = datetime.date(2026, 3, 5)
    facts = factory.LazyAttribute(
        lambda b: {
            "payment": b.gocardless_id,
            "invoice": 25000001,
            "amount": b.amount_minor,
            "account": "5b7a3f5e-0000-4000-8000-00000000ac01",
            "attempt": "x/1",
            "currency": "EUR",
        }
    )


class RepostBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RepostBatch

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    requested_by_name = "operator"
    booking_ids = factory.LazyFunction(list)
    total = 0


class PlanPaymentMatchFactory(factory.django.DjangoModelFactory):
    """A subscription payment waiting for a person (no single open invoice fitted)."""

    class Meta:
        model = PlanPaymentMatch

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    payment = factory.SubFactory(
        "tests.gocardless.factories.PaymentFactory",
        tenant=factory.SelfAttribute("..tenant"),
        subscription_id="SB0000000001",
    )
    plan = factory.LazyAttribute(lambda m: m.payment.subscription_id)
    note = "No open invoice of EUR 12.50 due around its charge date."


BOOKINGS_FACTORIES: dict = {
    PlanPaymentMatch: PlanPaymentMatchFactory,
    Booking: BookingFactory,
    BookingSettings: BookingSettingsFactory,
    RepostBatch: RepostBatchFactory,
}
