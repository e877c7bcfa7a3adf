"""The suite cannot reach anything but loopback (pytest-socket, configured in pyproject)."""

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_non_loopback_connections_are_blocked_before_any_packet():
    # A literal address from TEST-NET-1 (documentation only) and a raw connect(): the guard
    # refuses it before the real connect, so no lookup and no packet ever happens.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(SocketConnectBlockedError):
            sock.connect(("192.0.2.1", 443))
    finally:
        sock.close()


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=1)
        client.close()
    finally:
        server.close()
