"""The demo's delivery through a RabbitMQ stream, or straight into the consumer's handler."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rstream import Producer

from azaion_training.config import QueueSettings, load_settings
from azaion_training.demo.delivery import deliver
from azaion_training.demo.world import write_annotations
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.queue.connection import connection_arguments
from tests.queue.helpers import node_settings
from tests.services.rabbitmq import RabbitMQNode


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_a_configured_server_is_used_and_the_stream_removed(
    rabbitmq: RabbitMQNode, tmp_path: Path
) -> None:
    incoming = AnnotationDir(tmp_path / "incoming")
    write_annotations(incoming, 6, width=64, height=64)
    tree = DataTree(root=tmp_path / "root").create()
    settings = node_settings(rabbitmq, stream="unused")
    delivery = deliver(
        settings, tree, incoming, operator_share=4, stream=None, node_folder=tmp_path / "node"
    )
    assert delivery.transport.startswith("RabbitMQ stream 'azaion-demo-")
    assert delivery.reason == "the configured server answered" and delivery.annotations == 6
    assert len(list(tree.data.labels.iterdir())) == 6
    stream = delivery.transport.split("'")[1]
    assert not asyncio.run(_stream_exists(settings, stream))


def test_no_stream_hands_the_messages_to_the_handler(tmp_path: Path) -> None:
    incoming = AnnotationDir(tmp_path / "incoming")
    write_annotations(incoming, 5, width=64, height=64)
    tree = DataTree(root=tmp_path / "root").create()
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    delivery = deliver(
        settings.queue,
        tree,
        incoming,
        operator_share=4,
        stream=False,
        node_folder=tmp_path / "node",
    )
    assert delivery.transport.startswith("straight into the consumer's handler")
    assert delivery.reason == "stream disabled (--no-stream)"
    assert len(list(tree.data.labels.iterdir())) == 5  # the Operator's one validated in bulk
    assert not list(tree.data_seed.labels.iterdir())


async def _stream_exists(settings: QueueSettings, stream: str) -> bool:
    async with Producer(**connection_arguments(settings, name="test")) as producer:
        return await producer.stream_exists(stream)
