"""Random misdelivery of webhooks: dropped (never sent, never retried), duplicated (a second
copy sent later) and delayed (held back a random number of real seconds, so later webhooks
overtake it). Draws come from a seeded ``random.Random``: the same seed and the same order of
deliveries give the same fates. Held sends go out from a background thread when due, or all
at once on ``flush()``. Shared by both simulators: each one's webhooks.py decides what an
item is and how it is sent (``send``), and which of its webhooks chaos may touch."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.harness import run_every

# How often the background thread looks for held sends that are due.
HOLD_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Fate:
    drop: bool = False
    delay: float | None = None  # seconds to hold the delivery back
    copy_delay: float | None = None  # seconds until a duplicate goes out


@dataclass
class _Held:
    due: float  # time.monotonic()
    item: Any
    copy: bool


class WebhookChaos:
    """``send(item, copy)`` posts one held item; it is called outside this object's lock."""

    def __init__(self, send: Callable[[Any, bool], None], *, name: str) -> None:
        self._send = send
        self._name = name
        self._lock = threading.Lock()
        # One sender of held items at a time: flush() returns only once a send the
        # background thread had started is done too.
        self._sending = threading.Lock()
        self._rng = random.Random(0)
        self.settings: dict | None = None
        self._held: list[_Held] = []
        self._counts = {"sent": 0, "dropped": 0, "duplicated": 0, "delayed": 0}
        self._stop: threading.Event | None = None

    # -- settings ---------------------------------------------------------------------

    def start(self, *, seed: int, duplicate: float = 0.0, drop: float = 0.0,
              delay: float = 0.0, max_delay_seconds: float = 5.0) -> dict:
        for name, value in (("duplicate", duplicate), ("drop", drop), ("delay", delay)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if float(max_delay_seconds) < 0:
            raise ValueError("max_delay_seconds must be >= 0")
        with self._lock:
            self.settings = {"seed": int(seed), "duplicate": float(duplicate),
                             "drop": float(drop), "delay": float(delay),
                             "max_delay_seconds": float(max_delay_seconds)}
            self._rng = random.Random(int(seed))
            if self._stop is None:
                self._stop = threading.Event()
                run_every(HOLD_POLL_SECONDS, self.send_due, stop=self._stop, name=self._name)
            return self._describe()

    def off(self) -> dict:
        """No new misdeliveries; what is held still goes out when due (or on flush)."""
        with self._lock:
            self.settings = None
            return self._describe()

    def close(self) -> None:
        """Stop the background thread, forget what is held, keep nothing on (reset/stop)."""
        with self._lock:
            self.settings = None
            self._held.clear()
            stop, self._stop = self._stop, None
        if stop is not None:
            stop.set()

    def discard_held(self) -> None:
        """Webhooks switched off: what is held is never sent."""
        with self._lock:
            self._held.clear()

    def forget(self) -> None:
        self.close()
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)

    # -- per delivery -----------------------------------------------------------------

    def fate(self) -> Fate:
        """What happens to one new delivery. Always five draws, whatever the outcome, so the
        fates depend on the order of deliveries only."""
        with self._lock:
            settings = self.settings
            if settings is None:
                return Fate()
            rng, most = self._rng, settings["max_delay_seconds"]
            drop = rng.random() < settings["drop"]
            delayed = rng.random() < settings["delay"]
            duplicated = rng.random() < settings["duplicate"]
            seconds, later = rng.uniform(0.0, most), rng.uniform(0.0, most)
            if drop:
                self._counts["dropped"] += 1
                return Fate(drop=True)
            self._counts["delayed"] += delayed
            self._counts["duplicated"] += duplicated
            # A delayed duplicate follows its original; an on-time one comes a while later.
            return Fate(delay=seconds if delayed else None,
                        copy_delay=(seconds + later if delayed else later) if duplicated
                        else None)

    def hold(self, item: Any, seconds: float, *, copy: bool) -> None:
        with self._lock:
            self._held.append(_Held(time.monotonic() + seconds, item, copy))

    def count_sent(self, n: int = 1) -> None:
        with self._lock:
            self._counts["sent"] += n

    def send_due(self) -> int:
        return self._send_held(flush=False)

    def flush(self) -> int:
        """Send everything held back now, earliest due first; returns how many."""
        return self._send_held(flush=True)

    def _send_held(self, *, flush: bool) -> int:
        with self._sending:
            now = time.monotonic()
            with self._lock:
                due = sorted((h for h in self._held if flush or h.due <= now),
                             key=lambda h: h.due)
                for held in due:
                    self._held.remove(held)
            for held in due:
                self._send(held.item, held.copy)
            return len(due)

    # -- reading ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def describe(self) -> dict:
        with self._lock:
            return self._describe()

    def _describe(self) -> dict:
        return {"on": self.settings is not None, "settings": self.settings,
                "held": len(self._held), "counts": dict(self._counts)}


class WebhookChaosControl:
    """The simulator's webhook chaos switches (in-process and over /_control/); mixed into
    each ``Simulator``, relies on its ``webhooks.chaos`` (a ``WebhookChaos``). Which
    webhooks chaos may touch is the simulator's webhooks.py's (Exact: event notifications,
    never the validation POST of a new subscription)."""

    webhooks: Any

    def webhook_chaos(self, seed: int, duplicate: float = 0.0, drop: float = 0.0,
                      delay: float = 0.0, max_delay_seconds: float = 5.0) -> dict:
        """Misdeliver new webhooks at random (``random.Random(seed)``): each is dropped with
        probability ``drop`` (never sent nor retried; what it told stays readable: Exact's
        change through the API and sync endpoints, GoCardless's events in GET /events),
        else held back up to ``max_delay_seconds`` real seconds with probability ``delay``
        (later ones overtake it) and sent a second time, later, with probability
        ``duplicate``. Held sends go out from a background thread, or on flush_webhooks()."""
        return self.webhooks.chaos.start(seed=seed, duplicate=duplicate, drop=drop,
                                         delay=delay, max_delay_seconds=max_delay_seconds)

    def webhook_chaos_off(self) -> dict:
        """No new misdeliveries; held sends still go out when due (or on flush_webhooks)."""
        return self.webhooks.chaos.off()

    def flush_webhooks(self) -> int:
        """Send every webhook chaos holds back, now; returns how many POSTs that made."""
        return self.webhooks.chaos.flush()

    def webhook_chaos_counts(self) -> dict[str, int]:
        """{"sent": POSTs made (copies and delayed sends included, and GoCardless's
        retries), "dropped", "duplicated", "delayed": webhooks chaos did that to} since
        start or reset."""
        return self.webhooks.chaos.counts()
