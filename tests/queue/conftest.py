"""Fixtures of the queue tests: a private RabbitMQ node and settings with a stream per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from azaion_training.config import QueueSettings
from tests.queue.helpers import node_settings
from tests.services.rabbitmq import RabbitMQNode, available

_streams = itertools.count()


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQNode]:
    """A RabbitMQ node with the stream plugin on 127.0.0.1, for the whole session."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    node = RabbitMQNode.create(tmp_path_factory.mktemp("rabbitmq"))
    node.start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def queue_settings(rabbitmq: RabbitMQNode, request: pytest.FixtureRequest) -> QueueSettings:
    """Queue settings for the node and a stream of this test's own (offsets start at 0)."""
    return node_settings(rabbitmq, stream=f"test-{next(_streams)}-{request.node.name[:40]}")
