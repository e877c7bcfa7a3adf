"""Random ("chaos") faults on ``/api/v1/`` calls: each is faulted with a probability, the kind
drawn from a seeded ``random.Random``, so the same seed and the same order of calls give the
same faults (a month-long soak can be replayed). A ``rate_limit`` draw starts a burst of 429s
for that division (Exact's budgets are per app and division). Counted by kind and by
endpoint; see docs/simulator-exact.md."""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import dataclass

# What each kind does is in app.py (App._chaos); only timeout_after does the work.
CHAOS_KINDS = ("timeout", "timeout_after", "error_500", "html_502", "error_503", "rate_limit")
CHAOS_LOG_LIMIT = 10_000  # newest faults kept; a month of calls must not grow without end


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
    order calls arrive, one at a time, for a seed to mean a sequence."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings: ChaosSettings | None = None
        self._rng = random.Random(0)
        self._bursts: dict[str, int] = {}  # division (as in the URL) -> 429s still to answer
        self._counts: Counter[str] = Counter()
        self._by_path: dict[str, Counter[str]] = {}
        self._calls = 0  # calls that drew since chaos() was turned on
        self.log: deque[dict] = deque(maxlen=CHAOS_LOG_LIMIT)

    def start(self, *, seed: int, rate: float, kinds=CHAOS_KINDS, timeout_seconds: float = 2.5,
              burst: int = 3, paths=None) -> dict:
        kinds = tuple(kinds)
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown or not kinds:
            raise ValueError(f"chaos kinds must be some of {', '.join(CHAOS_KINDS)}; "
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

    def draw(self, *, division: str, path: str, route: str) -> str | None:
        """The kind of fault for this call, or None. ``division``: the burst's key;
        ``route``: "GET /api/v1/{division}/crm/Accounts" (counts)."""
        with self._lock:
            settings = self.settings
            if settings is None:
                return None
            left = self._bursts.get(division, 0)
            if left:
                # Inside a 429 burst, on any endpoint of the division: no draw.
                if left > 1:
                    self._bursts[division] = left - 1
                else:
                    del self._bursts[division]
                kind, in_burst = "rate_limit", True
            elif settings.paths is not None and not any(
                    fragment in path for fragment in settings.paths):
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
                    self._bursts[division] = settings.burst - 1
            self._counts[kind] += 1
            self._by_path.setdefault(route, Counter())[kind] += 1
            self.log.append({"call": self._calls, "kind": kind, "route": route,
                             "path": path, "burst": in_burst})
            return kind

    def counts(self, *, by_path: bool = False) -> dict:
        with self._lock:
            totals = {kind: self._counts.get(kind, 0) for kind in CHAOS_KINDS}
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
                "counts": {kind: self._counts.get(kind, 0) for kind in CHAOS_KINDS},
                "bursts": dict(self._bursts)}
