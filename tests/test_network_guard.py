from __future__ import annotations

import socket

import pytest

from tests.network import OutboundConnectionError


@pytest.mark.parametrize("address", [("8.8.8.8", 53), ("10.0.0.1", 80), ("::ffff:1.1.1.1", 443)])
def test_outbound_connections_are_refused(address: tuple[str, int]) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(OutboundConnectionError):
        sock.connect(address)


def test_name_lookups_are_refused() -> None:
    with pytest.raises(OutboundConnectionError):
        socket.getaddrinfo("github.com", 443)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert socket.getaddrinfo("localhost", 80)
