"""The arguments every rstream connection of ours shares (consumer, publisher, stream admin),
and a quick probe of whether a configured stream server answers at all."""

from __future__ import annotations

import socket
from typing import Any

from azaion_training.config import QueueSettings


def connection_arguments(settings: QueueSettings, *, name: str) -> dict[str, Any]:
    """Keyword arguments for ``rstream.Producer`` / ``rstream.Consumer``.

    Args:
        settings: server, credentials, virtual host and frame size.
        name: the connection name RabbitMQ shows in its management views.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "username": settings.user or "",
        "password": settings.password.get_secret_value() if settings.password else "",
        "vhost": settings.vhost,
        "frame_max": settings.frame_max_bytes,
        "connection_name": name,
    }


def stream_reachable(settings: QueueSettings, *, timeout: float = 2.0) -> bool:
    """Whether credentials are set and something accepts TCP connections at the stream port."""
    if not settings.user or settings.password is None:
        return False
    try:
        with socket.create_connection((settings.host, settings.port), timeout=timeout):
            return True
    except OSError:
        return False
