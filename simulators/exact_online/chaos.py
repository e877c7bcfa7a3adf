"""Random ("chaos") faults on ``/api/v1/`` calls, Exact's side of simulators/chaos.py (the
seeded draws, bursts and counts): the kinds, and a ``rate_limit`` draw starts a burst of
429s for that division (Exact's budgets are per app and division). Counted by kind and by
endpoint; see docs/simulator-exact.md."""

from __future__ import annotations

from simulators import chaos as shared
from simulators.chaos import CHAOS_LOG_LIMIT, ChaosSettings

# What each kind does is in app.py (App._chaos); only timeout_after does the work.
CHAOS_KINDS = ("timeout", "timeout_after", "error_500", "html_502", "error_503", "rate_limit")

__all__ = ["CHAOS_KINDS", "CHAOS_LOG_LIMIT", "ChaosDice", "ChaosSettings"]


class ChaosDice(shared.ChaosDice):
    """Drawn for ``/api/v1/`` calls only, never the OAuth endpoints nor /_control/
    (Faults.chaos_fault); ``paths``: fragments one of which the call's path contains."""

    KINDS = CHAOS_KINDS

    def eligible(self, path: str, paths: tuple[str, ...]) -> bool:
        return any(fragment in path for fragment in paths)

    def draw(self, *, division: str, path: str, route: str) -> str | None:
        """The kind of fault for this call, or None. ``division`` (as in the URL): the
        burst's key; ``route``: "GET /api/v1/{division}/crm/Accounts" (counts)."""
        return self.roll(key=division, path=path, route=route)
