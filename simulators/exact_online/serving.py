"""Stopping a SimulatorServer without waiting out serve_forever's 0.5 s shutdown poll."""

from __future__ import annotations

import contextlib
import socket
import threading

from simulators.harness import SimulatorServer


def stop_promptly(server: SimulatorServer, host: str = "127.0.0.1") -> None:
    address = (host, server.port)
    stopper = threading.Thread(target=server.stop, name="simulator-stop")
    stopper.start()
    # serve_forever notices a shutdown request only every 0.5 s; a connection wakes its
    # select() at once, which keeps per-test start/stop cheap.
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=0.2).close()
        stopper.join(0.02)
