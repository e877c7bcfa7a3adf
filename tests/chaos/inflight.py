"""Which tasks are running right now, for the chaos month's "is the product quiet?".

django-q2's worker sends ``pre_execute`` before it runs a task and
``post_execute_in_worker`` after; each worker writes its pid and the task's name to Redis in
between. A worker that was SIGKILLed never clears its key: the driving process ignores the
keys of processes that no longer exist. The broker's queue and the clusters' own prefetch
queues (their ``Stat``) cover what is waiting.
"""

from __future__ import annotations

import contextlib
import os

from django.apps import AppConfig

PREFIX = "mlc-chaos:running:"


def _redis():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2)


def _started(sender, func=None, task=None, **kwargs) -> None:
    with contextlib.suppress(Exception):  # Redis restarting: the next task says it again
        _redis().set(f"{PREFIX}{os.getpid()}", str((task or {}).get("func", func)), ex=900)


def _finished(sender, func=None, task=None, **kwargs) -> None:
    with contextlib.suppress(Exception):
        _redis().delete(f"{PREFIX}{os.getpid()}")


def _alive(pid: int) -> bool:
    """A killed worker its cluster has not reaped yet is a zombie: dead, though its pid
    exists."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _running() -> dict[int, str]:
    """pid -> task, of the workers running a task now (keys of dead workers are dropped)."""
    found = {}
    client = _redis()
    for key in client.scan_iter(f"{PREFIX}*"):
        pid = int(key.decode().rsplit(":", 1)[1])
        if not _alive(pid):
            client.delete(key)
            continue
        found[pid] = (client.get(key) or b"?").decode()
    return found


def running_tasks() -> list[str]:
    return sorted(_running().values())


def running_pids() -> list[int]:
    return sorted(_running())


class InflightConfig(AppConfig):
    name = "tests.chaos.inflight"
    label = "chaos_inflight"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        pre_execute.connect(_started, dispatch_uid="chaos-inflight-start")
        post_execute_in_worker.connect(_finished, dispatch_uid="chaos-inflight-end")
