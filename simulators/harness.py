"""Serve a simulator's WSGI app on a loopback port in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, make_server

# serve_forever notices shutdown() only between polls; a short poll keeps per-test
# start/stop cheap (the default 0.5 s would add half a second to every test).
POLL_INTERVAL = 0.02


# How often a background loop looks at its stop flag while it pauses.
STOP_CHECK_SECONDS = 0.02


def run_every(
    interval: float, action: Callable[[], object], *, stop: threading.Event, name: str
) -> threading.Thread:
    """Call ``action`` every ``interval`` seconds in a daemon thread until ``stop`` is set.

    The pause is made of short ``time.sleep`` steps against ``time.monotonic``, not a timed
    ``stop.wait(interval)``: under libfaketime (CI runs the whole suite at a shifted clock) a
    timed wait on a lock never returns, because its deadline is taken from the faked clock and
    waited for on the real one, while ``sleep`` and ``monotonic`` agree with each other."""

    def loop() -> None:
        while True:
            deadline = time.monotonic() + interval
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                time.sleep(min(left, STOP_CHECK_SECONDS))
            if stop.is_set():
                return
            action()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


class SimulatorServer:
    """A threaded WSGI server bound to 127.0.0.1 (port 0 picks a free port)."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> SimulatorServer:
        self._server = make_server(self._host, self._port, self._app, threaded=True)
        # Daemon thread: a test run that forgets stop() must still exit.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"simulator:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Run in the foreground (used by ``manage.py simulate``)."""
        self._server = make_server(self._host, self._port, self._app, threaded=True)
        self._server.serve_forever(poll_interval=POLL_INTERVAL)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
