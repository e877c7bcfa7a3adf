"""A row lock that holds across processes, on PostgreSQL and on SQLite.

PostgreSQL: ``SELECT … FOR UPDATE`` blocks every other transaction that asks for the same
row until we commit. SQLite ignores FOR UPDATE; there, a no-op UPDATE as the transaction's
first statement takes the database write lock up front, which serialises writers just the
same (and avoids SQLite's deadlock on upgrading a read lock to a write lock).
Callers must be inside ``transaction.atomic()``.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Model


def lock_row(model: type[Model], pk) -> Model:
    """Re-read the row with ``pk`` under a lock held until the surrounding transaction ends."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_row() must run inside transaction.atomic()")
    if connection.vendor == "sqlite":
        model._default_manager.filter(pk=pk).update(**{model._meta.pk.attname: pk})
    return model._default_manager.select_for_update().get(pk=pk)
