"""The demo's delivery: annotations sent as platform messages through a RabbitMQ stream.

`deliver` publishes them to a new stream (the configured server's, else a private node's) and
runs the queue's consumer until the last one is applied, then removes the stream; without a
stream it hands them straight to the consumer's handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azaion_training.config import QueueSettings
from azaion_training.errors import DatasetError, QueueError
from azaion_training.fs import AnnotationDir, DataTree

if TYPE_CHECKING:
    from azaion_training.queue.broker import RabbitMQNode

logger = logging.getLogger(__name__)

_CONSUME_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Delivery:
    """How the annotations reached the consumer."""

    transport: str
    reason: str
    annotations: int


def deliver(
    settings: QueueSettings,
    tree: DataTree,
    incoming: AnnotationDir,
    *,
    operator_share: int,
    stream: bool | None,
    node_folder: Path,
) -> Delivery:
    """Sends the annotations as platform messages through a stream into the queue consumer.

    The configured server is used when it answers; else a private node in ``node_folder``
    (`queue.broker`), stopped at the end; else (unless ``stream`` is True) the consumer's handler
    is called directly. Every ``operator_share``-th annotation comes from an Operator and is
    validated in bulk afterwards (`queue.review_messages`).

    Raises:
        QueueError: ``stream`` is True and no stream could be had, or the consumer failed.
    """
    from azaion_training.queue import AnnotationConsumer, review_messages
    from azaion_training.queue.connection import stream_reachable
    from azaion_training.queue.producer import image_files

    raws = review_messages(incoming.path, operator_share=operator_share)
    sent = len(image_files(incoming.path))
    if not sent:
        raise DatasetError(f"no images to send in {incoming.path}")
    name = f"azaion-demo-{uuid.uuid4().hex[:8]}"
    if stream is not False and stream_reachable(settings):
        configured = settings.model_copy(update={"stream": name})
        asyncio.run(_through_stream(configured, tree, raws))
        where = f"RabbitMQ stream {name!r} at {settings.host}:{settings.port}"
        return Delivery(where, "the configured server answered", sent)
    node, missing = (
        (None, "stream disabled (--no-stream)") if stream is False else _node(node_folder)
    )
    if node is not None:
        try:
            asyncio.run(_through_stream(node.queue_settings(stream=name), tree, raws))
        finally:
            node.close()
        where = f"RabbitMQ stream {name!r} on a private node at 127.0.0.1:{node.stream_port}"
        return Delivery(where, "no server was configured; started one for the demo", sent)
    if stream:
        raise QueueError(f"no RabbitMQ stream for the demo: {missing}")
    consumer = AnnotationConsumer(settings, tree, start="first")  # a new stream every run
    for offset, raw in enumerate(raws):
        consumer.handle(raw, offset)
    consumer.checkpoint.commit()
    return Delivery("straight into the consumer's handler, without a stream", missing, sent)


def _node(folder: Path) -> tuple[RabbitMQNode | None, str | None]:
    """A started private RabbitMQ node in ``folder``, or why there is none."""
    from azaion_training.queue.broker import RabbitMQNode, available

    missing = available()
    if missing is not None:
        return None, missing
    node = RabbitMQNode.create(folder, name="azaion-demo")
    try:
        node.start()
    except QueueError as exc:
        node.close()
        return None, f"a private RabbitMQ node did not start: {str(exc).splitlines()[0]}"
    return node, None


async def _through_stream(settings: QueueSettings, tree: DataTree, raws: list[bytes]) -> None:
    """Publishes the entries to a new stream and consumes them until the last one is applied."""
    from azaion_training.queue import AnnotationConsumer, delete_stream, publish

    await publish(raws, settings=settings)
    consumer = AnnotationConsumer(settings, tree, start="first")  # a new stream every run
    task = asyncio.ensure_future(consumer.run())
    deadline = time.monotonic() + _CONSUME_TIMEOUT_S
    last = len(raws) - 1
    try:
        while (consumer.checkpoint.applied or -1) < last:
            if task.done():
                task.result()
                raise QueueError("the consumer stopped before it read the demo's messages")
            if time.monotonic() > deadline:
                raise QueueError(f"the consumer did not read {len(raws)} messages in time")
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await task
    try:
        await delete_stream(settings)
    except QueueError as exc:  # the data is in; a leftover demo stream is only untidy
        logger.warning("%s", exc)
