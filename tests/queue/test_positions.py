"""The consumer never skips silently (SPEC 5.5), against a real RabbitMQ and real processes:
a stream re-created under the same name (shorter or longer than the position), at restart and
under a running consumer; messages deleted by retention before they were consumed; and one
consumer per root."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rstream import Producer

from azaion_training.config import QueueSettings
from azaion_training.fs import DataTree
from azaion_training.queue import delete_stream, encode_message, publish
from azaion_training.queue.catalogue import BUSY_WAIT_S
from azaion_training.queue.connection import connection_arguments
from azaion_training.queue.offsets import load_position
from tests.queue.helpers import created, publish_entries, snapshot
from tests.queue.test_consumer_process import logs, position, start_consumer, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

__all__ = ["start_consumer"]  # the fixture, shared with the process tests

CHECK = {"position_check_s": 2.0}


def entries(prefix: str, count: int) -> list[bytes]:
    return [encode_message(created(f"{prefix}_{index:03d}", seed=index)) for index in range(count)]


def recreate(settings: QueueSettings, count: int, *, arguments: dict | None = None) -> None:
    """Deletes the stream and makes a new one of that name holding ``count`` new messages."""
    asyncio.run(delete_stream(settings))
    create(settings, arguments)
    assert publish_entries(entries("new", count), settings) == count


def create(settings: QueueSettings, arguments: dict | None) -> None:
    async def main() -> None:
        async with Producer(**connection_arguments(settings, name="test-admin")) as producer:
            await producer.create_stream(settings.stream, arguments=arguments, exists_ok=True)

    asyncio.run(main())


def applied_names(tree: DataTree) -> set[str]:
    return {Path(name).stem for name in snapshot(tree) if name.startswith("data/labels/")}


def consumed(
    start: Callable[..., subprocess.Popen[bytes]],
    tree: DataTree,
    settings: QueueSettings,
    tmp_path: Path,
    last: int,
) -> subprocess.Popen[bytes]:
    process = start(tree.root, **CHECK)
    wait_for(
        lambda: position(tree, settings) == last,
        timeout=60,
        what=f"offset {last}",
        tmp_path=tmp_path,
    )
    return process


@pytest.mark.parametrize("new_count", [6, 12])
def test_a_re_created_stream_stops_the_restarted_consumer_with_the_choice(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen[bytes]],
    new_count: int,
) -> None:
    tree = DataTree(root=tmp_path / "root")
    publish_entries(entries("old", 10), queue_settings)
    assert stop(consumed(start_consumer, tree, queue_settings, tmp_path, 9)) == 0
    recreate(queue_settings, new_count)

    second = start_consumer(tree.root, **CHECK)
    assert second.wait(timeout=60) == 1
    why = "past the end" if new_count <= 9 else "deleted and re-created"
    last_line = logs(tmp_path).strip().splitlines()[-1]
    assert why in last_line and "--from first" in last_line, last_line
    assert not any(name.startswith("new_") for name in applied_names(tree))
    assert position(tree, queue_settings) == 9  # nothing reset behind the operator's back

    third = start_consumer(tree.root, "--from", "first", **CHECK)
    wait_for(
        lambda: position(tree, queue_settings) == new_count - 1,
        timeout=60,
        what="the new stream's last message",
        tmp_path=tmp_path,
    )
    assert stop(third) == 0
    assert sum(name.startswith("new_") for name in applied_names(tree)) == new_count


@pytest.mark.parametrize("new_count", [3, 12])
def test_a_stream_re_created_under_a_running_consumer_stops_it(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen[bytes]],
    new_count: int,
) -> None:
    tree = DataTree(root=tmp_path / "root")
    publish_entries(entries("old", 10), queue_settings)
    running = consumed(start_consumer, tree, queue_settings, tmp_path, 9)
    recreate(queue_settings, new_count)
    assert running.wait(timeout=60) == 1
    assert "--from first" in logs(tmp_path).strip().splitlines()[-1]
    assert not any(name.startswith("new_") for name in applied_names(tree))


def test_retention_loss_is_reported_with_the_lost_range_and_counted(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen[bytes]],
) -> None:
    tree = DataTree(root=tmp_path / "root")
    small = {"max-length-bytes": 40_000, "stream-max-segment-size-bytes": 10_000}
    create(queue_settings, small)
    asyncio.run(publish(entries("early", 5), settings=queue_settings, create_stream=False))
    assert stop(consumed(start_consumer, tree, queue_settings, tmp_path, 4)) == 0
    later = entries("late", 200)
    for index in range(0, len(later), 10):  # in steps, so that segments roll and age out
        asyncio.run(
            publish(later[index : index + 10], settings=queue_settings, create_stream=False)
        )

    second = start_consumer(tree.root, **CHECK)
    wait_for(
        lambda: position(tree, queue_settings) == 204,
        timeout=60,
        what="the last message",
        tmp_path=tmp_path,
    )
    assert stop(second) == 0
    late = sorted(name for name in applied_names(tree) if name.startswith("late_"))
    first_kept = 5 + int(late[0].split("_")[1])
    assert first_kept > 5, "retention deleted nothing: the test proves nothing"
    text = logs(tmp_path)
    lost = first_kept - 5
    assert f"offsets 5-{first_kept - 1} of stream" in text
    assert f"{lost} message(s) lost" in text
    assert f"{lost} messages lost to the stream's retention" in text.strip().splitlines()[-1]
    assert len(late) == 200 - lost


def test_a_second_consumer_on_the_root_exits_at_once_naming_the_first(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen[bytes]],
) -> None:
    tree = DataTree(root=tmp_path / "root")
    publish_entries(entries("one", 20), queue_settings)
    first = consumed(start_consumer, tree, queue_settings, tmp_path, 19)
    second = start_consumer(tree.root, **CHECK)
    assert second.wait(timeout=30) == 1
    assert f"another azaion-queue is running on this root (PID {first.pid} holds" in logs(tmp_path)
    publish_entries(entries("two", 20), queue_settings)
    wait_for(lambda: position(tree, queue_settings) == 39, timeout=60, what="40", tmp_path=tmp_path)
    assert stop(first) == 0
    stored = load_position(tree.offset_file, stream=queue_settings.stream)
    assert stored is not None and stored.timestamp is not None


_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_a_consumer_behind_a_locked_catalogue_waits_and_never_exits(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """Another process (formation, a tool) holds the catalogue's write lock for longer than
    SQLite's busy timeout: the consumer logs, waits and applies everything once it is free."""
    tree = DataTree(root=tmp_path / "root")
    publish_entries(entries("before", 3), queue_settings)
    assert stop(consumed(start_consumer, tree, queue_settings, tmp_path, 2)) == 0
    catalogue = tree.root / "catalogue.sqlite"
    locker = subprocess.Popen(
        # held for several of the catalogue's busy waits (a consumer starting under load meets it)
        [sys.executable, "-c", _LOCKER, str(catalogue), str(4 * BUSY_WAIT_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
    running = start_consumer(tree.root, **CHECK)
    publish_entries(entries("during", 10), queue_settings)
    wait_for(
        lambda: "is locked by another process" in logs(tmp_path),
        timeout=60,
        what="the wait's log line",
        tmp_path=tmp_path,
    )
    assert locker.wait(timeout=60) == 0
    wait_for(
        lambda: position(tree, queue_settings) == 12,
        timeout=60,
        what="every message after the lock",
        tmp_path=tmp_path,
    )
    assert running.poll() is None
    assert stop(running) == 0
    assert sum(name.startswith("during_") for name in applied_names(tree)) == 10
    assert "applied, 0 rejected" in logs(tmp_path).strip().splitlines()[-1]


def test_a_damaged_catalogue_stops_with_the_file_and_the_remedy(
    queue_settings: QueueSettings,
    tmp_path: Path,
    start_consumer: Callable[..., subprocess.Popen[bytes]],
) -> None:
    tree = DataTree(root=tmp_path / "root").create()
    catalogue = tree.root / "catalogue.sqlite"
    catalogue.write_bytes(b"garbage, not a database " * 200)
    process = start_consumer(tree.root, **CHECK)
    assert process.wait(timeout=60) == 1
    text = logs(tmp_path).strip()
    assert "Traceback" not in text, text
    last = text.splitlines()[-1]
    assert f"the annotation catalogue {catalogue} is damaged" in last and "backup" in last, text
    assert catalogue.read_bytes() == b"garbage, not a database " * 200
