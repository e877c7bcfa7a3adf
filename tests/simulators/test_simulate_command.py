"""`manage.py simulate` serves both simulators on loopback until stopped."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_serves_both_simulators():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "simulate",
            "--exact-port",
            "0",
            "--gocardless-port",
            "0",
            "--auto-consent",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        urls = {}
        for line in process.stdout:
            match = re.match(
                r"(Exact Online|GoCardless) simulator on (http://127\.0\.0\.1:\d+)", line
            )
            if match:
                urls[match.group(1)] = match.group(2)
            if len(urls) == 2:
                break
        assert set(urls) == {"Exact Online", "GoCardless"}
        assert requests.get(f"{urls['Exact Online']}/_control/now", timeout=60).status_code == 200
        creditors = requests.get(
            f"{urls['GoCardless']}/creditors",
            headers={
                "Authorization": "Bearer sim-access-token",
                "GoCardless-Version": "2015-07-06",
            },
            timeout=60,
        )
        assert creditors.status_code == 200 and creditors.json()["creditors"]
    finally:
        process.send_signal(signal.SIGINT)
        # A liveness bound, not a timing check: a loaded CI machine can be slow to stop. It
        # stops even when started with SIGINT ignored (a background job of a script).
        assert process.wait(timeout=180) == 0
