"""Settings for the test run: safe local defaults for the environment, then config.settings.

pytest-django imports this before any conftest, so the defaults are in place when the real
settings module reads the environment. Anything already set (CI's DATABASE_URL, REDIS_URL)
wins. The one setting defined here is explained at the end.
"""

import os

for _name, _value in {
    "DEBUG": "false",
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789abcdefghij",
    "SALT_KEY": "test-salt-key",
    "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    "EMAIL_URL": "memorymail://",
    "PUBLIC_BASE_URL": "https://connector.example.test",
    "SECURE_SSL_REDIRECT": "false",
    "EXACT_CLIENT_ID": "sim-client-id",
    "EXACT_CLIENT_SECRET": "sim-client-secret",
    "EXACT_WEBHOOK_SECRET": "sim-webhook-secret",
    "DEMO_ENABLED": "true",  # tests/test_demo.py runs the demo scenario
}.items():
    os.environ.setdefault(_name, _value)

from config.settings import *  # noqa: E402,F403

# The simulators are custom base URLs, so the suite allows them (tests of the refusal turn it
# off themselves). With DEBUG off that is what the system checks refuse (mlc.E011 for Exact,
# mlc.E010 for GoCardless), which would stop every manage.py subprocess a test starts with
# these settings; they are silenced here and nowhere else (tests/config/test_checks.py runs
# the production profile, where they are not).
EXACT_ALLOW_CUSTOM_BASE_URL = True
GOCARDLESS_ALLOW_CUSTOM_BASE_URL = True
SILENCED_SYSTEM_CHECKS = ["mlc.E010", "mlc.E011"]


# Production hashes passwords with Django's default PBKDF2 (1,000,000 iterations, ~0.3 s a
# password on purpose). The suite creates a login in hundreds of tests; a fast hasher keeps
# that from being most of its run time (Django's own advice for tests). No test is about the
# hash's strength; logins, lockouts and the browser journeys work the same.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
