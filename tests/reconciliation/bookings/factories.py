"""Factories for the bookings app (merged into tests.factories.FACTORIES)."""

BOOKINGS_FACTORIES: dict = {}
