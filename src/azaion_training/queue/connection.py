"""The arguments every rstream connection of ours shares (consumer, publisher, stream admin),
and a quick probe of whether a configured stream server answers at all (`stream_reachable`).

With ``queue.tls`` the connection is TLS (the server's ``stream.listeners.ssl`` port): the
server's certificate and host name are verified against ``queue.tls_ca_bundle`` (else the
system's CAs), and ``queue.tls_cert`` / ``queue.tls_key`` are presented when the server asks for
a client certificate. Without it, credentials and annotations travel in clear text: fit only for
a private network (see docs/security.md).

Importing this module also makes rstream read its socket in chunks of up to `READ_CHUNK_BYTES`.
rstream reads 256 bytes per ``StreamReader.read`` call (``rstream.connection.CHUNK_SIZE``): some
400 awaits for every 100 KB annotation, about half of the consumer's CPU time (benchmarks/
bench_queue.py). The module global is read at every call, so raising it is enough; frames are
still cut from rstream's own buffer exactly as before.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import rstream.connection

from azaion_training.config import QueueSettings
from azaion_training.errors import ConfigError

READ_CHUNK_BYTES = 64 * 1024
"""The most rstream reads from its socket at once (what is there, up to this)."""

rstream.connection.CHUNK_SIZE = max(rstream.connection.CHUNK_SIZE, READ_CHUNK_BYTES)


def connection_arguments(settings: QueueSettings, *, name: str) -> dict[str, Any]:
    """Keyword arguments for ``rstream.Producer`` / ``rstream.Consumer``.

    Args:
        settings: server, credentials, virtual host, frame size and TLS.
        name: the connection name RabbitMQ shows in its management views.

    Raises:
        ConfigError: a TLS file is missing or unreadable.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "username": settings.user or "",
        "password": settings.password.get_secret_value() if settings.password else "",
        "vhost": settings.vhost,
        "frame_max": settings.frame_max_bytes,
        "connection_name": name,
        "ssl_context": tls_context(settings),
    }


def tls_context(settings: QueueSettings) -> ssl.SSLContext | None:
    """The TLS context of the stream connection, or ``None`` without ``queue.tls``.

    Raises:
        ConfigError: a TLS file is missing or unreadable.
    """
    if not settings.tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(settings.tls_ca_bundle) if settings.tls_ca_bundle else None
        )
        if settings.tls_cert is not None:
            key = str(settings.tls_key) if settings.tls_key else None
            context.load_cert_chain(str(settings.tls_cert), keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the stream's TLS files: {exc}") from exc
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def stream_reachable(settings: QueueSettings, *, timeout: float = 2.0) -> bool:
    """Whether credentials are set and something accepts TCP connections at the stream port."""
    if not settings.user or settings.password is None:
        return False
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout):
            return True
    except OSError:
        return False
