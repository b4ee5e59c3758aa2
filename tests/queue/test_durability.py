"""A failed flush is final (of `queue/durability.py`): never retried, never followed by a saved
position. The failure is real: ``fsync`` of ``/proc/self/mem`` fails with EINVAL, and a file of
the batch is replaced by a link to it before the flush."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from azaion_training.config import QueueSettings
from azaion_training.errors import QueueError
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer, encode_message
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.offsets import Checkpointer, load_offset
from tests.queue.helpers import created

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/mem").exists(), reason="needs Linux /proc for a real fsync failure"
)


def poison(path: Path) -> None:
    """Replaces ``path`` by a link to a file whose fsync fails (EINVAL)."""
    path.unlink()
    path.symlink_to("/proc/self/mem")


def cure(path: Path) -> None:
    path.unlink()
    path.write_bytes(b"fine now")


def test_a_failed_flush_is_never_retried(tmp_path: Path) -> None:
    batch = WriteBatch(use_syncfs=False)  # syncfs opens no file: it cannot be made to fail here
    paths = [tmp_path / f"f{i}" for i in range(5)]
    for path in paths:
        batch.write_bytes(path, b"data")
    poison(paths[0])
    with pytest.raises(OSError, match="Invalid argument"):
        batch.flush()
    cure(paths[0])  # the cause is gone, but the pages of the failed flush may be lost
    with pytest.raises(OSError, match="an earlier flush failed"):
        batch.flush()


def test_the_position_is_not_saved_after_a_failed_flush(tmp_path: Path) -> None:
    batch = WriteBatch(use_syncfs=False)
    offset_file = tmp_path / "offset.yaml"
    checkpoint = Checkpointer(offset_file, stream="s", writes=batch, every=2)
    batch.write_bytes(tmp_path / "a", b"1")
    checkpoint.advance(0)
    batch.write_bytes(tmp_path / "b", b"2")
    checkpoint.advance(1)  # commits: offset 1
    assert load_offset(offset_file, stream="s") == 1
    batch.write_bytes(tmp_path / "c", b"3")
    poison(tmp_path / "c")
    checkpoint.advance(2)
    with pytest.raises(OSError):
        checkpoint.advance(3)  # the batch is full: the flush fails
    cure(tmp_path / "c")
    with pytest.raises(OSError):
        checkpoint.commit()  # as the consumer's shutdown would: still refused
    assert load_offset(offset_file, stream="s") == 1


def test_the_consumer_stops_with_a_tree_failure_and_keeps_its_position(tree: DataTree) -> None:
    """A timed commit whose flush fails stops the consumer (QueueError, exit 1), not a
    reconnection, and the position stays before the message whose files were not durable."""
    settings = QueueSettings(stream="s", commit_every=1000, commit_interval_s=0.05)
    consumer = AnnotationConsumer(settings, tree)  # one message is too few files for syncfs
    consumer.handle(encode_message(created("first")), 0)
    consumer.checkpoint.commit()
    consumer.handle(encode_message(created("second")), 1)
    poison(tree.data.label_path("second"))

    async def watch() -> None:  # the timed commit of a running consumer
        lost = asyncio.Event()
        await consumer._watch(None, lost)  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(watch(), 10))
    assert consumer.stopping
    with pytest.raises(QueueError, match="cannot write the data tree"):
        asyncio.run(consumer.run())
    assert load_offset(tree.offset_file, stream="s") == 0
