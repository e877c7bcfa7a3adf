"""One month of the chaos run, in a process of its own: ``python -m tests.chaos.month
--seed N [--calm] --out state.json``.

``--calm``: the fault-free month. Otherwise, from 07:00 on the first day until the last day:
~10 % of the simulators' API calls fail (timeouts before and after the work was done, 500s,
HTML 502s, 429 bursts, dropped answers), webhooks are dropped, duplicated, delayed and so
reordered, task workers are SIGKILLed at random moments, PostgreSQL is restarted once and
Redis once. Then the faults stop, the product is left to heal (its sweeps and polling, no
help from us), and the final state is written: snapshot.py's, comparable between runs.

Everything random is drawn from ``random.Random(seed)`` (and the simulators' own seeded
generators); the timing of processes is not reproducible, which is the point: the final
state must not depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.chaos import story as st  # noqa: E402
from tests.chaos.services import PrivatePostgres, PrivateRedis, _pg_bin, free_port  # noqa: E402
from tests.chaos.world import (  # noqa: E402
    HTTP_TIMEOUT,
    QUIET_EVERY,
    QUIET_SAMPLES,
    Clock,
    Processes,
    WorkerKiller,
    broker_queue_size,
    enqueue,
    with_database,
)

FAULT_RATE = 0.10
HOP = timedelta(minutes=20)
MAX_HOPS = 24
KILL_MEAN_SECONDS = 15.0
STALL_SECONDS = 30.0
# The periodic jobs a day's work needs, queued at each settle as django-q2's scheduler would
# (the cluster's own scheduler runs them too, on the product's clock).
KICKS = (
    "exact.tasks.exact_sync_due_task",
    "gocardless.tasks.events_poll_task",
    "gocardless.tasks.events_sweep_task",
    "reconciliation.collection.tasks.runs_due_task",
    "reconciliation.bookings.tasks.plan_payments_sweep_task",
    "reconciliation.bookings.tasks.bookings_sweep_task",
    "reconciliation.customers.tasks.reflections_sweep_task",
)


def _environ(*, pg: PrivatePostgres, redis: PrivateRedis, web_port: int) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.chaos.settings",
        "DATABASE_URL": pg.url("mlc_chaos"),
        "REDIS_URL": redis.url(0),
        "Q_SYNC": "false",
        "Q_WORKERS": "3",
        "Q_CLUSTER_NAME": "mlc-chaos",
        "Q_TIMEOUT": "120",
        "Q_RETRY": "150",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "EXACT_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
        "GOCARDLESS_HTTP_TIMEOUT": str(HTTP_TIMEOUT),
        # What survives a restart of PostgreSQL: a connection that died with the server is
        # checked before reuse (docs/operations.md).
        "DB_CONN_MAX_AGE": "60",
        "PYTHONUNBUFFERED": "1",
    }


class Month:
    def __init__(self, *, seed: int, calm: bool, logdir: Path) -> None:
        self.seed, self.calm, self.logdir = seed, calm, logdir
        self.rng = random.Random(seed)
        self.began = time.monotonic()
        self.companies = st.companies()
        self.report: dict = {"seed": seed, "calm": calm, "hops": 0, "days": {}}
        self.pg = PrivatePostgres().start()
        self.redis = PrivateRedis().start()
        self.web_port = free_port()
        self.env = _environ(pg=self.pg, redis=self.redis, web_port=self.web_port)
        os.environ.update(self.env)
        import psycopg

        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlc_chaos")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("schedules", stdout=open(os.devnull, "w"))
        self.processes = Processes(env=self.env, web_port=self.web_port)
        self.killer = WorkerKiller(seed=seed * 7919 + 1, mean_seconds=KILL_MEAN_SECONDS)
        # Which day PostgreSQL and Redis are restarted on (chaos only).
        self.pg_day = self.rng.choice([d for d in st.DAYS if 1 <= d <= 24])
        self.redis_day = self.rng.choice([d for d in st.DAYS if 1 <= d <= 24])

    # --- the simulators -------------------------------------------------------------------

    def simulators_start(self) -> None:
        from simulators.exact_online import SimClock as ExactClock
        from simulators.exact_online import Simulator as ExactSimulator
        from simulators.gocardless import SimClock as GoCardlessClock
        from simulators.gocardless import Simulator as GoCardlessSimulator

        for n, company in enumerate(self.companies, start=1):
            company.exact_sim = ExactSimulator(auto_consent=True,
                                               clock=ExactClock(st.START)).start()
            company.exact_sim.set_time(st.START - timedelta(hours=1), ticking=True)
            company.gc_sim = GoCardlessSimulator(
                access_tokens=(st.GC_TOKEN,), webhook_secret=st.WEBHOOK_SECRET,
                organisation_id=f"OR000CHAOS{n}", creditor_id=f"CR000CHAOS{n}",
                organisation_name=company.name, schemes=("bacs", "sepa_core"),
                clock=GoCardlessClock(st.START - timedelta(hours=1), frozen=True)).start()

    def simulators_stop(self) -> None:
        for company in self.companies:
            for sim in (company.exact_sim, company.gc_sim):
                if sim is not None:
                    sim.stop()

    def chaos(self, on: bool) -> None:
        """Faults in both simulators, webhook mischief, killed workers."""
        for n, company in enumerate(self.companies, start=1):
            base = self.seed * 1000 + n * 10
            if on:
                company.gc_sim.faults.chaos(seed=base + 1, rate=FAULT_RATE, timeout_seconds=2.5)
                company.exact_sim.faults.chaos(seed=base + 2, rate=FAULT_RATE,
                                               timeout_seconds=2.5)
                company.gc_sim.webhook_chaos(seed=base + 3, duplicate=0.15, drop=0.15,
                                             delay=0.2, max_delay_seconds=4.0)
            else:
                company.gc_sim.faults.chaos_off()
                company.exact_sim.faults.chaos_off()
                company.gc_sim.webhook_chaos_off()
                company.gc_sim.flush_webhooks()
        if on:
            self.killer.start()
        else:
            self.killer.stop()

    # --- clocks and processes ---------------------------------------------------------------

    def clocks_to(self, when) -> None:
        """Everyone to ``when``: this process, both simulators of each company, and the
        product's processes (restarted under the new offset)."""
        self.processes.stop(hard=True)  # quiet now: nothing in flight to lose
        self.clock.move_to(when)
        for company in self.companies:
            company.exact_sim.set_time(when, ticking=True)
            gap = (when - company.gc_sim.clock.now()).total_seconds()
            if gap > 0:
                company.gc_sim.advance(seconds=gap)
        self.processes.start(offset=self.clock.offset(), logdir=self.logdir)

    # --- set-up -------------------------------------------------------------------------

    def setup(self) -> None:
        from core.audit import Actor

        self.actor = Actor.system("chaos")
        for company in self.companies:
            self.company_setup(company)
        for company in self.companies:
            self.gocardless_connect(company)

    def company_setup(self, company: st.Company) -> None:
        from reconciliation.bookings.config import booking_settings_validate
        from reconciliation.bookings.models import BookingSettings
        from tenants.models import CollectionMode, ScheduleKind
        from tenants.services import tenant_create

        company.tenant = tenant_create(
            name=company.name, actor=self.actor, slug=company.slug,
            time_zone=company.time_zone, collection_mode=CollectionMode.AUTO, lead_days=5,
            minimum_amount="1.00", currencies=[company.currency], retry_count=1,
            retry_spacing_days=3, collection_hour=company.hour,
            schedule_kind=ScheduleKind.MONTH_DAYS, schedule_month_days=[1, 15],
        )
        sim = company.exact_sim
        sim.seed_division(division=company.division, name=company.name,
                          currency=company.currency, country=company.country)
        accounts = {}
        for customer in company.customers:
            account = sim.seed_account(
                division=company.division, name=customer.name, code=customer.code,
                email=customer.email, iban=customer.iban, country=company.country,
                sales_currency=company.currency,
                id=st.fixed_id(company.slug, "account", customer.code))
            accounts[customer.code] = account["ID"]
        company.accounts = accounts
        for customer in company.customers:
            for invoice in customer.invoices:
                if invoice.issued_day < 0:
                    self.exact_invoice_seed(company, customer, invoice)
        self.exact_connect(company)
        settings = BookingSettings(
            tenant=company.tenant, enabled=True, clearing_journal_code="21",
            bank_journal_code="20", receivables_gl_code="1300", fees_gl_code="4600",
            transfer_gl_code="1190", unmatched_gl_code="2390")
        booking_settings_validate(settings=settings)
        settings.save()
        # Mandates that existed before ml-connector (and De Vries' subscription).
        specs = [{"scheme": company.scheme, "status": "active", "company_name": c.name,
                  "email": c.email} for c in company.customers]
        made = company.gc_sim.seed(mandates=specs)["mandates"]
        for customer, mandate in zip(company.customers, made, strict=True):
            if customer.subscription:
                plan = customer.subscription
                company.gc_sim.create_subscription({
                    "amount": plan["amount"], "currency": company.currency,
                    "interval_unit": "monthly", "day_of_month": plan["day_of_month"],
                    "name": plan["name"], "links": {"mandate": mandate}})

    def exact_invoice_seed(self, company, customer, invoice) -> None:
        due = (st.START + timedelta(days=invoice.due_day)).date()
        fields = {"division": company.division, "account": company.accounts[customer.code],
                  "amount": invoice.amount, "number": invoice.number,
                  "currency": company.currency,
                  "invoice_date": (due - timedelta(days=14)).isoformat(),
                  "due_date": due.isoformat(), "description": f"Invoice {invoice.number}",
                  "id": st.fixed_id(company.slug, "invoice", invoice.number)}
        if invoice.open is not None:
            fields["open"] = invoice.open
        if invoice.credit_note:
            company.exact_sim.seed_credit_note(**fields)
        else:
            company.exact_sim.seed_invoice(**fields)

    def exact_connect(self, company, *, again: bool = False) -> None:
        from django.conf import settings
        from django.utils import timezone

        from exact.client import oauth_code_exchange
        from exact.connections import connection_choose_division, connection_store_consent
        from exact.models import ExactConnection, Region

        if again:
            connection = ExactConnection.objects.get(tenant=company.tenant)
        else:
            connection = ExactConnection(tenant=company.tenant, region=Region.CUSTOM,
                                         custom_base_url=company.exact_sim.url)
            connection.full_clean()
            connection.save()
        code = st.consent_code(company.exact_sim.url, settings.EXACT_REDIRECT_URI,
                               company.slug)
        tokens = oauth_code_exchange(base_url=connection.base_url, code=code)
        connection = connection_store_consent(connection=connection, tokens=tokens,
                                              issued_at=timezone.now(), actor=self.actor)
        # After every consent the administrator picks the division again (our picker).
        connection_choose_division(connection=connection, division=company.division,
                                   division_name=company.name, actor=self.actor)

    def gocardless_connect(self, company) -> None:
        from gocardless.connect import connection_test
        from gocardless.models import Environment, GoCardlessConnection

        connection = GoCardlessConnection.objects.create(
            tenant=company.tenant, environment=Environment.CUSTOM,
            custom_base_url=company.gc_sim.url, access_token=st.GC_TOKEN,
            webhook_secret=st.WEBHOOK_SECRET)
        outcome = connection_test(connection=connection, actor=self.actor)
        if not outcome["ok"]:
            raise st.StoryError(f"GoCardless test connection failed: {outcome['error']}")
        company.gc_sim.set_webhook_url(
            f"http://127.0.0.1:{self.web_port}/webhooks/gocardless/{company.tenant.uuid}/")
        company.gc_sim.set_auto_deliver(0.5)

    def gocardless_refund(self, company, *, payment_id: str, amount: int, key: str) -> None:
        """A refund made in GoCardless' dashboard (its API, with an idempotency key, retried
        through whatever the simulator throws at it)."""
        import gocardless_pro

        client = gocardless_pro.Client(access_token=st.GC_TOKEN, base_url=company.gc_sim.url,
                                       timeout=5)
        for _ in range(30):
            try:
                client.refunds.create(
                    params={"amount": amount, "total_amount_confirmation": amount,
                            "links": {"payment": payment_id}},
                    headers={"Idempotency-Key": key})
                return
            except Exception:  # faults: the same key again
                time.sleep(0.3)
        raise st.StoryError("the dashboard refund never went through")

    def customers_match(self) -> None:
        from reconciliation.customers.matching import customers_match

        for company in self.companies:
            customers_match(tenant=company.tenant, actor=self.actor)

    # --- settling -------------------------------------------------------------------------

    def kick(self) -> None:
        for func in KICKS:
            enqueue(func)

    def fingerprint(self) -> tuple:
        from django_q.models import Task

        calls = 0
        for company in self.companies:
            calls += sum(sum(v for k, v in c.items() if k != "total")
                         for c in company.gc_sim.call_counts().values())
            calls += sum(c.get("total", 0) for c in company.exact_sim.call_counts().values())
        return (calls, broker_queue_size(), with_database(Task.objects.count))

    def busy(self) -> str:
        """What the product is doing right now ('' when nothing): tasks queued at the broker,
        prefetched by a cluster, or running in a live worker."""
        from django_q.status import Stat

        from tests.chaos.inflight import running_tasks

        try:
            queued = broker_queue_size()
            prefetched = sum(stat.task_q_size + stat.done_q_size for stat in Stat.get_all())
            running = running_tasks()
        except Exception as exc:  # Redis restarting: busy, by definition
            return f"broker unreachable ({type(exc).__name__})"
        if queued or prefetched or running:
            return f"{queued} queued, {prefetched} prefetched, running {running}"
        return ""

    def wait_quiet(self, timeout: float = 900) -> None:
        """Until nothing is queued, prefetched or running, and nothing moved (API calls,
        finished tasks) for QUIET_SAMPLES looks: a task finishing may queue the next."""
        deadline = time.monotonic() + timeout
        same, last, stalled_since = 0, None, None
        said_at = time.monotonic()
        while time.monotonic() < deadline:
            self.processes.supervise(offset=self.clock.offset(), logdir=self.logdir)
            doing = self.busy()
            current = self.fingerprint()
            if time.monotonic() - said_at > 30:
                self.log(f"still busy: {doing or 'moving'} {last} -> {current}")
                said_at = time.monotonic()
            if not doing and current == last:
                same += 1
                if same >= QUIET_SAMPLES:
                    return
            else:
                same = 0
            # Work waits and nothing moves: the cluster is wedged (a liveness probe's
            # decision in production, docs/operations.md): restart it.
            if doing and "running []" in doing and current == last:
                stalled_for = time.monotonic() - (stalled_since or time.monotonic())
                stalled_since = stalled_since or time.monotonic()
                if stalled_for > STALL_SECONDS:
                    self.log(f"the task cluster is stalled ({doing}): restarting it")
                    self.report["stalled clusters restarted"] = (
                        self.report.get("stalled clusters restarted", 0) + 1)
                    self.processes.cluster_restart(offset=self.clock.offset(),
                                                   logdir=self.logdir)
                    stalled_since = None
            else:
                stalled_since = None
            last = current
            time.sleep(QUIET_EVERY)
        raise st.StoryError(f"the product did not go quiet in {timeout:.0f} s: {doing}")

    def pending(self) -> list[str]:
        """What is still to be done now (not: what waits for a later day)."""
        from gocardless.models import GoCardlessEvent
        from reconciliation.bookings.models import Booking, BookingState
        from reconciliation.collection.models import (
            AttemptState,
            CollectionAttempt,
            CollectionRun,
            RunState,
        )
        from reconciliation.collection.schedules import slots_due_for_run

        said = []
        for company in self.companies:
            tenant = company.tenant
            at_gocardless = {e["id"] for e in company.gc_sim.events()}
            here = set(GoCardlessEvent.objects.filter(tenant=tenant)
                       .values_list("event_id", flat=True))
            if at_gocardless - here:
                said.append(f"{company.slug}: {len(at_gocardless - here)} events not received")
            unprocessed = GoCardlessEvent.objects.filter(tenant=tenant,
                                                         processed_at__isnull=True).count()
            if unprocessed:
                said.append(f"{company.slug}: {unprocessed} events not processed")
            bookings = list(Booking.objects.filter(
                tenant=tenant, state__in=(BookingState.PENDING, BookingState.SENT,
                                          BookingState.FAILED)).values_list(
                "rule", "state", "next_retry_at", "last_error"))
            if bookings:
                said.append(f"{company.slug}: {len(bookings)} bookings not posted, e.g. "
                            + "; ".join(f"{r} {s} retry {n} {e[:160]!r}"
                                        for r, s, n, e in bookings[:3]))
            due = [slot for t, slot in slots_due_for_run(now=self.clock.now())
                   if t.pk == tenant.pk]
            if due:
                said.append(f"{company.slug}: the collection slot of {due[0].at} has no run")
            runs = CollectionRun.objects.filter(
                tenant=tenant, state__in=(RunState.QUEUED, RunState.RUNNING)).count()
            if runs:
                said.append(f"{company.slug}: {runs} runs not finished")
            # A payment whose creation had no answer is resent by the sweep within minutes
            # (runs.pending_attempts_resend): work of today, not of the story's next day
            # (a resend the next morning asks a later charge date than the calm month's).
            unknown = CollectionAttempt.objects.filter(tenant=tenant,
                                                       state=AttemptState.PENDING).count()
            if unknown:
                said.append(f"{company.slug}: {unknown} payments with an unknown outcome")
        return said

    def diagnosis(self) -> str:
        """What holds the work back, for a day that would not settle: the advisory locks held
        (company turns, collection runs) and by whom, the bookings not posted, the turns
        marked queued, and what the broker holds."""
        from django.db import connection

        from reconciliation.bookings.models import Booking, BookingState, CompanyTurnQueued

        lines = []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT l.classid, l.objid, l.pid, a.state, a.backend_start, a.query_start, "
                "left(a.query, 120) FROM pg_locks l LEFT JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted")
            lines += [f"advisory lock {row}" for row in cursor.fetchall()]
        for booking in Booking.objects.exclude(state=BookingState.CONFIRMED).order_by("pk"):
            lines.append(
                f"booking {booking.pk} {booking.key} tenant {booking.tenant_id} {booking.state} "
                f"claimed {booking.claimed_at} retry {booking.next_retry_at} attempts "
                f"{booking.attempts} after {booking.after_id} unknown {booking.outcome_unknown}")
        lines += [f"turn queued: tenant {q.tenant_id} at {q.queued_at}"
                  for q in CompanyTurnQueued.objects.all()]
        lines.append(f"now (story) {self.clock.now()}; broker queue {broker_queue_size()}")
        return "\n".join(lines)

    def log(self, text: str) -> None:
        print(f"[{'calm' if self.calm else 'chaos'} {self.seed} "
              f"{time.monotonic() - self.began:6.1f}s] {text}", file=sys.stderr, flush=True)

    def settle(self, label: str) -> int:
        hops = 0
        self.log(f"{label}: settling")
        while True:
            self.kick()
            self.wait_quiet()
            left = with_database(self.pending)
            if not left:
                break
            with_database(self.administrators_reconnect)
            if hops >= MAX_HOPS:
                raise st.StoryError(f"{label}: still to do after {hops} hops: {left}\n"
                                    + with_database(self.diagnosis))
            hops += 1
            self.log(f"{label}: hop {hops}: {'; '.join(left)[:400]}")
            self.clocks_to(self.clock.now() + HOP)
        self.report["hops"] += hops
        self.log(f"{label}: settled after {hops} hops")
        return hops

    # --- the month ------------------------------------------------------------------------

    def run(self) -> dict:
        self.simulators_start()
        self.clock = Clock(st.START - timedelta(hours=1))
        try:
            self.processes.start(offset=self.clock.offset(), logdir=self.logdir)
            self.setup()
            self.settle("set-up")  # the first sync of every company
            self.customers_match()
            story = st.Story(self)
            for day in st.DAYS:
                self.clocks_to(st.start_day(day))
                if day == 0 and not self.calm:
                    self.chaos(True)
                story.on_day(day)
                restart = None
                if not self.calm and day in (self.pg_day, self.redis_day):
                    restart = threading.Thread(target=self.servers_restart, args=(day,))
                    restart.start()
                hops = self.settle(f"day {day}")
                if restart is not None:
                    restart.join()
                    self.settle(f"day {day} after the restart")
                self.report["days"][day] = hops
            if not self.calm:
                self.chaos(False)
            self.clocks_to(self.clock.now() + HOP)
            self.settle("healing")
            from tests.chaos.snapshot import snapshot

            state = with_database(snapshot, self)
            self.report["product"] = with_database(self.product_counts)
            self.report["notes"] = story.notes
            return state
        finally:
            self.killer.stop()
            self.processes.stop(hard=True)
            self.simulators_stop()
            self.clock.stop()

    def product_counts(self) -> dict:
        """What the product saw and suppressed: deliveries, events by how they arrived,
        duplicates, bookings and the attempts they took, payments made."""
        from django.db.models import Sum

        from gocardless.models import EventSource, GoCardlessEvent, WebhookDelivery
        from reconciliation.bookings.models import Booking
        from reconciliation.collection.models import CollectionAttempt, CollectionRun

        deliveries = WebhookDelivery.objects.filter(valid=True)
        delivered = deliveries.aggregate(n=Sum("event_count"))["n"] or 0
        by_webhook = GoCardlessEvent.objects.filter(source=EventSource.WEBHOOK).count()
        bookings = Booking.objects.all()
        return {
            "webhook deliveries accepted": deliveries.count(),
            "webhook deliveries refused": WebhookDelivery.objects.filter(valid=False).count(),
            "events stored from webhooks": by_webhook,
            "events recovered by polling": GoCardlessEvent.objects.filter(
                source=EventSource.POLL).count(),
            "duplicate events suppressed": max(delivered - by_webhook, 0),
            "payments created": CollectionAttempt.objects.exclude(
                payment_gocardless_id="").count(),
            "bookings": bookings.count(),
            # Why each run collected or skipped each invoice: where two months differ, this
            # says which run decided differently, and why.
            "run decisions": [
                f"{r.tenant.slug} {r.as_of} {r.trigger} {r.state}: " + ", ".join(
                    f"{i.invoice_number} {i.decision}{' ' + i.reason if i.reason else ''}"
                    for i in r.items.order_by("invoice_number"))
                for r in CollectionRun.objects.select_related("tenant").order_by("pk")],
            "collection runs that failed, were refused or died (and were run again)": [
                f"{r.tenant.slug} {r.state}: {r.error[:160]}"
                for r in CollectionRun.objects.filter(
                    state__in=("failed", "refused", "abandoned")).select_related("tenant")],
            "booking posts tried more than once": bookings.filter(attempts__gt=1).count(),
        }

    def administrators_reconnect(self) -> None:
        """A worker killed while Exact answered a token refresh loses the new pair: Exact has
        retired the old refresh token, so the chain is gone and only a person can reconnect
        (docs/exact.md). The product stops the company's Exact work, says so on the dashboard
        and e-mails its administrators; here the administrator reconnects within the hour."""
        from exact.models import ConnectionStatus, ExactConnection

        for company in self.companies:
            connection = ExactConnection.objects.get(tenant=company.tenant)
            if connection.status != ConnectionStatus.NEEDS_REAUTH:
                continue
            self.log(f"{company.slug}: Exact needs a reconnect ({connection.status_reason[:120]})"
                     ": the administrator reconnects")
            self.exact_connect(company, again=True)
            self.report["Exact reconnects asked of an administrator"] = (
                self.report.get("Exact reconnects asked of an administrator", 0) + 1)

    def servers_restart(self, day: int) -> None:
        """While the day's work is in flight: PostgreSQL and/or Redis go down and come back."""
        time.sleep(1.0 + self.rng.random() * 2)
        if day == self.pg_day:
            self.pg.restart(down_seconds=2.0)
            self.report["postgres_restarted_on_day"] = day
        if day == self.redis_day:
            self.redis.restart(down_seconds=1.0)
            self.report["redis_restarted_on_day"] = day

    def faults_report(self) -> dict:
        if self.calm:
            return {}
        faults: Counter = Counter()
        webhooks: Counter = Counter()
        for company in self.companies:
            faults.update({f"gocardless {k}": v
                           for k, v in company.gc_sim.faults.chaos_counts().items()})
            faults.update({f"exact {k}": v
                           for k, v in company.exact_sim.faults.chaos_counts().items()})
            webhooks.update(company.gc_sim.webhook_chaos_counts())
        return {"faults": dict(faults), "webhooks": dict(webhooks),
                "workers_killed": self.killer.killed,
                "processes_restarted": dict(self.processes.restarts)}

    def close(self) -> None:
        from django.db import connections

        connections.close_all()
        if os.environ.get("MLC_CHAOS_KEEP"):  # the month's database, for a post-mortem
            subprocess.run([_pg_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(self.pg.port),
                            "-U", "postgres", "-f", str(self.logdir / "mlc_chaos.sql"),
                            "mlc_chaos"], check=False)
            self.log(f"database kept: {self.logdir / 'mlc_chaos.sql'}")
        self.redis.destroy()
        self.pg.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--calm", action="store_true", help="the fault-free month")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    # Stopped from outside (a timeout, Ctrl-C): clean up the servers and processes of ours.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logdir = Path(tempfile.mkdtemp(prefix=f"mlc-chaos-{args.seed}-"))
    month = Month(seed=args.seed, calm=args.calm, logdir=logdir)
    started = time.monotonic()
    result = {"report": month.report, "logs": str(logdir)}
    try:
        result["state"] = month.run()
        result["report"].update(month.faults_report())
        status = 0
    except Exception as exc:  # printed with the seed for replay
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        status = 1
        try:  # what the product had done by then (its runs' decisions above all)
            result["report"]["product"] = with_database(month.product_counts, tries=3)
        except Exception as also:  # the database may be what failed
            result["report"]["product"] = f"not read: {type(also).__name__}"
    finally:
        result["report"]["seconds"] = round(time.monotonic() - started, 1)
        month.close()
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
