"""Random ("chaos") faults on API calls, the part both simulators share: each eligible call is
faulted with a probability, the kind drawn from a seeded ``random.Random``, so the same seed
and the same order of calls give the same faults (a month-long soak can be replayed). A
``rate_limit`` draw starts a burst of 429s for that call's budget key. Counted by kind and by
route, the newest faults logged.

What differs stays in each simulator's ``chaos.py``: its kinds, whose budget a 429 burst
spends (Exact: the division in the URL; GoCardless: the access token) and how ``paths``
picks calls (Exact: a fragment of the path; GoCardless: a prefix). What each kind does is in
the simulator's app.py."""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

CHAOS_LOG_LIMIT = 10_000  # newest faults kept; a month of calls must not grow without end

# start()'s default: every kind the simulator has. A distinct object, so that kinds=None
# and kinds=() are still refused.
_EVERY_KIND = object()


@dataclass(frozen=True)
class ChaosSettings:
    seed: int
    rate: float
    kinds: tuple[str, ...]
    timeout_seconds: float
    burst: int
    paths: tuple[str, ...] | None

    def describe(self) -> dict:
        return {"seed": self.seed, "rate": self.rate, "kinds": list(self.kinds),
                "timeout_seconds": self.timeout_seconds, "burst": self.burst,
                "paths": list(self.paths) if self.paths is not None else None}


class ChaosDice:
    """The random draws and what they gave. Locked by itself: the RNG must be read in the
    order calls arrive, one at a time, for a seed to mean a sequence.

    A simulator's subclass sets ``KINDS``, says which calls ``paths`` lets through
    (``eligible``) and gives ``draw`` its own arguments, passing the budget key to
    ``roll``."""

    KINDS: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings: ChaosSettings | None = None
        self._rng = random.Random(0)
        self._bursts: dict[str, int] = {}  # budget key -> 429s still to answer
        self._counts: Counter[str] = Counter()
        self._by_path: dict[str, Counter[str]] = {}
        self._calls = 0  # calls that drew since chaos() was turned on
        self.log: deque[dict] = deque(maxlen=CHAOS_LOG_LIMIT)

    def eligible(self, path: str, paths: tuple[str, ...]) -> bool:
        """Whether ``paths`` (the settings' filter, not None) lets this call draw."""
        raise NotImplementedError

    def start(self, *, seed: int, rate: float, kinds: Iterable[str] | object = _EVERY_KIND,
              timeout_seconds: float = 2.5, burst: int = 3, paths=None) -> dict:
        kinds = self.KINDS if kinds is _EVERY_KIND else tuple(kinds)  # type: ignore[arg-type]
        unknown = set(kinds) - set(self.KINDS)
        if unknown or not kinds:
            raise ValueError(f"chaos kinds must be some of {', '.join(self.KINDS)}; "
                             f"got {sorted(unknown) or 'none'}")
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if int(burst) < 1 or float(timeout_seconds) < 0:
            raise ValueError("burst must be >= 1 and timeout_seconds >= 0")
        settings = ChaosSettings(int(seed), float(rate), kinds, float(timeout_seconds),
                                 int(burst), tuple(paths) if paths is not None else None)
        with self._lock:
            self.settings = settings
            self._rng = random.Random(settings.seed)
            self._bursts.clear()
            self._calls = 0
            return self._describe()

    def stop(self) -> dict:
        """No more faults, pending 429 bursts included; the counts stay."""
        with self._lock:
            self.settings = None
            self._bursts.clear()
            return self._describe()

    def forget(self) -> None:
        """Off, and the counts and log zeroed (the simulator's reset)."""
        with self._lock:
            self.settings = None
            self._bursts.clear()
            self._counts.clear()
            self._by_path.clear()
            self._calls = 0
            self.log.clear()

    def roll(self, *, key: str, path: str, route: str) -> str | None:
        """The kind of fault for this call, or None. ``key``: whose budget a 429 burst
        spends; ``route``: the method and path template (counts)."""
        with self._lock:
            settings = self.settings
            if settings is None:
                return None
            left = self._bursts.get(key, 0)
            if left:
                # Inside a 429 burst, on any path of the same budget: no draw.
                if left > 1:
                    self._bursts[key] = left - 1
                else:
                    del self._bursts[key]
                kind, in_burst = "rate_limit", True
            elif settings.paths is not None and not self.eligible(path, settings.paths):
                return None
            else:
                # Always two draws per call: the sequence depends on the call order only.
                self._calls += 1
                hit = self._rng.random() < settings.rate
                choice = self._rng.choice(settings.kinds)
                if not hit:
                    return None
                kind, in_burst = choice, False
                if kind == "rate_limit" and settings.burst > 1:
                    self._bursts[key] = settings.burst - 1
            self._counts[kind] += 1
            self._by_path.setdefault(route, Counter())[kind] += 1
            self.log.append({"call": self._calls, "kind": kind, "route": route,
                             "path": path, "burst": in_burst})
            return kind

    def counts(self, *, by_path: bool = False) -> dict:
        with self._lock:
            totals = {kind: self._counts.get(kind, 0) for kind in self.KINDS}
            if not by_path:
                return totals
            return {"by_kind": totals,
                    "by_path": {route: dict(kinds) for route, kinds in
                                sorted(self._by_path.items())}}

    def entries(self) -> list[dict]:
        with self._lock:
            return [dict(entry) for entry in self.log]

    def describe(self) -> dict:
        with self._lock:
            return self._describe()

    def _describe(self) -> dict:
        return {"on": self.settings is not None,
                "settings": self.settings.describe() if self.settings else None,
                "calls": self._calls,
                "counts": {kind: self._counts.get(kind, 0) for kind in self.KINDS},
                "bursts": dict(self._bursts)}


class ChaosFaultsMixin:
    """The chaos switches of a simulator's ``Faults`` (``sim.faults.chaos(...)`` and kin);
    relies on its ``dice``, a ``ChaosDice`` subclass."""

    dice: ChaosDice

    def chaos(self, *, seed: int, rate: float, kinds: Iterable[str] | object = _EVERY_KIND,
              timeout_seconds: float = 2.5, burst: int = 3,
              paths: tuple[str, ...] | None = None) -> dict:
        """Fault each API call that can be faulted (the simulator's ``ChaosDice`` says
        which) with probability ``rate``, the kind drawn from ``kinds`` (default: all the
        simulator's) by ``random.Random(seed)``; ``paths``: only the calls these pick."""
        return self.dice.start(seed=seed, rate=rate, kinds=kinds,
                               timeout_seconds=timeout_seconds, burst=burst, paths=paths)

    def chaos_off(self) -> dict:
        return self.dice.stop()

    def chaos_counts(self, by_path: bool = False) -> dict:
        """{kind: faults injected} for every kind; ``by_path``: {"by_kind": …, "by_path":
        {route: {kind: n}}}, a route as "POST /payments" or "GET
        /api/v1/{division}/crm/Accounts". A 429 burst counts each call it answered."""
        return self.dice.counts(by_path=by_path)

    def chaos_log(self) -> list[dict]:
        """The newest faults drawn, oldest first: {call, kind, route, path, burst}."""
        return self.dice.entries()
