"""A real PostgreSQL server stopped and started under a real gunicorn (issue 18, item 2).

The suite's own database is not touched: a private server (tests/chaos/services.py) holds a
database of its own, migrated by ``manage.py migrate``; one gunicorn worker serves it with
kept connections (``DB_CONN_MAX_AGE=60``), as a production installation may. What is checked:

- while the server is down a delivery is answered 503 + Retry-After, logged in one line and
  without a traceback;
- the process recovers by itself: the first delivery after the server is back is taken,
  including after a restart no request saw (the worker's kept connection died with the old
  server: without CONN_HEALTH_CHECKS that first request failed on it);
- the delivery refused during the outage, sent again, is stored once.
"""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests

from tests.chaos.services import PrivatePostgres, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "outage-pg-secret"
DATABASE = "mlc_h3_outage"
TENANT_SETUP = f"""
from gocardless.models import ConnectionStatus, GoCardlessConnection
from tenants.models import Tenant
tenant = Tenant.objects.create(name="Outage", slug="outage")
GoCardlessConnection.objects.create(tenant=tenant, webhook_secret={SECRET!r},
                                    access_token="unused", organisation_id="OROUTAGEPG",
                                    status=ConnectionStatus.CONNECTED)
print(tenant.uuid)
"""


def _body(prefix: str, n: int = 5) -> bytes:
    events = [{"id": f"{prefix}{k}", "created_at": "2026-03-06T09:00:00.000Z",
               "resource_type": "payments", "action": "confirmed",
               "links": {"payment": f"PM{prefix}{k}"}, "details": {"cause": "payment_confirmed"}}
              for k in range(n)]
    return json.dumps({"events": events}, separators=(",", ":")).encode()


class Intake:
    """gunicorn on the private server; ``post`` sends a signed delivery."""

    def __init__(self, pg: PrivatePostgres, log: Path):
        self.pg, self.url = pg, pg.url(DATABASE)
        self.env = {**os.environ, "DATABASE_URL": self.url, "DB_CONN_MAX_AGE": "60",
                    "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": "",
                    "Q_SYNC": "false", "LOG_LEVEL": "WARNING"}
        with psycopg.connect(pg.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env,
                       check=True, timeout=300)
        self.tenant_uuid = subprocess.run(
            [*manage, "shell", "-c", TENANT_SETUP], cwd=ROOT, env=self.env, check=True,
            capture_output=True, text=True, timeout=120).stdout.split()[-1]
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = log.open("w")
        self.gunicorn = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-w", "1",
             "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def post(self, body: bytes) -> requests.Response:
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return requests.post(f"{self.base}/webhooks/gocardless/{self.tenant_uuid}/", data=body,
                             timeout=30, headers={"Content-Type": "application/json",
                                                  "Webhook-Signature": signature})

    def wait_ready(self) -> None:
        for _ in range(200):
            try:
                requests.get(f"{self.base}/healthz", timeout=5)
                return
            except requests.ConnectionError:
                if self.gunicorn.poll() is not None:
                    raise RuntimeError("gunicorn exited") from None
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not answer")

    def rows(self, sql: str, params=()) -> list:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        if self.gunicorn.poll() is None:
            self.gunicorn.terminate()
            self.gunicorn.wait(20)
        self.log.close()


@pytest.fixture
def intake(tmp_path):
    pg = PrivatePostgres().start()
    server = None
    try:
        server = Intake(pg, tmp_path / "gunicorn.log")
        server.wait_ready()
        yield server
    finally:
        if server is not None:
            server.stop()
        pg.destroy()


def test_a_postgresql_restart_is_503_then_taken_and_stored_once(intake):
    assert intake.post(_body("EVBEFORE")).status_code == 204

    intake.pg.stop()
    refused = intake.post(_body("EVDURING"))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "10"

    intake.pg.start()
    assert intake.post(_body("EVDURING")).status_code == 204  # GoCardless's retry
    # A restart between two requests: the worker's kept connection is dead; the health
    # check replaces it before the request uses it.
    intake.pg.restart()
    assert intake.post(_body("EVAFTER")).status_code == 204

    events = intake.rows("SELECT event_id, count(*) FROM gocardless_gocardlessevent "
                         "GROUP BY event_id ORDER BY event_id")
    assert events == sorted((f"{p}{k}", 1) for p in ("EVAFTER", "EVBEFORE", "EVDURING")
                            for k in range(5))
    sha = hashlib.sha256(_body("EVDURING")).hexdigest()
    assert intake.rows("SELECT response_status FROM gocardless_webhookdelivery "
                       "WHERE body_sha256 = %s", [sha]) == [(204,)]
    intake.stop()
    log = Path(intake.log.name).read_text()
    assert log.count("answered 503, database unavailable") == 1, log
    assert "Traceback" not in log and SECRET not in log
