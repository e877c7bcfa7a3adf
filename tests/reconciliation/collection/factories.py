"""Factories for the collection app (merged into tests.factories.FACTORIES)."""

COLLECTION_FACTORIES: dict = {}
