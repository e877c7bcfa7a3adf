"""Pytest fixtures for the exact simulator (filled in by the simulator work)."""
