"""The chaos check: the fault-free month once, then the month under faults for each seed,
each compared with it; prints the report of every run. ``make chaos SEED=n`` runs it through
tests/chaos/test_month.py; ``python -m tests.chaos.check 1 2 3`` runs it directly.

Each month runs in a process of its own (tests/chaos/month.py) with its own PostgreSQL and
Redis servers and its own simulators, so a seed can be replayed alone:
``make chaos SEED=<seed>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.chaos.snapshot import differences

ROOT = Path(__file__).resolve().parents[2]
PARALLEL = int(os.environ.get("MLC_CHAOS_PARALLEL", "3"))


def month_run(*, seed: int, calm: bool, workdir: Path) -> dict:
    out = workdir / f"{'calm' if calm else 'chaos'}-{seed}.json"
    argv = [sys.executable, "-m", "tests.chaos.month", "--seed", str(seed), "--out", str(out)]
    if calm:
        argv.append("--calm")
    subprocess.run(argv, cwd=ROOT, check=False)
    if not out.exists():
        return {"error": "the month's process wrote nothing", "report": {}}
    return json.loads(out.read_text())


def report_lines(result: dict) -> list[str]:
    report = result.get("report", {})
    lines = [f"  {report.get('seconds', '?')} s, {report.get('hops', 0)} clock hops to heal"]
    for name in ("faults", "webhooks"):
        counts = report.get(name)
        if counts:
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())
                                                   if v))
    if "workers_killed" in report:
        lines.append(f"  workers SIGKILLed: {report['workers_killed']}; processes restarted: "
                     f"{report.get('processes_restarted')}")
    for key in ("postgres_restarted_on_day", "redis_restarted_on_day",
                "stalled clusters restarted", "Exact reconnects asked of an administrator"):
        if key in report:
            lines.append(f"  {key.replace('_', ' ')} {report[key]}")
    if report.get("product"):
        lines.append("  ml-connector: " + ", ".join(
            f"{k} {v}" for k, v in report["product"].items() if k != "run decisions"))
    return lines


def totals_line(state: dict) -> str:
    payments = sum(len(c["gocardless"]["payments"]) for c in state.values())
    bookings = sum(len(c["ml-connector"]["bookings"]) for c in state.values())
    entries = sum(len(c["exact"]["ledger"]) for c in state.values())
    return (f"  {payments} payments at GoCardless, {bookings} bookings, {entries} entries in "
            "Exact's ledgers")


def check(seeds: list[int], *, out=print, parallel: int = PARALLEL) -> bool:
    """The months run side by side (``parallel`` at a time: each mostly waits for its
    processes to go quiet), then are compared in order."""
    workdir = Path(tempfile.mkdtemp(prefix="mlc-chaos-check-"))
    started = time.monotonic()
    jobs = [(seeds[0], True)] + [(seed, False) for seed in seeds]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {job: pool.submit(month_run, seed=job[0], calm=job[1], workdir=workdir)
                   for job in jobs}
        results = {job: future.result() for job, future in futures.items()}
    calm = results[(seeds[0], True)]
    if "error" in calm:
        out(f"The fault-free month failed: {calm['error']}\n{calm.get('traceback', '')}")
        out(f"  logs: {calm.get('logs')}")
        return False
    out("Fault-free month:")
    out(totals_line(calm["state"]))
    for line in report_lines(calm):
        out(line)
    ok = True
    for seed in seeds:
        result = results[(seed, False)]
        out(f"Seed {seed}:")
        for line in report_lines(result):
            out(line)
        if "error" in result:
            ok = False
            out(f"  FAILED: {result['error']}\n{result.get('traceback', '')}")
            out(f"  logs: {result.get('logs')}")
            out(f"  replay: make chaos SEED={seed}")
            continue
        out(totals_line(result["state"]))
        diff = differences(calm["state"], result["state"])
        if diff:
            ok = False
            out(f"  NOT EQUAL to the fault-free month ({len(diff)} differences):")
            for line in diff[:60]:
                out(f"    {line}")
            out(f"  logs: {result.get('logs')}; states: {workdir}")
            out(f"  replay: make chaos SEED={seed}")
        else:
            out("  equal to the fault-free month: GoCardless, Exact's ledgers, every mirror, "
                "the bookings and the February report")
    out(f"{len(seeds)} seed(s) in {time.monotonic() - started:.0f} s: "
        f"{'all equal' if ok else 'FAILED'}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if check([int(s) for s in sys.argv[1:]] or [1]) else 1)
