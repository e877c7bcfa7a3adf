import pytest

from tenants.models import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Alpha BV", slug="alpha")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Bravo Ltd", slug="bravo")


def _member(tenant, role, username):
    user = UserFactory(username=username)
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def admin_of_a(tenant_a):
    return _member(tenant_a, Role.ADMIN, "alice-admin")


@pytest.fixture
def operator_of_a(tenant_a):
    return _member(tenant_a, Role.OPERATOR, "oscar-operator")


@pytest.fixture
def viewer_of_a(tenant_a):
    return _member(tenant_a, Role.VIEWER, "victor-viewer")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)
