"""Bookings benchmark: posting receipts to the Exact simulator at Exact's rate limit, with
lost answers, exactly once.

The Exact simulator runs in this process on the wall clock, at Exact's 60 calls a minute per
division, with 50 ms latency on every API call; N invoices are seeded with their customers,
and N receipt bookings are made for them (what the signal receivers create). A share of the
POSTs (``BENCH_BOOKINGS_LOST``, default 5 %) is applied by the simulator and then answered with
a dropped connection: the outcome is unknown to us. Then the sweeper runs as its schedule
would (a second pass stands for the run after the one-minute backoff).

Prints:

- pacing: calls and wall time against Exact's 60 calls a calendar minute, and 429s provoked;
- Exact calls per booking against the lower bound of 1 (a lost answer costs one lookup);
- entries in Exact per booking (target exactly 1.00) and invoices left open (target 0).

    .venv/bin/python bench/bookings.py                 # N=90: about two minutes
    BENCH_BOOKINGS_N=300 .venv/bin/python bench/bookings.py
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import WallClock, exact_bench_environ, exact_connect_simulator  # noqa: E402

N = int(os.environ.get("BENCH_BOOKINGS_N", "90"))
LOST_SHARE = float(os.environ.get("BENCH_BOOKINGS_LOST", "0.05"))
LATENCY_MS = 50
DIVISION_BASE = 900_000


def main() -> int:
    exact_bench_environ(log_level="ERROR")
    import django

    django.setup()

    from django.core.management import call_command
    from django.utils import timezone

    from reconciliation.bookings.config import booking_settings_validate
    from reconciliation.bookings.models import Booking, BookingSettings, BookingState, Rule
    from reconciliation.bookings.posting import bookings_sweep
    from simulators.exact_online import Simulator

    call_command("migrate", verbosity=0)
    sim = Simulator(clock=WallClock(), auto_consent=True).start()
    division = DIVISION_BASE + secrets.randbelow(90_000)
    sim.seed_division(division=division)
    tenant, _ = exact_connect_simulator(sim=sim, division=division, slug=f"bench-{division}")
    now = timezone.now()
    booking_settings = BookingSettings(
        tenant=tenant,
        clearing_journal_code="21",
        receivables_gl_code="1300",
        fees_gl_code="4600",
        transfer_gl_code="1190",
    )
    booking_settings_validate(settings=booking_settings)
    booking_settings.save()

    invoices = []
    for n in range(N):
        account = sim.seed_account(division, name=f"Customer {n:05d} B.V.")
        invoice = sim.seed_invoice(division, account=account["ID"], amount="121.00")
        invoices.append(invoice)
        Booking.objects.create(
            tenant=tenant,
            key=f"receipt:PMBENCH{n:06d}:1",
            rule=Rule.RECEIPT,
            gocardless_id=f"PMBENCH{n:06d}",
            reference=Booking.new_reference(),
            facts={
                "payment": f"PMBENCH{n:06d}",
                "invoice": invoice["InvoiceNumber"],
                "account": account["ID"],
                "amount": 12100,
                "attempt": f"{n}/1",
            },
            currency="EUR",
            amount_minor=12100,
            booking_date=now.date(),
        )
    lost = int(N * LOST_SHARE)
    sim.inject("latency", ms=LATENCY_MS)
    if lost:
        sim.inject(
            "timeout",
            count=lost,
            seconds=0.1,
            process=True,
            path="financialtransaction/BankEntries",
        )
    sim.call_counts(reset=True)

    started = time.monotonic()
    passes = 0
    while Booking.objects.exclude(state=BookingState.CONFIRMED).exists() and passes < 50:
        # Pass 1 as scheduled; later passes stand for the runs after the backoff.
        bookings_sweep(now=timezone.now() + timedelta(minutes=2 * passes), limit=N)
        passes += 1
    elapsed = time.monotonic() - started

    counts = sim.call_counts()
    api = {k: v for k, v in counts.items() if "/api/v1/" in k}
    calls = sum(v.get("total", 0) for v in api.values())
    too_many = sum(v.get("429", 0) for v in api.values())
    posts = sum(v.get("total", 0) for k, v in api.items() if k.startswith("POST"))
    lookups = sum(v.get("total", 0) for k, v in api.items() if "BankEntryLines" in k)
    entries = sim.ledger(division)
    still_open = sum(
        1
        for inv in invoices
        if Decimal(str(sim.invoice(division, invoice_id=inv["InvoiceID"])["Open"])) != 0
    )
    confirmed = Booking.objects.filter(state=BookingState.CONFIRMED).count()
    rate = calls / (elapsed / 60) if elapsed else 0.0
    sim.stop()

    print(f"bookings: {N} receipts, {lost} answers lost after Exact applied them")
    # Exact counts per calendar minute, so a run that crosses a minute boundary may average
    # more than 60/min; the pacing shows in the waits (resets) and in zero 429s.
    print(
        f"  pacing             {calls} calls in {elapsed:.0f} s ({rate:.0f}/min average); "
        f"at 60 a calendar minute at least {math.ceil(calls / 60) - 1} reset(s) to wait for; "
        f"{passes} sweeper passes"
    )
    print(f"  429s provoked      {too_many}")
    print(
        f"  calls per booking  {calls / N:.2f} (lower bound 1.00; POSTs {posts}, lookups {lookups})"
    )
    print(f"  entries per booking {len(entries) / N:.2f} (target 1.00); confirmed {confirmed}/{N}")
    print(f"  invoices left open {still_open} (target 0)")
    ok = len(entries) == N == confirmed and still_open == 0 and too_many == 0
    print("  OK" if ok else "  NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
