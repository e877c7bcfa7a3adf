"""The one place that queues Exact work on django-q2 (tests replace ``enqueue``).

Tasks are named by dotted path, so services that queue work (the webhook receiver, the sync
sweep, the admin's *Sync now*) never import exact/tasks.py, which imports them. Unlike
``core.queue.enqueue_on_commit`` this returns the task id: a webhook delivery keeps the id of
the re-sync it queued, for support.
"""

from __future__ import annotations


def enqueue(func: str, *args, **kwargs) -> str:
    # django_q.tasks imports django-q2's models: importable only once the apps are loaded.
    from django_q.tasks import async_task

    return async_task(func, *args, **kwargs)
