"""Fixtures for the Exact integration tests: a live simulator, a connected tenant, and a
client whose rate limiter runs on the simulator's clock (its sleep advances that clock).

The simulator lives on a custom base URL, which only an installation with
EXACT_ALLOW_CUSTOM_BASE_URL may use (tests run with DEBUG off): every test here allows it,
except where a test says otherwise (tests/security/test_exact_*.py)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from exact.client import ExactClient, oauth_code_exchange
from exact.grants import grant_for_user, grant_tokens_replace, grants_lock
from exact.models import ConnectionStatus, ExactConnection, Region
from simulators.exact_online.state import DEFAULT_USER_ID
from tests.plugins.exact_sim import DIVISION, ExactApi


@pytest.fixture(autouse=True)
def _custom_base_url_allowed(settings):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True


class SimSleep:
    """Injected sleep: advances the simulator clock instead of waiting for real."""

    def __init__(self, sim):
        self.sim = sim
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.sim.advance(seconds)


@pytest.fixture
def sim(exact_simulator):
    exact_simulator.seed_division(division=DIVISION)
    return exact_simulator


@pytest.fixture
def exact_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    return mail.outbox


def grant_for(sim, *, user_id: str = DEFAULT_USER_ID, divisions=(DIVISION,)):
    """A consent of ``user_id`` at the simulator (a real code exchange), stored the way the
    callback stores it: in that user's grant, shared by all their connections."""
    if user_id != sim.oauth_settings["consent_user"]:
        sim.settings(consent_user=user_id)
    tokens = oauth_code_exchange(base_url=sim.url, code=ExactApi(sim).authorize_code())
    grant = grant_for_user(
        client_id=django_settings.EXACT_CLIENT_ID,
        region=Region.CUSTOM,
        custom_base_url=sim.url,
        exact_user_id=user_id,
    )
    with transaction.atomic():
        grant = grants_lock([grant.pk])[grant.pk]
        grant_tokens_replace(
            grant=grant,
            tokens=tokens,
            issued_at=timezone.now(),
            exact_user_name="Sim User",
            divisions=[{"code": d, "name": f"Division {d}"} for d in divisions],
        )
    return grant


def connect(tenant, sim, *, division=DIVISION, grant=None, **extra):
    """A connected connection on ``division`` with a real token pair from the simulator
    (``grant``: another connection's consent of the same Exact user)."""
    grant = grant or grant_for(sim, divisions=(division,))
    fields = {
        "region": Region.CUSTOM,
        "custom_base_url": sim.url,
        "division": division,
        "division_name": "Sim",
        "status": ConnectionStatus.CONNECTED,
        **extra,
    }
    return ExactConnection.objects.create(tenant=tenant, grant=grant, **fields)


@pytest.fixture
def connection(tenant_a, sim):
    return connect(tenant_a, sim)


@pytest.fixture
def sim_sleep(sim):
    return SimSleep(sim)


@pytest.fixture
def api(connection, sim, sim_sleep):
    return ExactClient(connection, clock=sim.clock.now, sleep=sim_sleep)


def token_calls(sim, grant="refresh_token") -> int:
    counts = sim.call_counts()
    return counts.get(f"POST /api/oauth2/token grant_type={grant}", {}).get("total", 0)


def status_count(sim, status) -> int:
    return sum(c.get(str(status), 0) for c in sim.call_counts().values())
