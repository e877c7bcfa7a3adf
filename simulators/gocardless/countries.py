"""ISO 3166-1 alpha-2 codes: the real API's rule (docs/simulator-gocardless.md, "Fidelity
rules"), the same standard list the product validates with before it sends (core.countries)."""

from __future__ import annotations

from core.countries import ISO_3166_ALPHA2

__all__ = ["ISO_3166_ALPHA2"]
