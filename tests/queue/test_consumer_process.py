"""The `azaion-queue` process against a real RabbitMQ: kill -9 and restart, broker restart,
SIGTERM, a poison corpus, and a data root on a small tmpfs that fills up mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from azaion_training.config import QueueSettings
from azaion_training.errors import MessageError
from azaion_training.fs import DataTree
from azaion_training.queue import (
    Annotation,
    AnnotationConsumer,
    AnnotationStatus,
    Role,
    decode_message,
    encode_message,
    rejected_messages,
)
from azaion_training.queue.catalogue import Catalogue
from azaion_training.queue.offsets import load_offset
from tests import helpers
from tests.poison import poison_corpus
from tests.queue.helpers import (
    bulk,
    created,
    edited,
    publish_entries,
    snapshot,
    wait_until_publishable,
)
from tests.services.rabbitmq import RabbitMQNode

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

ROLES = [Role.VALIDATOR, Role.OPERATOR, Role.ADMIN, Role.COMPANION_PC, Role.API_ADMIN]


def mixed_entries(count: int, *, seed: int = 0) -> list[bytes]:
    """``count`` entries: mostly Created, with Edited, Validated, Deleted and a few bad ones."""
    rng = np.random.default_rng(seed)
    entries: list[bytes] = []
    names: list[str] = []
    for index in range(count):
        if index % 50 == 49:
            entries.append(rng.bytes(64))  # rejected
        elif index % 10 == 9 and names:
            name = names[int(rng.integers(len(names)))]
            role = ROLES[int(rng.integers(len(ROLES)))]
            boxes = created(name, seed=index % 20).boxes
            entries.append(encode_message(edited(name, role=role, boxes=boxes)))
        elif index % 25 == 24 and names:
            chosen = rng.choice(names, size=min(5, len(names)), replace=False)
            entries.append(encode_message(bulk(AnnotationStatus.VALIDATED, *map(str, chosen))))
        elif index % 40 == 39 and names:
            entries.append(encode_message(bulk(AnnotationStatus.DELETED, names[-3])))
        else:
            name = f"shot_{index:05d}"
            names.append(name)
            message = created(name, role=ROLES[index % len(ROLES)], seed=index % 20)
            entries.append(encode_message(message, compress=index % 3 == 0))
    return entries


def reference_tree(entries: list[bytes], root: Path, stream: str) -> DataTree:
    """The tree of an uninterrupted run: every entry applied once, in order, in this process."""
    tree = DataTree(root=root)
    consumer = AnnotationConsumer(QueueSettings(stream=stream), tree)
    for offset, entry in enumerate(entries):
        consumer.handle(entry, offset)
    consumer.checkpoint.commit()
    return tree


@pytest.fixture
def start_consumer(
    queue_settings: QueueSettings, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts ``python -m azaion_training.cli.queue`` for the test's stream; kills leftovers."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(root: Path, *args: str, **queue: object) -> subprocess.Popen[bytes]:
        config = tmp_path / "config.yaml"
        options = {
            "commit_interval_s": 0.2,
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 1.0,
            "probe_interval_s": 2.0,
            **queue,
        }
        config.write_text(yaml.safe_dump({"queue": options}))
        env = helpers.subprocess_env(
            {
                "AZAION_ROOT_DIR": str(root),
                "RABBITMQ_HOST": queue_settings.host,
                "RABBITMQ_PORT": str(queue_settings.port),
                "RABBITMQ_USER": str(queue_settings.user),
                "RABBITMQ_PASSWORD": queue_settings.password.get_secret_value(),  # type: ignore[union-attr]
                "RABBITMQ_QUEUE_NAME": queue_settings.stream,
            }
        )
        log = open(tmp_path / f"consumer-{len(processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "azaion_training.cli.queue", "--config", str(config), *args],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("consumer-*.log")))


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, tmp_path: Path) -> None:
    helpers.wait_for(condition, timeout=timeout, what=what, details=lambda: logs(tmp_path)[-3000:])


def position(tree: DataTree, settings: QueueSettings) -> int:
    offset = load_offset(tree.offset_file, stream=settings.stream)
    return -1 if offset is None else offset


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_kill_9_mid_stream_then_restart_equals_an_uninterrupted_run(
    queue_settings: QueueSettings, tmp_path: Path, start_consumer: Callable[..., subprocess.Popen]
) -> None:
    entries = mixed_entries(2000)
    assert publish_entries(entries, queue_settings) == 2000
    expected = snapshot(reference_tree(entries, tmp_path / "reference", queue_settings.stream))
    tree = DataTree(root=tmp_path / "root")

    first = start_consumer(tree.root, commit_every=25)
    wait_for(
        lambda: position(tree, queue_settings) >= 300,
        timeout=120,
        what="300 messages",
        tmp_path=tmp_path,
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = position(tree, queue_settings)
    assert killed_at < 1999, "the consumer finished before it could be killed"

    second = start_consumer(tree.root, commit_every=25)
    wait_for(
        lambda: position(tree, queue_settings) == 1999,
        timeout=120,
        what="the last message",
        tmp_path=tmp_path,
    )
    assert stop(second) == 0
    assert f"resuming after offset {killed_at}" in logs(tmp_path)
    assert snapshot(tree) == expected
    assert len([k for k in expected if k.startswith("queue-rejected/")]) == 2 * 40
    # The catalogue agrees with the tree, and with the uninterrupted run's, history included.
    assert catalogue_view(tree) == catalogue_view(DataTree(root=tmp_path / "reference"))
    assert catalogue_folders(tree) == tree_folders(tree)


def catalogue_view(tree: DataTree) -> list[tuple[object, ...]]:
    """Every catalogue entry with its status history."""
    with Catalogue.for_tree(tree) as catalogue:
        return [(entry, catalogue.history(entry.name)) for entry in catalogue.entries()]


def catalogue_folders(tree: DataTree) -> dict[str, str]:
    with Catalogue.for_tree(tree) as catalogue:
        return {e.name: e.folder for e in catalogue.entries() if e.folder is not None}


def tree_folders(tree: DataTree) -> dict[str, str]:
    """Annotation name -> the folder its label is in."""
    folders = (tree.data, tree.data_seed, tree.data_deleted)
    return {
        label.stem: folder.path.name
        for folder in folders
        for label in folder.labels.glob("*.txt")
        if not label.name.startswith(".")
    }


def test_sigterm_exits_zero_with_the_position_of_what_was_applied(
    queue_settings: QueueSettings, tmp_path: Path, start_consumer: Callable[..., subprocess.Popen]
) -> None:
    count = 1500
    entries = [encode_message(created(f"a_{i:05d}", seed=i % 10)) for i in range(count)]
    assert publish_entries(entries, queue_settings) == count
    tree = DataTree(root=tmp_path / "root")
    # Commits only on shutdown, so the position on disk can only come from the SIGTERM path.
    process = start_consumer(tree.root, commit_every=100_000, commit_interval_s=3600)
    wait_for(
        lambda: tree.data.labels.is_dir() and len(os.listdir(tree.data.labels)) >= 100,
        timeout=60,
        what="100 annotations",
        tmp_path=tmp_path,
    )
    assert position(tree, queue_settings) == -1
    assert stop(process) == 0
    saved = position(tree, queue_settings)
    labels = sorted(p.stem for p in tree.data.labels.iterdir() if not p.name.startswith("."))
    assert saved >= 99
    assert labels == [f"a_{i:05d}" for i in range(saved + 1)]  # exactly up to the position
    assert "azaion-queue: " in logs(tmp_path) and f"position {saved}" in logs(tmp_path)


def test_reconnects_when_rabbitmq_restarts(
    rabbitmq: RabbitMQNode,
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen],
) -> None:
    before = [encode_message(created(f"before_{i:03d}", seed=i)) for i in range(50)]
    after = [encode_message(created(f"after_{i:03d}", seed=i)) for i in range(50)]
    assert publish_entries(before, queue_settings) == 50
    tree = DataTree(root=tmp_path / "root")
    process = start_consumer(tree.root)
    wait_for(
        lambda: position(tree, queue_settings) == 49, timeout=60, what="batch 1", tmp_path=tmp_path
    )
    try:
        rabbitmq.stop()
        wait_for(
            lambda: logs(tmp_path).count("reconnecting in") >= 2,
            timeout=60,
            what="reconnection attempts",
            tmp_path=tmp_path,
        )
        assert process.poll() is None
    finally:
        if not rabbitmq.running:
            rabbitmq.start()
    wait_until_publishable(queue_settings)
    assert publish_entries(after, queue_settings) == 50
    wait_for(
        lambda: position(tree, queue_settings) == 99, timeout=90, what="batch 2", tmp_path=tmp_path
    )
    assert stop(process) == 0
    assert len(list(tree.data.labels.glob("*.txt"))) == 100
    text = logs(tmp_path)
    assert text.count("subscribed to") >= 2
    assert "from offset 50" in text
    assert queue_settings.password.get_secret_value() not in text  # type: ignore[union-attr]


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_a_poison_corpus_leaves_the_consumer_alive_and_small(
    queue_settings: QueueSettings, tmp_path: Path, start_consumer: Callable[..., subprocess.Popen]
) -> None:
    corpus = poison_corpus(seed=1)
    good = [encode_message(created(f"good_{i:02d}", seed=i)) for i in range(20)]
    entries = [entry for _, entry in corpus] + good
    assert publish_entries(entries, queue_settings) == len(entries)
    options = {"max_body_bytes": 1024 * 1024}
    reference = AnnotationConsumer(
        QueueSettings(stream=queue_settings.stream, **options), DataTree(root=tmp_path / "ref")
    )
    for offset, entry in enumerate(entries):
        reference.handle(entry, offset)
    reference.checkpoint.commit()

    tree = DataTree(root=tmp_path / "root")
    process = start_consumer(tree.root, **options)
    last = len(entries) - 1
    wait_for(
        lambda: position(tree, queue_settings) == last,
        timeout=120,
        what="the last good message",
        tmp_path=tmp_path,
    )
    assert process.poll() is None
    peak = peak_rss_bytes(process.pid)
    assert stop(process) == 0
    assert peak < 1024**3, f"peak RSS {peak / 2**20:.0f} MiB"
    assert snapshot(tree) == snapshot(reference.tree)
    assert all(tree.data.label_path(f"good_{i:02d}").is_file() for i in range(20))
    rejected = {r.offset: r.reason for r in rejected_messages(tree)}
    for offset, (category, _) in enumerate(corpus):
        if category != "long name":
            assert offset in rejected, (category, offset)
    names = [n for category, n in zip_names(corpus) if category == "long name"]
    landed = {p.stem for p in tree.data.labels.iterdir()}
    assert {n for n in names if len(n.encode()) <= 200} <= landed
    assert not {n for n in names if len(n.encode()) > 200} & landed
    assert f"{len(rejected)} rejected" in logs(tmp_path)


def zip_names(corpus: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """(category, annotation name) of the entries of ``corpus`` that decode."""
    named = []
    for category, entry in corpus:
        try:
            message = decode_message(entry)
        except MessageError:
            continue
        if isinstance(message, Annotation):
            named.append((category, message.name))
    return named


def test_a_full_disk_stops_with_exit_1_and_a_position_never_past_durable_data(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen],
    small_tmpfs: Path,
) -> None:
    # Created only, each with its own name: no later message touches an earlier one's files, so
    # the files of every message up to the position must be there exactly as an in-process run
    # writes them.
    entries = [
        encode_message(created(f"fill_{i:04d}", role=ROLES[i % len(ROLES)], seed=i % 20))
        if i % 50 != 49
        else b"\x00not an entry"
        for i in range(400)
    ]
    assert publish_entries(entries, queue_settings) == 400
    tree = DataTree(root=small_tmpfs)
    first = start_consumer(tree.root, commit_every=10)
    assert first.wait(timeout=120) == 1
    text = logs(tmp_path)
    assert "No space left on device" in text and "cannot write the data tree" in text
    stopped_at = position(tree, queue_settings)
    assert 0 <= stopped_at < 399, "the disk did not fill mid-stream"
    durable = snapshot(reference_tree(entries[: stopped_at + 1], tmp_path / "part", "s"))
    assert durable.items() <= snapshot(tree).items()  # every file up to the position is there

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    second = start_consumer(tree.root, commit_every=10)
    wait_for(
        lambda: position(tree, queue_settings) == 399,
        timeout=120,
        what="the last message after freeing space",
        tmp_path=tmp_path,
    )
    assert stop(second) == 0
    assert f"resuming after offset {stopped_at}" in logs(tmp_path)
    expected = snapshot(reference_tree(entries, tmp_path / "whole", queue_settings.stream))
    assert snapshot(tree) == expected
