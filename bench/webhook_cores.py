"""Webhook intake on separate cores: web and task workers on their own CPU sets, as production
deploys them, with 1 and then 2 web processes.

A *web process* is one gunicorn sync worker (``gunicorn -w N``): a process that answers one
request at a time; the arbiter that forks them serves nothing and is not counted. For each
configuration the bench starts the stack of bench/_ingest.py with

- CPU 0: gunicorn (arbiter and its N workers), nothing else of ours;
- CPU 1: the task cluster (``manage.py qcluster``, normal priority: it has its own CPU, as on
  a worker node), the GoCardless simulator, the load clients and this script;
- PostgreSQL: not pinned (a server shared with other work; production has its own machine),
  its CPU time is measured and printed.

The load clients run on CPU 1 in SCHED_FIFO (priority 1): when an answer arrives the client
runs at once instead of waiting behind the task workers, so the latency it takes is the
service's; each reports the CPU time it used, printed as its share of CPU 1 (a few per cent:
what it takes from the task workers, never from the web core).

Per configuration it prints, at each offered rate of BENCH_RATES (first: 500 events/s, the
target; open loop): accepted events/s against the offered rate, p50/p99 (target p99 < 100 ms
at 500 events/s), the processing lag (target <= 10 s), the CPU each part used; then flat out
(closed loop, BENCH_CLIENTS clients for BENCH_FLAT_SECONDS): the most the web core accepts;
peak RSS per process. Last, the throughput of 2 web processes against 1.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mlc_bench_ingest_cores \\
        .venv/bin/python bench/webhook_cores.py
    BENCH_SECONDS=5 BENCH_FLAT_SECONDS=3 .venv/bin/python bench/webhook_cores.py   # smoke
    BENCH_RATES=500,1000,1500 BENCH_CORES_WEB=1,2,3 .venv/bin/python bench/webhook_cores.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._ingest import (
    BATCH,
    LAG_LIMIT,
    IngestStack,
    Layout,
    Phase,
    ingest_environ,
    peaks_mb,
    place,
    prepare_database,
    verdict,
)

TARGET_RATE = 500.0
TARGET_P99_MS = 100.0
TARGET_LAG_S = 10.0
DURATION = float(os.environ.get("BENCH_SECONDS", "20"))
FLAT_SECONDS = float(os.environ.get("BENCH_FLAT_SECONDS", "10"))  # 0: no flat-out phase
RATES = [float(r) for r in os.environ.get("BENCH_RATES", "500").split(",")]
WEB_COUNTS = [int(n) for n in os.environ.get("BENCH_CORES_WEB", "1,2").split(",")]
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
WEB_CPUS = frozenset({int(os.environ.get("BENCH_WEB_CPU", "0"))})
BACK_CPUS = frozenset({int(os.environ.get("BENCH_BACK_CPU", "1"))})
CLIENT_SCHED = os.environ.get("BENCH_CLIENT_SCHED", "fifo")


def cpu_line(phase: Phase) -> str:
    s, web_cpu = phase.seconds, sorted(WEB_CPUS)[0]
    back_cpu = sorted(BACK_CPUS)[0]
    cpu = phase.cpu
    text = (f"CPU           web {cpu['web'] / s:4.0%} of CPU {web_cpu} "
            f"({1000 * cpu['web'] / max(1, phase.posts):.1f} ms per POST of {BATCH} events); "
            f"task cluster + simulator {cpu['back'] / s:.0%}, load clients "
            f"{cpu['clients'] / s:.1%} of CPU {back_cpu}")
    if "postgres" in cpu:
        text += f"; PostgreSQL (whole server, unpinned) {cpu['postgres'] / s:.0%} of a CPU"
    busy = ", ".join(f"CPU {n} {f:.0%}" for n, f in sorted(phase.busy.items()))
    return text + f"\n                busy (everything on the machine): {busy}"


def report_rate(phase: Phase, *, target: bool) -> None:
    rate, p50, p99 = phase.accepted_rate, phase.ms(0.50), phase.ms(0.99)
    ok_rate = rate >= min(TARGET_RATE, phase.rate) * 0.99
    print(f"  at {phase.rate:.0f} events/s offered ({phase.posts} POSTs in {phase.seconds:.1f} s, "
          f"{phase.clients} clients, open loop; statuses {phase.statuses})")
    print(f"    accepted    {rate:6.0f} events/s = {rate / phase.rate:.3f} of the offered rate"
          + (f" (target >= {TARGET_RATE:.0f}) {verdict(ok_rate)}" if target else ""))
    print(f"    p50 / p99   {p50:6.1f} / {p99:6.1f} ms"
          + (f" (target p99 < {TARGET_P99_MS:.0f}) {verdict(p99 < TARGET_P99_MS)}" if target
             else f" ({verdict(p99 < TARGET_P99_MS)} against {TARGET_P99_MS:.0f} ms)"))
    lag = phase.lag
    lag_text = f"{lag:.1f} s" if lag is not None else f"> {LAG_LIMIT:.0f} s"
    print(f"    queue lag   {lag_text} to 0 unprocessed (had {phase.at_end} at load end; "
          f"target <= {TARGET_LAG_S:.0f} s) {verdict(lag is not None and lag <= TARGET_LAG_S)}")
    print(f"    {cpu_line(phase)}")


def report_flat(phase: Phase) -> None:
    lag = phase.lag
    lag_text = f"{lag:.1f} s" if lag is not None else f"> {LAG_LIMIT:.0f} s"
    print(f"  flat out ({phase.clients} clients, closed loop, {phase.seconds:.1f} s; statuses "
          f"{phase.statuses})")
    print(f"    accepted    {phase.accepted_rate:6.0f} events/s   p50 / p99 {phase.ms(0.5):.1f} / "
          f"{phase.ms(0.99):.1f} ms (queueing included); backlog {phase.at_end} events, "
          f"processed {lag_text} later")
    print(f"    {cpu_line(phase)}")


def run_configuration(web_workers: int) -> tuple[list[Phase], Phase | None]:
    layout = Layout(name=f"{web_workers} web", web_workers=web_workers, web_cpus=WEB_CPUS,
                    back_cpus=BACK_CPUS, client_cpus=BACK_CPUS, back_sched="normal",
                    client_sched=CLIENT_SCHED)
    noun = "process" if web_workers == 1 else "processes"
    print(f"== {web_workers} web {noun} (gunicorn sync workers) on CPU {sorted(WEB_CPUS)[0]}; "
          f"task cluster, simulator and load clients on CPU {sorted(BACK_CPUS)[0]}")
    with IngestStack(layout) as stack:
        phases = []
        for n, rate in enumerate(RATES):
            phases.append(stack.load_phase(rate=rate, seconds=DURATION, clients=CLIENTS))
            report_rate(phases[-1], target=n == 0)
        flat = None
        if FLAT_SECONDS:
            flat = stack.load_phase(rate=0, seconds=FLAT_SECONDS, clients=CLIENTS)
            report_flat(flat)
        print(f"  {stack.processing_summary([*phases, *([flat] if flat else [])])}")
        web, cluster = peaks_mb(stack.web_pids()), peaks_mb(stack.cluster_pids())
        simulator = peaks_mb([stack.sim_pid])
        clients = max(p.client_peak_mb for p in [*phases, *([flat] if flat else [])])
        print(f"  peak RSS      web {', '.join(f'{mb:.0f}' for mb in web)} MB; task cluster "
              f"{max(cluster, default=0):.0f} MB max per process ({len(cluster)} processes); "
              f"simulator {max(simulator, default=0):.0f} MB; load client "
              f"{clients:.0f} MB max")
    return phases, flat


def main() -> int:
    url = ingest_environ(default_db="mlc_bench_ingest_cores")
    if not url.startswith(("postgres://", "postgresql://")):
        print("bench/webhook_cores.py needs PostgreSQL (DATABASE_URL=postgres://...)")
        return 1
    if len(os.sched_getaffinity(0)) < 2:
        print("bench/webhook_cores.py needs two CPUs")
        return 1
    # This script (and every process it starts without a placement of its own) on CPU 1.
    place(cpus=BACK_CPUS)
    prepare_database(url)
    with open("/proc/loadavg") as fh:
        print(f"webhook intake on separate cores; load average before: {fh.read().split()[:3]}")
    results = {n: run_configuration(n) for n in WEB_COUNTS}
    if 1 in results and 2 in results:
        (one, one_flat), (two, two_flat) = results[1], results[2]
        print(f"2 web processes against 1 at {RATES[0]:.0f} events/s offered: accepted "
              f"{two[0].accepted_rate / one[0].accepted_rate:.3f} x, p99 "
              f"{two[0].ms(0.99):.1f} against {one[0].ms(0.99):.1f} ms")
        if one_flat and two_flat:
            print(f"2 web processes against 1, flat out: {two_flat.accepted_rate:.0f} against "
                  f"{one_flat.accepted_rate:.0f} events/s = "
                  f"{two_flat.accepted_rate / one_flat.accepted_rate:.2f} x the throughput")
    with open("/proc/loadavg") as fh:
        print(f"load average after: {fh.read().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
