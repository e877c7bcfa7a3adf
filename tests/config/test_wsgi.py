"""The WSGI module prepares a web worker before its first request (docs/gocardless.md,
"Webhook intake benchmark"): view modules imported, start-up objects frozen out of the
garbage collector's full collections."""

import json
import subprocess
import sys

from tests.config.test_checks import ROOT, _production_env

PROBE = """
import gc, json, sys
import config.wsgi
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "tracked": len(gc.get_objects()),
    "views_loaded": all(m in sys.modules for m in ("gocardless.views", "exact.views")),
}))
"""


def test_wsgi_module_freezes_start_up_objects_after_loading_the_views(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=_production_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    # The views (and what they import) must be loaded BEFORE the freeze, or the first request
    # would import them into the collected generations again.
    assert probe["views_loaded"]
    # Django and our apps make ~100,000 container objects at start-up; almost all are frozen.
    assert probe["frozen"] > 50_000
    assert probe["tracked"] < probe["frozen"] / 20, probe
