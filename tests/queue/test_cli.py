"""The console scripts: azaion-queue-publish from a folder, and azaion-queue's start-up errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.cli import queue as queue_cli
from azaion_training.cli import queue_publish
from azaion_training.config import QueueSettings
from azaion_training.demo.world import write_annotations
from azaion_training.fs import AnnotationDir, DataTree
from tests.queue.helpers import consume_until


def use_node(monkeypatch: pytest.MonkeyPatch, settings: QueueSettings, root: Path) -> None:
    monkeypatch.setenv("RABBITMQ_HOST", settings.host)
    monkeypatch.setenv("RABBITMQ_PORT", str(settings.port))
    monkeypatch.setenv("RABBITMQ_USER", str(settings.user))
    monkeypatch.setenv("RABBITMQ_PASSWORD", settings.password.get_secret_value())  # type: ignore[union-attr]
    monkeypatch.setenv("RABBITMQ_QUEUE_NAME", settings.stream)
    monkeypatch.setenv("AZAION_ROOT_DIR", str(root))


@pytest.mark.slow
@pytest.mark.rabbitmq
def test_publish_a_folder_then_validate_it(
    queue_settings: QueueSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    source = AnnotationDir(tmp_path / "shots")
    names = write_annotations(source, 6, width=64, height=64)
    use_node(monkeypatch, queue_settings, tmp_path / "unused")

    assert queue_publish.main([str(source.path), "--role", "operator", "--gzip"]) == 0
    assert queue_publish.main([str(source.path), "--status", "validated"]) == 0
    assert "published 1 Validated message(s)" in capsys.readouterr().out

    tree = DataTree(root=tmp_path / "root")
    consume_until(queue_settings, tree, last_offset=len(names))
    for name in names:
        assert tree.data.image_path(name, ".jpg").read_bytes() == (
            source.image_path(name, ".jpg").read_bytes()
        )
        assert tree.data.label_path(name).read_text() == source.label_path(name).read_text()
    assert list(tree.data_seed.images.iterdir()) == []


def test_consumer_refuses_to_start_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert queue_cli.main(["--root", str(tmp_path / "root")]) == 1
    err = capsys.readouterr().err
    assert "missing setting queue.user: set RABBITMQ_USER" in err
    assert len(err.strip().splitlines()) == 1


def test_publisher_refuses_an_unknown_status(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        queue_publish.main(["folder", "--status", "approved"])
    assert caught.value.code == 2
    assert "is not one of Created 10" in capsys.readouterr().err


@pytest.mark.rabbitmq
def test_consumer_gives_up_on_refused_credentials(
    queue_settings: QueueSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    use_node(monkeypatch, queue_settings, tmp_path / "root")
    monkeypatch.setenv("RABBITMQ_PASSWORD", "wrong-password")
    assert queue_cli.main([]) == 1
    err = capsys.readouterr().err
    assert "RabbitMQ refused the connection" in err
    assert "wrong-password" not in err
