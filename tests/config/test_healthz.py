"""GET /healthz: database, broker and per-tenant connection status; never a secret."""

import pytest
from django.db import OperationalError
from django_q.conf import Conf

from tests.factories import ExactConnectionFactory, GoCardlessConnectionFactory

pytestmark = pytest.mark.django_db


def test_reports_database_broker_and_tenants(client, tenant_a, tenant_b):
    ExactConnectionFactory(tenant=tenant_a)
    GoCardlessConnectionFactory(tenant=tenant_a, status="needs_reauth")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["tenants"] == [
        {"slug": "alpha", "active": True, "exact": "connected", "gocardless": "needs_reauth"},
        {
            "slug": "bravo",
            "active": True,
            "exact": "not_configured",
            "gocardless": "not_configured",
        },
    ]
    assert body["status"] == "degraded"  # an active tenant needs re-authorisation
    assert b"PLAINTEXT" not in response.content


def test_ok_when_everything_is_fine(client, tenant_a):
    ExactConnectionFactory(tenant=tenant_a)
    assert client.get("/healthz").json()["status"] == "ok"


def test_503_when_the_database_is_down(client, monkeypatch):
    from django.db import connection

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "db" failed: password=hunter2')

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"]["ok"] is False
    assert body["database"]["error"] == "OperationalError"
    assert b"hunter2" not in response.content


def test_broker_down_is_degraded_not_down(client, monkeypatch):
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == {"ok": False, "error": "ConnectionError"}
    assert response.json()["status"] == "degraded"


def test_redis_broker_when_configured(client, monkeypatch):
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:6379/15")
    broker = client.get("/healthz").json()["broker"]
    assert broker["ok"] is True and broker["type"] == "redis"


def test_only_get(client):
    assert client.post("/healthz").status_code == 405
