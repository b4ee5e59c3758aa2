"""The arguments every rstream connection of ours shares (consumer, publisher, stream admin)."""

from __future__ import annotations

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
