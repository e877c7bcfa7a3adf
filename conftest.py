"""Root conftest. Environment defaults for tests live in tests/settings.py (imported by
pytest-django before any conftest); this file only registers shared fixture plugins."""

pytest_plugins = [
    "tests.plugins.exact_sim",
    "tests.plugins.gocardless_sim",
]
