"""The arguments every rstream connection of ours shares (consumer, publisher, stream admin).

Importing this module also makes rstream read its socket in chunks of up to `READ_CHUNK_BYTES`.
rstream reads 256 bytes per ``StreamReader.read`` call (``rstream.connection.CHUNK_SIZE``): some
400 awaits for every 100 KB annotation, about half of the consumer's CPU time (benchmarks/
bench_queue.py). The module global is read at every call, so raising it is enough; frames are
still cut from rstream's own buffer exactly as before.
"""

from __future__ import annotations

from typing import Any

import rstream.connection

from azaion_training.config import QueueSettings

READ_CHUNK_BYTES = 64 * 1024
"""The most rstream reads from its socket at once (what is there, up to this)."""

rstream.connection.CHUNK_SIZE = max(rstream.connection.CHUNK_SIZE, READ_CHUNK_BYTES)


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
