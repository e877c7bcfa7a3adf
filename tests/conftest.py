import os

import pytest
from django.conf import settings

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


# --- markers: one place decides what runs where ----------------------------------------------
# ``postgres``: needs PostgreSQL (row locks between connections, advisory locks, triggers);
# skipped with a reason on any other database. ``slow``: a test that takes many seconds
# (end-to-end runs, subprocesses); skipped when MLC_SKIP_SLOW=1 for a quick local loop, always
# run by `make test` and CI.


def database_is_postgres() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


def pytest_collection_modifyitems(config, items):
    skip_postgres = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://...)")
    skip_slow = pytest.mark.skip(reason="slow test skipped (MLC_SKIP_SLOW=1)")
    on_postgres = database_is_postgres()
    skipping_slow = os.environ.get("MLC_SKIP_SLOW") == "1"
    # ``chaos``: a month under faults (tests/chaos), minutes per seed, with servers of its
    # own; `make chaos SEED=n` runs it (and CI, two seeds), `make test` does not.
    skip_chaos = pytest.mark.skip(reason="the chaos month: run it with `make chaos SEED=n`")
    chaos_seeds = os.environ.get("MLC_CHAOS_SEEDS", "").strip()
    for item in items:
        if item.get_closest_marker("chaos") and not chaos_seeds:
            item.add_marker(skip_chaos)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_postgres)
        if "slow" in item.keywords and skipping_slow:
            item.add_marker(skip_slow)

