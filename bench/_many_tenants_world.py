"""The world of bench/many_tenants.py: both simulators in processes of their own, the tenants
seeded on both sides, and the task clusters (not a bench itself: `make bench` skips files
starting with _).

Each tenant has its own Exact division (its own budget of 60 calls a minute and 5,000 a day,
per app and division) reached through its own user's consent (one refresh-token chain per
user: one user for all would obsolete the older chains), and its own GoCardless access token
(the simulator's rate limit is per token, 1,000 a minute).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent

DIVISION_BASE = 400_000
SCHEME = "sepa_core"


def gc_token(n: int) -> str:
    return f"bench-many-token-{n:05d}"


# --- the simulators, each in a process of its own (its own GIL) --------------------------


def run_exact_simulator(ready, stop, asks, answers) -> None:
    import logging
    import queue

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from bench._support import WallClock
    from simulators.exact_online import Simulator

    sim = Simulator(clock=WallClock(), auto_consent=True).start()
    ready.put(sim.url)
    while not stop.is_set():
        # The call counter names routes with "{division}"; the daily budget is kept per
        # division, so it tells the calls each company made (asked for between phases).
        try:
            asks.get(timeout=0.5)
        except queue.Empty:
            continue
        with sim.state.lock:
            answers.put({division: window.used
                         for (_client, division), window in sim.ratelimiter._day.items()})
    sim.stop()


def run_gocardless_simulator(ready, stop, tokens: int) -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from simulators.gocardless import Simulator

    sim = Simulator(access_tokens=tuple(gc_token(n) for n in range(tokens))).start()
    ready.put((sim.url, sim.rate_limit_per_minute))
    stop.wait(4 * 3600)
    sim.stop()


def simulators_start(*, tokens: int):
    """Both simulators; returns ``(exact_url, gocardless_url, gc_per_minute, processes,
    stop, exact_budgets)``."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    exact_ready, gc_ready = context.Queue(), context.Queue()
    asks, answers = context.Queue(), context.Queue()
    processes = [
        context.Process(target=run_exact_simulator, args=(exact_ready, stop, asks, answers),
                        daemon=True),
        context.Process(target=run_gocardless_simulator, args=(gc_ready, stop, tokens),
                        daemon=True),
    ]
    for process in processes:
        process.start()
    exact_url = exact_ready.get(timeout=120)
    gc_url, per_minute = gc_ready.get(timeout=120)

    def stopper() -> None:
        stop.set()
        for process in processes:
            process.join(timeout=10)

    def exact_budgets() -> dict[int, int]:
        """Calls counted so far against each division's daily budget (by the simulator)."""
        asks.put("budgets")
        return answers.get(timeout=60)

    return exact_url, gc_url, per_minute, processes, stopper, exact_budgets


class ExactControl:
    """The Exact simulator's control API over HTTP (``POST /_control/<method>``)."""

    def __init__(self, url: str) -> None:
        import requests

        self.url, self.session = url, requests.Session()

    def __call__(self, method: str, **kwargs):
        answer = self.session.post(f"{self.url}/_control/{method}", json=kwargs, timeout=600)
        answer.raise_for_status()
        return answer.json()


# --- seeding --------------------------------------------------------------------------------


def exact_tenant_connect(*, exact: ExactControl, n: int, accounts: int, invoices: int,
                         open_invoices: int, slug: str, hour: int):
    """Division, user and bulk data at the simulator; the tenant connected through that
    user's consent and a real code exchange; collection due now (daily, this UTC hour)."""
    import requests
    from django.conf import settings
    from django.utils import timezone

    from exact.client import oauth_code_exchange
    from exact.models import ConnectionStatus, ExactConnection, Region
    from tenants.models import CollectionMode, ScheduleKind, Tenant

    division = DIVISION_BASE + n
    user_id = f"00000000-0000-4000-8000-{division:012d}"
    exact("seed_user", user_name=f"bench{division}", user_id=user_id)
    exact("seed_division", division=division, name=f"Bench {n}", users=[user_id])
    exact("seed_bulk", division=division, accounts=accounts, invoices=invoices,
          open_invoices=open_invoices, seed=n + 1)
    resp = requests.get(
        f"{exact.url}/api/oauth2/auth",
        params={"client_id": "sim-client-id", "redirect_uri": settings.EXACT_REDIRECT_URI,
                "response_type": "code", "state": "bench", "user": user_id},
        allow_redirects=False, timeout=30,
    )
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    tokens = oauth_code_exchange(base_url=exact.url, code=code)
    tenant = Tenant.objects.create(
        name=f"Bench company {n:04d}", slug=slug, time_zone="UTC",
        collection_mode=CollectionMode.AUTO, currencies=["EUR"], lead_days=5,
        minimum_amount=Decimal("1.00"), max_payments_per_run=100_000,
        schedule_kind=ScheduleKind.DAILY, collection_hour=hour,
    )
    now = timezone.now()
    connection = ExactConnection.objects.create(
        tenant=tenant, region=Region.CUSTOM, custom_base_url=exact.url, division=division,
        division_name=f"Bench {n}", status=ConnectionStatus.CONNECTED,
        access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
        token_issued_at=now, access_expires_at=now + timedelta(seconds=600),
    )
    return tenant, connection


def gocardless_connect(*, tenant, n: int, gc_url: str) -> None:
    from gocardless.models import ConnectionStatus, Environment, GoCardlessConnection

    GoCardlessConnection.objects.create(
        tenant=tenant, environment=Environment.CUSTOM, custom_base_url=gc_url,
        access_token=gc_token(n), webhook_secret="bench-webhook-secret",
        # The simulator's tokens all act for its first organisation; here each company has
        # an organisation of its own (one connection per organisation), as live.
        organisation_id=f"ORBENCH{n:05d}", status=ConnectionStatus.CONNECTED,
    )


def gocardless_mandates_seed(*, gc_url: str, count: int) -> list[dict]:
    """``count`` active SEPA mandates at the simulator (one bulk seed), as it renders them."""
    import requests

    answer = requests.post(f"{gc_url}/_control/seed",
                           json={"bulk": {"count": count, "scheme": SCHEME, "status": "active"}},
                           timeout=900)
    answer.raise_for_status()
    wanted = answer.json()["mandates"]
    rendered = {m["id"]: m for m in requests.get(f"{gc_url}/_control/state/mandates",
                                                  timeout=900).json()["mandates"]}
    return [rendered[m] for m in wanted]


def customers_link(*, tenant, mandates: list[dict]) -> int:
    """What matching leaves behind: each of the tenant's Exact accounts (mirrored by the
    sync) linked to a GoCardless customer with an active mandate (mirrored here)."""
    from django.utils import timezone

    from exact.models import ExactAccount
    from gocardless.models import Customer, Mandate
    from reconciliation.customers.models import CustomerLink, LinkState, MatchedBy

    now = timezone.now()
    accounts = list(ExactAccount.objects.filter(tenant=tenant).order_by("code"))
    mandates = mandates[: len(accounts)]
    customers = Customer.objects.bulk_create(
        [Customer(tenant=tenant, gocardless_id=m["links"]["customer"], fetched_at=now)
         for m in mandates], batch_size=1000)
    mirrored = Mandate.objects.bulk_create(
        [Mandate(tenant=tenant, gocardless_id=m["id"], status=m["status"], scheme=m["scheme"],
                 customer_id=m["links"]["customer"],
                 customer_bank_account_id=m["links"]["customer_bank_account"],
                 next_possible_charge_date=date.fromisoformat(m["next_possible_charge_date"]),
                 raw=m, fetched_at=now) for m in mandates], batch_size=1000)
    CustomerLink.objects.bulk_create(
        [CustomerLink(tenant=tenant, exact_account=a, exact_account_guid=a.exact_id,
                      exact_code=a.code, exact_name=a.name, gocardless_customer=c, mandate=m,
                      state=LinkState.MATCHED, matched_by=MatchedBy.METADATA, confirmed_at=now)
         for a, c, m in zip(accounts, customers, mirrored, strict=False)], batch_size=1000)
    return len(mandates)


def booking_settings_make(*, tenant) -> None:
    from reconciliation.bookings.config import booking_settings_validate
    from reconciliation.bookings.models import BookingSettings

    settings = BookingSettings(tenant=tenant, clearing_journal_code="21",
                               receivables_gl_code="1300", fees_gl_code="4600",
                               transfer_gl_code="1190")
    booking_settings_validate(settings=settings)
    settings.save()


# --- the task clusters ----------------------------------------------------------------------


def cluster_start(*, env: dict, cpus: frozenset[int] | None = None) -> subprocess.Popen:
    """One ``manage.py qcluster``; ``cpus``: pinned to those CPUs (set before the exec, so
    every process it forks, its workers included, inherits it)."""
    # --skip-checks: the checks refuse the simulators' custom base URLs with DEBUG off
    # (mlc.E010/E011), as they should in production; DEBUG on would keep every SQL query
    # in memory and spoil the RSS figures.
    return subprocess.Popen([sys.executable, "manage.py", "qcluster", "--skip-checks"], cwd=ROOT,
                            env={**os.environ, **env}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)


def cluster_stop(process: subprocess.Popen) -> str:
    """Stop a cluster by its own process group; returns what it wrote to stderr (tail)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
    return err[-3000:]


def wait_until(check, *, timeout: float, every: float = 0.5, alive=()) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in alive:
            if process.poll() is not None:
                raise RuntimeError(f"a task cluster stopped: {cluster_stop(process)}")
        if check():
            return True
        time.sleep(every)
    return False
