"""Collection benchmark: one live run of 5,000 invoices against the GoCardless simulator.

The simulator runs in its own process (its own GIL) on the wall clock, at its default
1,000 requests a minute per token, with 50 ms latency on every API call. 5,000 customers with
active SEPA mandates are seeded there and mirrored here with one open EUR invoice each; then
one live collection run (``run_live``, what ``manage.py collection run`` does) creates the
payments. The client paces itself on ``RateLimit-Remaining`` / ``RateLimit-Reset``.

Prints:

- the payment-create rate (first to last create) as a fraction of the 1,000/minute ceiling,
  and the busiest calendar minute (the simulator counts per calendar minute);
- 429s provoked (from the simulator's call counts), and API calls per payment against the
  lower bound of 1;
- wall time (selection, waiting for the rate-limit reset), and peak RSS of this process
  (the connector; the simulator is another process).

Targets: rate >= 0.9 of the ceiling, no 429, exactly one payment per invoice. By nature a
full run lasts 5+ minutes (5,000 creates at 1,000 a minute); ``BENCH_COLLECT_N`` scales it
down (below ~2,000 invoices the ceiling hardly binds, so the rate target is only judged at
full size). ``BENCH_COLLECT_LATENCY_MS`` (default 50) changes the latency: at 0 the connector
is faster than the ceiling, which shows the pacing at work (waits for the reset, no 429).

    .venv/bin/python bench/collect.py                  # on-disk SQLite in a temp dir
    BENCH_COLLECT_N=500 .venv/bin/python bench/collect.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mlc_collect_bench \\
        .venv/bin/python bench/collect.py
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import ensure_database, peak_mb, rss_now_mb  # noqa: E402

FULL_SIZE = 5_000
INVOICES = int(os.environ.get("BENCH_COLLECT_N", FULL_SIZE))
LATENCY_MS = int(os.environ.get("BENCH_COLLECT_LATENCY_MS", 50))
CEILING = 1_000  # the simulator's default, per minute and token
TARGET = 0.9
TOKEN = "bench-collect-token"
SCHEME = "sepa_core"


def run_simulator(ready, stop) -> None:
    """The GoCardless simulator at its default rate limit, on the wall clock."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from simulators.gocardless import Simulator

    sim = Simulator(access_tokens=(TOKEN,)).start()
    assert sim.rate_limit_per_minute == CEILING, sim.rate_limit_per_minute
    ready.put(sim.url)
    stop.wait(3600)
    sim.stop()


def setup_django() -> str:
    tmp = tempfile.mkdtemp(prefix="collect-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",  # DEBUG keeps every SQL query in memory: not a fair RSS
            "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdefghijkl",
            "SALT_KEY": "bench-salt",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            # The benches talk to the local simulators: this installation allows their hosts
            # (production does not; docs/security.md).
            "EXACT_ALLOW_CUSTOM_BASE_URL": "true",
            "GOCARDLESS_ALLOW_CUSTOM_BASE_URL": "true",
            "LOG_LEVEL": "WARNING",
            "PUBLIC_BASE_URL": "https://connector.example.test",
            "EMAIL_URL": "consolemail://",
        }
    )
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return os.environ["DATABASE_URL"].split(":", 1)[0]


def seed(sim_url: str, invoices: int):
    """Mandates at the simulator, and the mirrors the selection reads, in our database."""
    import requests
    from django.utils import timezone

    from core.calendars import tenant_today
    from exact.models import ConnectionStatus as ExactStatus
    from exact.models import (
        ExactAccount,
        ExactConnection,
        ExactReceivable,
        ReceivableKind,
        SyncEntity,
        SyncMode,
        SyncRun,
    )
    from gocardless.models import (
        ConnectionStatus,
        Customer,
        Environment,
        GoCardlessConnection,
        Mandate,
    )
    from reconciliation.customers.models import CustomerLink, LinkState, MatchedBy
    from tenants.models import CollectionMode, Tenant

    answer = requests.post(
        f"{sim_url}/_control/seed",
        json={"bulk": {"count": invoices, "scheme": SCHEME, "status": "active"}},
        timeout=300,
    )
    answer.raise_for_status()
    wanted = set(answer.json()["mandates"])
    rendered = [
        m
        for m in requests.get(f"{sim_url}/_control/state/mandates", timeout=300).json()["mandates"]
        if m["id"] in wanted
    ]
    run = secrets.token_hex(4)
    tenant = Tenant.objects.create(
        name=f"Bench {run}",
        slug=f"bench-collect-{run}",
        collection_mode=CollectionMode.AUTO,
        currencies=["EUR"],
        lead_days=5,
        minimum_amount=Decimal("1.00"),
        max_payments_per_run=invoices,
    )
    GoCardlessConnection.objects.create(
        tenant=tenant,
        environment=Environment.CUSTOM,
        custom_base_url=sim_url,
        access_token=TOKEN,
        webhook_secret="bench-webhook-secret",
        organisation_id=f"ORB{run}",
        status=ConnectionStatus.CONNECTED,
    )
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(tenant=tenant, gocardless_id=m["links"]["customer"], fetched_at=now)
            for m in rendered
        ],
        batch_size=1000,
    )
    mandates = Mandate.objects.bulk_create(
        [
            Mandate(
                tenant=tenant,
                gocardless_id=m["id"],
                status=m["status"],
                scheme=m["scheme"],
                customer_id=m["links"]["customer"],
                customer_bank_account_id=m["links"]["customer_bank_account"],
                next_possible_charge_date=date.fromisoformat(m["next_possible_charge_date"]),
                raw=m,
                fetched_at=now,
            )
            for m in rendered
        ],
        batch_size=1000,
    )
    accounts = ExactAccount.objects.bulk_create(
        [
            ExactAccount(
                tenant=tenant,
                exact_id=uuid.uuid4(),
                code=str(100_000 + n),
                name=f"Bench Customer {n} B.V.",
                status="C",
                currency="EUR",
                synced_at=now,
            )
            for n in range(len(rendered))
        ],
        batch_size=1000,
    )
    CustomerLink.objects.bulk_create(
        [
            CustomerLink(
                tenant=tenant,
                exact_account=a,
                exact_account_guid=a.exact_id,
                exact_code=a.code,
                exact_name=a.name,
                gocardless_customer=c,
                mandate=m,
                state=LinkState.MATCHED,
                matched_by=MatchedBy.METADATA,
                confirmed_at=now,
            )
            for a, c, m in zip(accounts, customers, mandates, strict=True)
        ],
        batch_size=1000,
    )
    today = tenant_today(tenant)
    amounts = {}
    receivables = []
    for n, account in enumerate(accounts):
        value = Decimal(10 + n % 500) + Decimal(n % 97 + 1) / 100
        receivable = ExactReceivable(
            tenant=tenant,
            exact_id=uuid.uuid4(),
            account=account,
            account_exact_id=account.exact_id,
            invoice_number=30_000_000 + n,
            due_date=today + timedelta(days=n % 6),
            currency="EUR",
            amount=value,
            outstanding=value,
            kind=ReceivableKind.INVOICE,
            synced_at=now,
        )
        receivables.append(receivable)
        amounts[str(receivable.exact_id)] = int(value * 100)
    ExactReceivable.objects.bulk_create(receivables, batch_size=1000)
    # What a healthy Exact side leaves behind: a run only collects from a current copy.
    ExactConnection.objects.create(tenant=tenant, status=ExactStatus.CONNECTED, division=1)
    SyncRun.objects.create(tenant=tenant, entity=SyncEntity.RECEIVABLES, trigger="bench",
                           mode=SyncMode.INCREMENTAL, started_at=now, finished_at=now)
    return tenant, amounts


def main() -> int:
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    simulator = context.Process(target=run_simulator, args=(ready, stop), daemon=True)
    simulator.start()
    try:
        return measure(ready.get(timeout=60))
    finally:
        stop.set()
        simulator.join(timeout=10)


def measure(sim_url: str) -> int:
    backend = setup_django()
    import requests

    from reconciliation.collection.models import CollectionAttempt, RunState, RunTrigger
    from reconciliation.collection.runs import run_live

    print(
        f"collect: {INVOICES:,} invoices (full size {FULL_SIZE:,}) -> GoCardless simulator at "
        f"{CEILING:,} requests/minute, {LATENCY_MS} ms latency; database {backend}; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    seed_started = time.monotonic()
    tenant, amounts = seed(sim_url, INVOICES)
    requests.post(
        f"{sim_url}/_control/faults", json={"kind": "latency", "ms": LATENCY_MS}, timeout=10
    ).raise_for_status()
    print(f"   seeded in {time.monotonic() - seed_started:.1f} s")

    # Every API call this process makes: (finished at, method, path, status), and how long
    # each took (latency + the simulator's work + the client's HTTP).
    calls: list[tuple[float, str, str, int]] = []
    in_http: list[float] = []
    original = requests.Session.request

    def recording(self, method, url, *args, **kwargs):
        began = time.perf_counter()
        response = original(self, method, url, *args, **kwargs)
        path = urlsplit(url).path
        if not path.startswith("/_control/"):
            in_http.append(time.perf_counter() - began)
            calls.append((time.time(), method.upper(), path, response.status_code))
        return response

    requests.Session.request = recording
    baseline_mb = rss_now_mb()
    started = time.monotonic()
    run = run_live(tenant=tenant, trigger=RunTrigger.SCHEDULE)
    wall = time.monotonic() - started
    requests.Session.request = original

    counts = requests.get(f"{sim_url}/_control/call_counts", timeout=30).json()
    payments = requests.get(f"{sim_url}/_control/state/payments", timeout=300).json()["payments"]
    by_key = Counter(p["metadata"].get("mlc_attempt", "").split("/")[0] for p in payments)
    right = sum(
        1
        for p in payments
        if amounts.get(p["metadata"].get("mlc_attempt", "").split("/")[0]) == p["amount"]
    )
    once = set(by_key) == set(amounts) and max(by_key.values(), default=0) == 1
    with_id = CollectionAttempt.objects.filter(tenant=tenant).exclude(payment_gocardless_id="")

    creates = sorted(
        t
        for t, method, path, status in calls
        if method == "POST" and path == "/payments" and status == 201
    )
    span = creates[-1] - creates[0] if len(creates) > 1 else float("nan")
    span_rate = (len(creates) - 1) / span * 60 if len(creates) > 1 else 0.0
    # The simulator allows 1,000 calls per calendar minute: a run's first and last minutes
    # are partial (and a short run can squeeze 1,000 into the end of one minute and 1,000
    # into the start of the next), so the steady rate is the mean over the calendar minutes
    # the run spans completely.
    by_minute = Counter(int(t // 60) for t in creates)
    full = [n for m, n in by_minute.items() if min(by_minute) < m < max(by_minute)]
    rate = sum(full) / len(full) if full else span_rate
    per_minute = Counter(int(t // 60) for t, *_ in calls)
    busiest = max(per_minute.values(), default=0)
    gaps = [b - a for a, b in pairwise(creates)]
    waited = sum(g for g in gaps if g > 0.5)  # a create normally follows within ~0.1 s
    api_calls = sum(n for route, statuses in counts.items() for n in statuses.values())
    throttled = sum(statuses.get("429", 0) for statuses in counts.values())
    peak_rss = peak_mb()
    fraction = rate / CEILING
    judged = INVOICES >= FULL_SIZE

    ok = run.state == RunState.COMPLETED and once and right == INVOICES and throttled == 0
    ok &= with_id.count() == INVOICES
    rate_ok = fraction >= TARGET
    if judged:
        ok &= rate_ok
    print(
        f"   run #{run.pk} {run.state}: {run.submitted:,} payments created, {run.errors} errors;"
        f" at the simulator {len(payments):,} payments, one per invoice: "
        f"{'yes' if once else 'NO'}, right amount: {right:,}/{INVOICES:,}"
    )
    verdict = ("ok" if rate_ok else "MISS") if judged else "(judged at full size only)"
    basis = (
        f"mean of {len(full)} whole calendar minutes {sorted(full)}"
        if full
        else "first to last create: no whole calendar minute in a run this short"
    )
    print(
        f"   create rate       {rate:7.0f}/min = {fraction:.3f} of the {CEILING:,}/min ceiling "
        f"(target >= {TARGET}) {verdict}\n"
        f"                     ({basis}; first to last create {span_rate:.0f}/min)"
    )
    print(
        f"   busiest calendar minute {busiest}/{CEILING} = {busiest / CEILING:.3f} of the ceiling"
    )
    print(f"   429s provoked     {throttled} (target 0) {'ok' if throttled == 0 else 'MISS'}")
    print(
        f"   API calls/payment {api_calls / max(len(payments), 1):.3f} "
        f"({api_calls:,} calls; lower bound 1.000) {counts}"
    )
    print(
        f"   wall time         {wall:.1f} s (creates from first to last {span:.1f} s; "
        f"{waited:.1f} s of that waiting for the rate-limit reset; the rest: selection and "
        f"writing {INVOICES:,} items)"
    )
    http_ms = sum(in_http) / max(len(in_http), 1) * 1000
    per_payment_ms = span / max(len(creates) - 1, 1) * 1000 if len(creates) > 1 else 0.0
    print(
        f"   per payment       {per_payment_ms:.1f} ms between creates: {http_ms:.1f} ms in the "
        f"HTTP call ({LATENCY_MS} ms of it injected latency), the rest in the connector "
        f"(attempt row + audit before, result + audit after: one payment at a time)"
    )
    print(
        f"   peak RSS          {peak_rss:.0f} MB (before the run {baseline_mb:.0f} MB; "
        f"the simulator runs in another process)"
    )
    print(f"   {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
