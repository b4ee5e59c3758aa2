"""The suite's network guard: only loopback may be reached, in the tests and in their builds."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager


class OutboundConnectionError(OSError):
    """Raised by the network guard: tests may only talk to loopback."""


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Fails any connection or name lookup that leaves the machine while it is active.

    Ultralytics, boto3 and friends all connect through `socket.socket.connect` and resolve through
    `socket.getaddrinfo`, so a download attempt raises `OutboundConnectionError`. The attempts are
    also listed in the value.
    """
    attempts: list[str] = []
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: object) -> None:
        inet = sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
        if inet and not _is_loopback(str(address[0])):
            attempts.append(str(address))
            raise OutboundConnectionError(f"test tried to connect to {address}")

    def connect(sock: socket.socket, address: object) -> None:
        check(sock, address)
        return original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        check(sock, address)
        return original_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host is not None and not _is_loopback(host if isinstance(host, str) else host.decode()):
            attempts.append(f"lookup {host}")
            raise OutboundConnectionError(f"test tried to resolve {host}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo
