"""Fixtures of the queue tests: a private RabbitMQ node and settings with a stream per test."""

from __future__ import annotations

import itertools

import pytest

from azaion_training.config import QueueSettings
from tests.queue.helpers import node_settings
from tests.services.rabbitmq import RabbitMQNode

_streams = itertools.count()


@pytest.fixture
def queue_settings(rabbitmq: RabbitMQNode, request: pytest.FixtureRequest) -> QueueSettings:
    """Queue settings for the node and a stream of this test's own (offsets start at 0)."""
    return node_settings(rabbitmq, stream=f"test-{next(_streams)}-{request.node.name[:40]}")
