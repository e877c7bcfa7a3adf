"""Many-tenant benchmark: the 07:00 burst of many companies through the scheduled path.

BENCH_TENANTS companies (default 200) with BENCH_INVOICES open invoices each (default 50),
every one due in the same minute, against both simulators in processes of their own at 50 ms
latency per call (Exact: one division per company, 60 calls a minute and 5,000 a day each;
GoCardless: one access token per company, 1,000 calls a minute each). The work goes through
the real scheduled path: the sweeps (``exact.sync_due``'s ``sync_sweep``, then
``collection.runs_due``'s ``scheduled_runs_start``) queue one task per tenant on the Redis
broker, and ``manage.py qcluster`` processes (BENCH_WORKERS workers each, default 4) against
PostgreSQL do the work; then each payment's receipt booking is queued as its receiver queues
it and posted by the workers (bench/_many_tenants_run.py says phase by phase what runs).

Three scenarios, each in a fresh database, fresh simulators and a flushed Redis db:

- one cluster: wall time against the lower bound, p95 per-tenant completion, API calls per
  tenant against the lower bound, 429s, peak RSS per process, duplicates;
- two clusters (the same queue, twice the workers): the throughput ratio (target >= 1.7x),
  zero duplicates; its wall time against its own bound (half the one-cluster bound: twice the
  workers) is printed but not judged, since the cores under it are the same;
- one cluster with one more company of BENCH_BIG_INVOICES invoices (default 50,000, 24 % open,
  a customer per 10 invoices) picked first: the p95 completion of the small companies
  against the run without it (target <= 1.5x).

The lower bound of a phase (printed with its numbers):

    max( latency x calls / workers,                  all workers busy on the calls alone
         latency x calls of the busiest tenant,       one tenant's calls are one task's
         (ceil(calls per division / 60) - 1) x 60 s,  Exact's minute per division
         (ceil(calls per token / 1,000) - 1) x 60 s ) GoCardless' minute per token

with calls = what the phase cannot do with fewer: ceil(accounts / 1,000) +
ceil(open invoices / 1,000) pages per sync, one POST per payment, one POST per booking.

    DATABASE: PostgreSQL at 127.0.0.1:5432 (databases mlc_bench_many_*, made and dropped here)
    BROKER:   Redis at 127.0.0.1:6379, db 5 (BENCH_REDIS_URL), flushed before and after
    .venv/bin/python bench/many_tenants.py                  # 200 tenants, 3 scenarios: ~20 minutes
    BENCH_TENANTS=1000 .venv/bin/python bench/many_tenants.py
    BENCH_SCENARIOS=one BENCH_TENANTS=20 .venv/bin/python bench/many_tenants.py
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TENANTS = int(os.environ.get("BENCH_TENANTS", "200"))
INVOICES = int(os.environ.get("BENCH_INVOICES", "50"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
BIG_INVOICES = int(os.environ.get("BENCH_BIG_INVOICES", "50000"))
SCENARIOS = os.environ.get("BENCH_SCENARIOS", "one,two,big").split(",")
EXACT_PER_MINUTE = 60
TARGET_RATIO, TARGET_SCALE, TARGET_FAIR = 1.5, 1.7, 1.5

SPECS = {
    "one": {"clusters": 1, "big_invoices": 0},
    "two": {"clusters": 2, "big_invoices": 0},
    "big": {"clusters": 1, "big_invoices": BIG_INVOICES},
}


def scenario(name: str) -> dict:
    """One scenario in a process of its own; with BENCH_RESULTS_DIR its figures are kept
    there, and BENCH_REUSE=1 reports kept figures instead of measuring again (to run the
    scenarios one at a time and compare them afterwards)."""
    kept = Path(os.environ["BENCH_RESULTS_DIR"]) / f"many_tenants_{name}_{TENANTS}.json" if (
        os.environ.get("BENCH_RESULTS_DIR")) else None
    if kept and kept.exists() and os.environ.get("BENCH_REUSE") == "1":
        return json.loads(kept.read_text())
    spec = {"name": name, "tenants": TENANTS, "invoices": INVOICES, "workers": WORKERS,
            **SPECS[name]}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "_many_tenants_run.py"),
                           json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-6000:], sep="\n")
        raise SystemExit(f"scenario {name} failed")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if kept:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(data))
    return data


def p95(values) -> float:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return float("nan")
    return ordered[min(int(0.95 * len(ordered)), len(ordered) - 1)]


def bounds(data: dict) -> dict[str, dict]:
    """Each phase's lower bound in seconds, and the calls it counts (module docstring)."""
    latency = data["latency_ms"] / 1000
    workers = data["clusters"] * data["workers"]
    pays = [int(n) for n in data["payments_per_tenant"].values()]
    sync_calls = 2 * math.ceil(data["invoices"] / 1000)  # accounts and open invoices, a page each
    out = {}
    for phase, per_tenant, per_minute in (
        ("sync", [sync_calls] * data["tenants"], EXACT_PER_MINUTE),
        ("collection", pays, data["gc_per_minute"]),
        ("bookings", pays, EXACT_PER_MINUTE),
    ):
        calls = sum(per_tenant)
        busiest = max(per_tenant, default=0)
        terms = {
            "all workers": latency * calls / workers,
            "busiest tenant": latency * busiest,
            "rate limit": (math.ceil(busiest / per_minute) - 1) * 60 if busiest else 0,
        }
        out[phase] = {"calls": calls, "seconds": max(terms.values()), "terms": terms}
    return out


def calls_per_tenant(data: dict) -> tuple[float, float, float, int]:
    """(mean Exact calls per small tenant, max, mean GoCardless calls, 429s)."""
    per_division: dict[str, int] = {}
    throttled = 0
    for phase in data["phases"].values():
        for division, calls in phase["exact"].items():
            per_division[division] = per_division.get(division, 0) + calls
        throttled += phase["exact_statuses"].get("429", 0) + phase["gc"].get("429", 0)
    small = [per_division.get(str(d), 0) for d in data["divisions"].values()]
    gc_calls = sum(p["gc"].get("total", 0) for p in data["phases"].values())
    return (sum(small) / max(len(small), 1), max(small, default=0),
            gc_calls / max(data["tenants"], 1), throttled)


def tenant_totals(data: dict) -> list[float]:
    """Each small tenant's time to done: its completion in each phase, added up."""
    out = []
    ids = data["phases"]["collection"]["per_tenant"].keys()
    for tenant in ids:
        parts = [data["phases"][p]["per_tenant"].get(tenant) for p in data["phases"]]
        if all(part is not None for part in parts):
            out.append(sum(parts))
    return out


def report(name: str, data: dict) -> tuple[bool, float]:
    lower = bounds(data)
    wall = sum(p["wall"] for p in data["phases"].values())
    bound = sum(b["seconds"] for b in lower.values())
    ratio = wall / bound if bound else float("nan")
    exact_mean, exact_max, gc_mean, throttled = calls_per_tenant(data)
    pays = [int(n) for n in data["payments_per_tenant"].values()]
    lb_exact = 2 * math.ceil(data["invoices"] / 1000) + sum(pays) / max(len(pays), 1)
    lb_gc = sum(pays) / max(len(pays), 1)
    dups = data["gc_duplicates"] + data["exact_duplicates"]
    big = f" + one of {data['big_invoices']:,} invoices" if data["big_invoices"] else ""
    print(f"\n-- {name}: {data['tenants']} tenants x {data['invoices']} open invoices{big}; "
          f"{data['clusters']} cluster(s) x {data['workers']} workers; {data['latency_ms']} ms "
          f"latency; load average {', '.join(f'{x:.1f}' for x in data['load'])} "
          f"(start, after each phase) on {data['cpus']} cores"
          f"{'; clusters pinned, one CPU each' if data.get('pinned') else ''}; "
          f"seeding {data['seed_seconds']:.0f} s")
    print(f"   {'phase':<11}{'wall s':>8}{'bound s':>9}{'ratio':>7}{'p95 s':>8}   lower bound "
          "(max of: workers / busiest tenant / rate limit)")
    for phase, values in data["phases"].items():
        b = lower[phase]
        terms = " / ".join(f"{v:.1f}" for v in b["terms"].values())
        small = [v for k, v in values["per_tenant"].items() if k != str(data["big_id"])]
        print(f"   {phase:<11}{values['wall']:8.1f}{b['seconds']:9.1f}"
              f"{values['wall'] / b['seconds'] if b['seconds'] else float('nan'):7.2f}"
              f"{p95(small):8.1f}   {b['calls']:,} calls: {terms}"
              + ("" if values["ok"] else "  (TIMED OUT)"))
    # The ratio target is the one-cluster run's. Two clusters halve the latency bound but not
    # the cores under them: their target is the throughput against one cluster (main()).
    judged = data["clusters"] == 1 and not data["big_invoices"]
    ok_ratio = ratio <= TARGET_RATIO
    why_not = "fairness run" if data["big_invoices"] else (
        f"its target is the throughput against one cluster, >= {TARGET_SCALE}x")
    print(f"   total wall {wall:.1f} s against the lower bound {bound:.1f} s = {ratio:.2f}x "
          + (f"(target <= {TARGET_RATIO}) {'ok' if ok_ratio else 'MISS'}" if judged
             else f"(not judged: {why_not})"))
    print(f"   p95 per-tenant completion {p95(tenant_totals(data)):.1f} s "
          f"(a tenant's completion in each phase, added up)")
    print(f"   API calls per tenant: Exact {exact_mean:.1f} (max {exact_max}) against the lower "
          f"bound {lb_exact:.1f}; GoCardless {gc_mean:.1f} against {lb_gc:.1f}")
    print(f"   429s {throttled} (target 0) {'ok' if throttled == 0 else 'MISS'}")
    print(f"   duplicates: invoices with more than one payment at GoCardless "
          f"{data['gc_duplicates']}, with more than one receipt in Exact "
          f"{data['exact_duplicates']} (target 0) {'ok' if dups == 0 else 'MISS'}; "
          f"{data['gc_payments']:,} payments, {data['exact_entries']:,} entries")
    states = {p: v.get("states") for p, v in data["phases"].items() if v.get("states")}
    print(f"   outcomes {states}; sync errors {data['sync_errors'] or 'none'}")
    if data["phases"]["bookings"].get("big_bookings"):
        print(f"   the big tenant's receipts queued ahead of the small tenants': "
              f"{data['phases']['bookings']['big_bookings']:,} (its division posts 60 a minute)")
    post = data["phases"]["bookings"].get("post_seconds")
    if post is not None:
        print(f"   a booking's post, from its claim to the stored answer: {post * 1000:.0f} ms "
              f"on average ({data['latency_ms']} ms of it the simulator's latency)")
    print("   CPU per phase (seconds; PostgreSQL is the whole server, other sessions' queries "
          "included on a shared machine):")
    for phase, values in data["phases"].items():
        c = values.get("cpu")
        if not c:
            continue
        ours = c["clusters"] + c["simulators"] + c["self"]
        print(f"     {phase:<11} clusters {c['clusters']:6.1f}  simulators {c['simulators']:5.1f}"
              f"  bench {c['self']:4.1f}  PostgreSQL {c['postgres']:5.1f}  = "
              f"{(ours + c['postgres']) / data['cpus']:5.1f} s a core of {values['wall']:.1f} s "
              f"wall; machine busy {100 * c['machine_busy']:.0f} %")
    for phase, values in data["phases"].items():
        if values.get("errors"):
            print(f"   {phase} errors (first): {values['errors']}")
    clusters = [
        f"{max(peaks.values(), default=0):.0f} MB max of {len(peaks)} processes"
        for peaks in data["rss"]["clusters"]
    ]
    sims = data["rss"]["simulators"]
    print(f"   peak RSS: cluster(s) {'; '.join(clusters)}; simulators Exact "
          f"{sims['exact']:.0f} MB, GoCardless {sims['gocardless']:.0f} MB; bench process "
          f"{data['rss']['bench']:.0f} MB")
    fine = throttled == 0 and dups == 0 and all(p["ok"] for p in data["phases"].values())
    if judged:
        fine &= ok_ratio
    return fine, wall


def main() -> int:
    started = time.monotonic()
    print(f"many tenants: {TENANTS} tenants x {INVOICES} invoices, scenarios {SCENARIOS}, "
          f"{WORKERS} workers a cluster, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    results = {name: scenario(name) for name in SCENARIOS}
    ok = True
    walls = {}
    for name, data in results.items():
        fine, walls[name] = report(name, data)
        ok &= fine
    if "one" in results and "two" in results:
        scale = walls["one"] / walls["two"] if walls["two"] else float("nan")
        good = scale >= TARGET_SCALE
        ok &= good
        print(f"\ntwo clusters against one: {scale:.2f}x the throughput "
              f"({walls['one']:.1f} s -> {walls['two']:.1f} s; target >= {TARGET_SCALE}) "
              f"{'ok' if good else 'MISS'}")
    if "one" in results and "big" in results:
        print(f"\nfairness: p95 small-tenant completion with one {BIG_INVOICES:,}-invoice "
              f"tenant against without (target <= {TARGET_FAIR}x)")
        for phase in results["one"]["phases"]:
            base = p95(results["one"]["phases"][phase]["per_tenant"].values())
            big_id = str(results["big"]["big_id"])
            with_big = p95(v for k, v in results["big"]["phases"][phase]["per_tenant"].items()
                           if k != big_id)
            print(f"   {phase:<11}{base:8.1f} s -> {with_big:8.1f} s = {with_big / base:.2f}x")
        base, with_big = p95(tenant_totals(results["one"])), p95(tenant_totals(results["big"]))
        fair = with_big / base <= TARGET_FAIR
        ok &= fair
        print(f"   all phases {base:8.1f} s -> {with_big:8.1f} s = {with_big / base:.2f}x "
              f"{'ok' if fair else 'MISS'}")
    if TENANTS < 1000:
        print("\nthe 1,000-tenant variant is not run here (about five times as long): "
              "BENCH_TENANTS=1000 BENCH_SCENARIOS=one .venv/bin/python bench/many_tenants.py")
    print(f"\ntotal bench time {time.monotonic() - started:.0f} s: {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
