"""factory-boy factories for every model, and a registry from model to factory.

The admin scoping test walks every registered tenant-owned admin and asks this registry
for a factory; a new model without one makes that test fail, on purpose.
"""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from core.models import ActorType, AuditEntry
from exact.models import ConnectionStatus as ExactStatus
from exact.models import ExactConnection, Region
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import Environment, GoCardlessConnection
from tenants.models import Membership, Role, Tenant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("pw")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Company {n} BV")
    slug = factory.Sequence(lambda n: f"company-{n}")
    time_zone = "Europe/Amsterdam"
    currencies = factory.LazyFunction(lambda: ["EUR"])


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.VIEWER


class ExactConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExactConnection

    tenant = factory.SubFactory(TenantFactory)
    region = Region.NL
    division = factory.Sequence(lambda n: 100000 + n)
    division_name = factory.LazyAttribute(lambda c: f"Division {c.division}")
    access_token = factory.Sequence(lambda n: f"exact-access-token-{n}-PLAINTEXT")
    refresh_token = factory.Sequence(lambda n: f"exact-refresh-token-{n}-PLAINTEXT")
    status = ExactStatus.CONNECTED


class GoCardlessConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoCardlessConnection

    tenant = factory.SubFactory(TenantFactory)
    environment = Environment.SANDBOX
    access_token = factory.Sequence(lambda n: f"gocardless-access-token-{n}-PLAINTEXT")
    webhook_secret = factory.Sequence(lambda n: f"gocardless-webhook-secret-{n}-PLAINTEXT")
    organisation_id = factory.Sequence(lambda n: f"OR{n:06d}")
    status = GoCardlessStatus.CONNECTED


class AuditEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEntry

    tenant = factory.SubFactory(TenantFactory)
    actor_type = ActorType.SYSTEM
    actor_label = "tests"
    action = "test.happened"
    message = "something happened"


FACTORIES: dict[type, type[factory.django.DjangoModelFactory]] = {
    Tenant: TenantFactory,
    Membership: MembershipFactory,
    ExactConnection: ExactConnectionFactory,
    GoCardlessConnection: GoCardlessConnectionFactory,
    AuditEntry: AuditEntryFactory,
}


def _merge_app_factories() -> None:
    # Each integration app keeps its factories next to its tests; the registry merges them.
    from tests.exact.factories import EXACT_FACTORIES
    from tests.gocardless.factories import GOCARDLESS_FACTORIES
    from tests.reconciliation.bookings.factories import BOOKINGS_FACTORIES
    from tests.reconciliation.collection.factories import COLLECTION_FACTORIES
    from tests.reconciliation.factories import RECONCILIATION_FACTORIES

    FACTORIES.update(EXACT_FACTORIES)
    FACTORIES.update(GOCARDLESS_FACTORIES)
    FACTORIES.update(RECONCILIATION_FACTORIES)
    FACTORIES.update(COLLECTION_FACTORIES)
    FACTORIES.update(BOOKINGS_FACTORIES)


_merge_app_factories()


def create_for_tenant(model, tenant: Tenant):
    """One object of `model` owned by `tenant` (for the tenant itself, the tenant)."""
    if model is Tenant:
        return tenant
    factory_class = FACTORIES.get(model)
    if factory_class is None:
        raise LookupError(f"tests/factories.py has no factory for {model.__name__}")
    # A factory whose model reaches its tenant indirectly takes `tenant` as a Params entry.
    return factory_class(tenant=tenant)
