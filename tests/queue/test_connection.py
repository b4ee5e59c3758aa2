"""`queue/connection.py`: the arguments, the reachability probe, and TLS against a RabbitMQ node
with a TLS stream listener whose certificate a throwaway CA signs."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from azaion_training.config import QueueSettings
from azaion_training.errors import ConfigError
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer, encode_message
from azaion_training.queue.broker import free_port
from azaion_training.queue.connection import connection_arguments, stream_reachable, tls_context
from tests.helpers import require
from tests.queue.helpers import consume_until, created, node_settings, publish_entries
from tests.services.rabbitmq import RabbitMQNode, ServerTls, available
from tests.services.tls import CertificateAuthority


@dataclass(frozen=True)
class TlsBroker:
    node: RabbitMQNode
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    folder: Path


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    require(available())
    folder = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority.create(folder / "ca", name="azaion test CA")
    other_ca = CertificateAuthority.create(folder / "other", name="someone else's CA")
    server = ca.issue(folder / "server", host="127.0.0.1")
    node = RabbitMQNode.create(
        folder / "node", tls=ServerTls(ca=ca.cert, cert=server.cert, key=server.key)
    )
    node.start()
    try:
        yield TlsBroker(node=node, ca=ca, other_ca=other_ca, folder=folder)
    finally:
        node.close()


def tls_settings(broker: TlsBroker, stream: str, **fields: object) -> QueueSettings:
    assert broker.node.tls_port is not None
    return node_settings(broker.node, stream=stream, tls=True, **fields).model_copy(
        update={"port": broker.node.tls_port}
    )


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_the_consumer_connects_over_tls_with_verification(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    settings = tls_settings(tls_broker, "tls-ok", tls_ca_bundle=tls_broker.ca.cert)
    assert settings.tls_verify
    entries = [encode_message(created(f"over_tls_{i}")) for i in range(3)]
    assert publish_entries(entries, settings) == 3  # the publisher goes over TLS too
    tree = DataTree(root=tmp_path / "root")
    consumer = consume_until(settings, tree, last_offset=2)
    assert consumer.stats.applied == 3
    assert sorted(p.stem for p in tree.data.labels.iterdir()) == [f"over_tls_{i}" for i in range(3)]


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_a_client_certificate_is_presented(tls_broker: TlsBroker, tmp_path: Path) -> None:
    client = tls_broker.ca.issue(tmp_path / "client", host="azaion-queue", client=True)
    settings = tls_settings(
        tls_broker,
        "tls-client-cert",
        tls_ca_bundle=tls_broker.ca.cert,
        tls_cert=client.cert,
        tls_key=client.key,
    )
    assert publish_entries([encode_message(created("with_cert"))], settings) == 1
    consumer = consume_until(settings, DataTree(root=tmp_path / "root"), last_offset=0)
    assert consumer.stats.applied == 1


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_a_server_signed_by_another_ca_is_refused(
    tls_broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tls_settings(tls_broker, "tls-wrong-ca", tls_ca_bundle=tls_broker.ca.cert)
    assert publish_entries([encode_message(created("never_applied"))], good) == 1
    wrong = tls_settings(tls_broker, "tls-wrong-ca", tls_ca_bundle=tls_broker.other_ca.cert)
    tree = DataTree(root=tmp_path / "root")
    consumer = AnnotationConsumer(wrong, tree)

    async def main() -> None:
        task = asyncio.create_task(consumer.run())
        while caplog.text.count("CERTIFICATE_VERIFY_FAILED") < 2 and not task.done():
            await asyncio.sleep(0.05)
        consumer.stop()
        await task

    with caplog.at_level(logging.WARNING):
        asyncio.run(asyncio.wait_for(main(), 60))
    assert "certificate verify failed" in caplog.text.lower()
    assert (consumer.stats.connections, consumer.stats.applied) == (0, 0)
    assert not tree.data.label_path("never_applied").exists()


def test_tls_is_off_unless_asked() -> None:
    assert tls_context(QueueSettings()) is None


def test_verification_is_on_by_default() -> None:
    context = tls_context(QueueSettings(tls=True))
    assert context is not None
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_a_missing_tls_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the stream's TLS files"):
        tls_context(QueueSettings(tls=True, tls_ca_bundle=tmp_path / "absent.pem"))


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
