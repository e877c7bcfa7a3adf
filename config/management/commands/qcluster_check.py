"""Liveness of the task clusters, for a supervisor to act on (exit 1 = restart them).

    manage.py qcluster_check                 # stalled for 600 s (twice Q_TIMEOUT) or more?
    manage.py qcluster_check --seconds 120

Why: a django-q2 worker that is killed (out of memory, SIGKILL) while it waits for its next
task holds the lock of the cluster's internal task queue, and takes it with it: every other
worker then waits on that lock for ever. The cluster process stays up, so systemd does not
restart it, and tasks pile up in the broker (found by the chaos month, docs/chaos.md).

Stalled means: tasks are waiting (in the broker, or prefetched by a cluster) and no task has
finished for ``--seconds``. A quiet installation with nothing waiting is never stalled. Run it
every minute from a systemd timer or as a Kubernetes liveness probe of the cluster's pod
(docs/operations.md, "Task cluster liveness").
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone


def clusters_stalled(*, seconds: int, now: dt.datetime | None = None) -> str:
    """'' when the clusters are fine; otherwise why not, in words."""
    from django_q.brokers import get_broker
    from django_q.models import Task
    from django_q.status import Stat

    now = now or timezone.now()
    broker = get_broker()
    waiting = broker.queue_size() or 0
    prefetched = sum(stat.task_q_size for stat in Stat.get_all(broker=broker))
    if not waiting and not prefetched:
        return ""
    last = Task.objects.order_by("-stopped").values_list("stopped", flat=True).first()
    if last is not None and last >= now - dt.timedelta(seconds=seconds):
        return ""
    since = f"since {last:%Y-%m-%d %H:%M:%S %Z}" if last else "ever"
    return (f"{waiting} task(s) waiting in the broker and {prefetched} prefetched by the "
            f"clusters, and no task has finished {since} (over {seconds} s): the clusters are "
            "stalled; restart them")


class Command(BaseCommand):
    help = "Exit 1 when tasks are waiting and no task has finished for a while."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=int,
                            default=2 * int(settings.Q_CLUSTER.get("timeout", 300)))

    def handle(self, *args, **options):
        said = clusters_stalled(seconds=options["seconds"])
        if said:
            self.stderr.write(said)
            raise SystemExit(1)
        self.stdout.write("task clusters: ok")
