"""Factories for reconciliation/ models (merged into tests.factories.FACTORIES).

Every factory accepts ``tenant=``; the admin scoping test builds one object per tenant.
"""

import factory

from reconciliation.customers.models import (
    CustomerLink,
    CustomerSettings,
    InvitationState,
    LinkState,
    MandateInvitation,
)


class CustomerSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerSettings

    tenant = factory.SubFactory("tests.factories.TenantFactory")


class CustomerLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerLink

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    exact_account = factory.SubFactory(
        "tests.exact.factories.ExactAccountFactory", tenant=factory.SelfAttribute("..tenant")
    )
    exact_account_guid = factory.LazyAttribute(lambda o: o.exact_account.exact_id)
    exact_code = factory.LazyAttribute(lambda o: o.exact_account.code)
    exact_name = factory.LazyAttribute(lambda o: o.exact_account.name)
    state = LinkState.UNMATCHED


class MandateInvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MandateInvitation

    tenant = factory.SubFactory("tests.factories.TenantFactory")
    link = factory.SubFactory(CustomerLinkFactory, tenant=factory.SelfAttribute("..tenant"))
    attempt = factory.Sequence(lambda n: n + 1)
    currency = "EUR"
    language = "nl"
    email = factory.LazyAttribute(lambda o: o.link.exact_account.email)
    billing_request_id = factory.Sequence(lambda n: f"BRQ{n:010d}")
    flow_id = factory.Sequence(lambda n: f"BRF{n:010d}")
    authorisation_url = factory.LazyAttribute(lambda o: f"https://pay.example.test/{o.flow_id}")
    state = InvitationState.SENT


RECONCILIATION_FACTORIES: dict = {
    CustomerSettings: CustomerSettingsFactory,
    CustomerLink: CustomerLinkFactory,
    MandateInvitation: MandateInvitationFactory,
}
