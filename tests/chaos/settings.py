"""Settings of the product's processes in the chaos month: the test settings plus one app
that tells the driving process which tasks are running (tests/chaos/inflight.py)."""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.chaos.inflight.InflightConfig"]  # noqa: F405
