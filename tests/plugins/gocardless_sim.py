"""Pytest fixtures for the gocardless simulator (filled in by the simulator work)."""
