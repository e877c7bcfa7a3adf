"""Fixtures for the Exact integration tests: a live simulator, a connected tenant, and a
client whose rate limiter runs on the simulator's clock (its sleep advances that clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exact.client import ExactClient, oauth_code_exchange
from exact.models import ConnectionStatus, Region
from tests.factories import ExactConnectionFactory
from tests.plugins.exact_sim import DIVISION, ExactApi


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


def connect(tenant, sim, **extra):
    """A connection with a real token pair from the simulator (code exchange)."""
    tokens = oauth_code_exchange(base_url=sim.url, code=ExactApi(sim).authorize_code())
    now = timezone.now()
    return ExactConnectionFactory(
        tenant=tenant,
        region=Region.CUSTOM,
        custom_base_url=sim.url,
        division=DIVISION,
        division_name="Sim",
        status=ConnectionStatus.CONNECTED,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        token_issued_at=now,
        access_expires_at=now + timedelta(seconds=600),
        **extra,
    )


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
