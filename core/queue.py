"""Queue background work after the current transaction commits: the one helper every app uses.

A task queued inside a transaction must never run before that transaction has committed (it
would not see the rows it was queued for) and must never run at all if it rolled back. Tasks
are named by dotted path, so the module that queues work never imports the module that does
it (which is what kept services and tasks modules importing each other in circles).
"""

from __future__ import annotations

from django.db import transaction


def enqueue_on_commit(func: str, *args, group: str) -> None:
    """Queue the django-q2 task ``func`` (a dotted path) with ``args`` once the current
    transaction commits; at once when there is none."""

    def send() -> None:
        from django_q.tasks import async_task

        async_task(func, *args, group=group)

    transaction.on_commit(send)
