"""Random ("chaos") faults on API calls, GoCardless's side of simulators/chaos.py (the seeded
draws, bursts and counts): the kinds, and a ``rate_limit`` draw starts a burst of 429s for
that access token. Counted by kind and by route; see docs/simulator-gocardless.md."""

from __future__ import annotations

from simulators import chaos as shared
from simulators.chaos import CHAOS_LOG_LIMIT, ChaosSettings

# What each kind does is in app.py (ApiApp.handle); "processed" kinds do the work first.
CHAOS_KINDS = ("timeout", "timeout_after", "drop_response", "error_500", "html_502",
               "rate_limit")
PROCESSED_KINDS = frozenset({"timeout_after", "drop_response"})

__all__ = ["CHAOS_KINDS", "CHAOS_LOG_LIMIT", "PROCESSED_KINDS", "ChaosDice", "ChaosSettings"]


class ChaosDice(shared.ChaosDice):
    """Drawn for API calls, never /_control/, /oauth/ or /flows/ (app.py); ``paths``:
    prefixes one of which the call's path starts with."""

    KINDS = CHAOS_KINDS

    def eligible(self, path: str, paths: tuple[str, ...]) -> bool:
        return any(path.startswith(prefix) for prefix in paths)

    def draw(self, *, token: str, method: str, path: str, route: str) -> str | None:
        """The kind of fault for this call, or None. ``token``: the burst's key (the budget
        is the token's); ``route``: "POST /payments" (counts)."""
        return self.roll(key=token, path=path, route=route)
