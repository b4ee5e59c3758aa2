"""Connection arguments and the quick reachability probe."""

from __future__ import annotations

import socket

import pytest

from azaion_training.config import QueueSettings
from azaion_training.queue.broker import free_port
from azaion_training.queue.connection import connection_arguments, stream_reachable


@pytest.fixture
def listening() -> int:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.mark.parametrize(
    ("user", "password", "listens", "expected"),
    [
        ("azaion", "secret", True, True),
        (None, "secret", True, False),  # no credentials: not configured
        ("azaion", None, True, False),
        ("azaion", "secret", False, False),  # nothing listens
    ],
)
def test_stream_reachable(listening: int, user, password, listens: bool, expected: bool) -> None:
    port = listening if listens else free_port()
    settings = QueueSettings(host="127.0.0.1", port=port, user=user, password=password)
    assert stream_reachable(settings, timeout=1.0) is expected


def test_connection_arguments_carry_the_secret_and_the_name() -> None:
    settings = QueueSettings(host="h", port=1, user="u", password="p", vhost="/v")
    arguments = connection_arguments(settings, name="azaion-test")
    assert (arguments["username"], arguments["password"]) == ("u", "p")
    assert (arguments["vhost"], arguments["connection_name"]) == ("/v", "azaion-test")
