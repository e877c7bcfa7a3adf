"""The marker hook in tests/conftest.py decides where ``postgres`` and ``slow`` tests run."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PROBE = """
import pytest

@pytest.mark.postgres
def test_needs_postgres():
    pass

@pytest.mark.slow
def test_takes_long():
    pass

def test_plain():
    pass
"""

CONFTEST = """
import sys
sys.path.insert(0, {root!r})
from tests.conftest import pytest_collection_modifyitems  # noqa: F401
"""


@pytest.mark.parametrize(
    ("postgres", "skip_slow", "outcome"),
    [
        (False, "", {"passed": 2, "skipped": 1}),
        (True, "", {"passed": 3}),
        (True, "1", {"passed": 2, "skipped": 1}),
        (False, "1", {"passed": 1, "skipped": 2}),
    ],
)
def test_markers_skip_where_they_should(pytester, monkeypatch, postgres, skip_slow, outcome):
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setattr("tests.conftest.database_is_postgres", lambda: postgres)
    monkeypatch.setenv("MLC_SKIP_SLOW", skip_slow)
    pytester.makeconftest(CONFTEST.format(root=root))
    pytester.makepyfile(PROBE)
    result = pytester.runpytest_inprocess("-p", "no:django", "-p", "no:cacheprovider",
                                          "-p", "no:randomly", "-o", "addopts=",
                                          "--strict-markers", "-o",
                                          "markers=postgres\nslow")
    result.assert_outcomes(**outcome)
