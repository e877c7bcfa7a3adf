"""Factories for gocardless/ models (merged into tests.factories.FACTORIES)."""

GOCARDLESS_FACTORIES: dict = {}
