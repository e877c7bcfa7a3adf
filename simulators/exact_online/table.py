"""A keyed row store with cached sort orders, so pages are sliced lazily by bisecting.

Orders are rebuilt only after a change; a benchmark paging through 50,000 unchanged rows
sorts once and then reads each page in O(page size).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class Table:
    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}
        self._version = 0
        self._orders: dict[str, tuple[int, list[Any], list[Any]]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: str) -> Any:
        return self.rows.get(key)

    def put(self, key: str, row: Any) -> None:
        self.rows[key] = row
        self._version += 1

    def remove(self, key: str) -> Any:
        self._version += 1
        return self.rows.pop(key, None)

    def touch(self) -> None:
        """Call after mutating a row in place: sort orders may have changed."""
        self._version += 1

    def values(self) -> Iterable[Any]:
        return self.rows.values()

    def ordered(self, name: str, sort_key: Callable[[Any], Any]) -> tuple[list[Any], list[Any]]:
        """(sort keys, rows) ascending by ``sort_key``; cached under ``name`` until a change."""
        cached = self._orders.get(name)
        if cached is not None and cached[0] == self._version:
            return cached[1], cached[2]
        rows = sorted(self.rows.values(), key=sort_key)
        keys = [sort_key(r) for r in rows]
        self._orders[name] = (self._version, keys, rows)
        return keys, rows
