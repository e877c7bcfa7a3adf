"""Factories for exact/ models (merged into tests.factories.FACTORIES)."""

EXACT_FACTORIES: dict = {}
