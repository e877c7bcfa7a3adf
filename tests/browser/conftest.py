"""Browser journeys: Playwright for Python driving Debian's Chromium (never a downloaded
browser) against the admin served by pytest-django's live server.

Chromium is /usr/bin/chromium (MLC_CHROMIUM overrides). Where it is missing the journeys are
skipped with that reason, except where MLC_REQUIRE_BROWSER=1 (CI), where a missing browser
fails the run. Every step's screenshot goes to artifacts/screenshots/<test>/ (git-ignored),
which CI keeps. A journey fails on any Content-Security-Policy violation the page reports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MLC_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# The flags this machine's closed network needs (no background calls to Google's hosts).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    journeys = [item for item in items if "tests/browser/" in str(item.fspath)]
    for item in journeys:
        item.add_marker(pytest.mark.browser)
    if Path(CHROMIUM).exists() or os.environ.get("MLC_REQUIRE_BROWSER") == "1":
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in journeys:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"MLC_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_settings(settings):
    """The live server speaks plain http: cookies must not be https-only there."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    return settings


class Journey:
    """A page plus what a journey needs: the server's URL, screenshots per step, and the
    Content-Security-Policy violations the page reported."""

    def __init__(self, page, base_url: str, folder: Path):
        self.page = page
        self.base_url = base_url
        self.folder = folder
        self.steps = 0
        self.csp_violations: list[str] = []
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp_violations.append(message.text)

    def open(self, path: str):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.status < 500, (path, response and response.status)
        return response

    def shot(self, name: str) -> Path:
        self.steps += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.steps:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        with self.page.expect_navigation():
            self.page.click("input[type=submit]")


@pytest.fixture
def journey(browser, live_server, browser_settings, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    journey = Journey(page, live_server.url, SCREENSHOTS / name)
    yield journey
    context.close()
    assert journey.csp_violations == [], journey.csp_violations


# --- the simulators, for journeys that leave the product (OAuth consent, payments) ----------


class LiveSimulators:
    """Both simulators on free loopback ports, in this process, with real (ticking) clocks,
    and the product pointed at them the way an installation would be: Exact's region table
    (the Netherlands) and GoCardless' sandbox are the simulators, the partner app is the
    GoCardless simulator's, the OAuth callbacks come back to the live server, and the
    Content-Security-Policy's form-action lets a Connect button's redirect reach them (what
    config/settings.py allows for the local simulators in DEBUG)."""

    def __init__(self, exact, gocardless):
        self.exact = exact
        self.gocardless = gocardless


@pytest.fixture
def live_simulators(live_server, browser_settings, monkeypatch):
    from exact.models import REGION_HOSTS, Region
    from gocardless.models import ENVIRONMENT_URLS, Environment
    from simulators.exact_online import Simulator as ExactSimulator
    from simulators.gocardless import Simulator as GoCardlessSimulator

    settings = browser_settings
    exact = ExactSimulator().start()  # consent page: interactive
    gocardless = GoCardlessSimulator(access_tokens=("sim-access-token",),
                                     webhook_secret="sim-webhook-secret").start()
    try:
        gocardless.configure_oauth(consent="interactive", redirect_uris=[])
        monkeypatch.setitem(REGION_HOSTS, Region.NL, exact.url)
        monkeypatch.setitem(ENVIRONMENT_URLS, Environment.SANDBOX, gocardless.url)
        settings.EXACT_REDIRECT_URI = f"{live_server.url}/connect/exact/callback/"
        settings.GOCARDLESS_REDIRECT_URI = f"{live_server.url}/connect/gocardless/callback/"
        settings.GOCARDLESS_CONNECT_URL = gocardless.url
        settings.GOCARDLESS_CLIENT_ID = gocardless.oauth.settings["client_id"]
        settings.GOCARDLESS_CLIENT_SECRET = gocardless.oauth.settings["client_secret"]
        policy = {**settings.CONTENT_SECURITY_POLICY}
        directives = {**policy["DIRECTIVES"]}
        directives["form-action"] = [*directives["form-action"], exact.url, gocardless.url]
        policy["DIRECTIVES"] = directives
        settings.CONTENT_SECURITY_POLICY = policy
        yield LiveSimulators(exact, gocardless)
    finally:
        exact.stop()
        gocardless.stop()


class TaskQueue:
    """django-q2's ``async_task`` replaced by a list: the tasks the pages queue wait here
    until the journey carries them out (``run``), in the test's thread, as a worker would.
    A journey that does this routes the page's requests through the test's thread
    (``page.route("**/*", lambda route: route.continue_())``): they wait while a task runs,
    so that the page and the task never use the database at the same moment (with SQLite the
    live server shares the test's connection)."""

    def __init__(self):
        import threading

        self.queued: list[tuple[str, tuple, dict]] = []
        self._lock = threading.Lock()

    def async_task(self, func, *args, **kwargs):
        with self._lock:
            self.queued.append((func, args, kwargs))
        return f"task-{len(self.queued)}"

    def names(self) -> list[str]:
        with self._lock:
            return [func for func, _, _ in self.queued]

    def run(self, prefix: str) -> list:
        """Carry out the queued tasks whose dotted path starts with ``prefix`` (and those
        they queue), oldest first; the others stay queued. Returns their results."""
        from django.utils.module_loading import import_string

        results = []
        while True:
            with self._lock:
                found = next((t for t in self.queued if t[0].startswith(prefix)), None)
                if found is None:
                    return results
                self.queued.remove(found)
            func, args, kwargs = found
            kwargs = {k: v for k, v in kwargs.items() if not k.startswith(("group", "q_", "hook"))}
            results.append(import_string(func)(*args, **kwargs))


@pytest.fixture
def task_queue(monkeypatch):
    queue = TaskQueue()
    monkeypatch.setattr("django_q.tasks.async_task", queue.async_task)
    return queue
