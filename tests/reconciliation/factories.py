"""Factories for reconciliation/ models (merged into tests.factories.FACTORIES)."""

RECONCILIATION_FACTORIES: dict = {}
