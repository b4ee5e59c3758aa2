"""Rejected messages are kept whole, with their offset and a one-line reason."""

from __future__ import annotations

import pytest

from azaion_training.config import QueueSettings
from azaion_training.fs import DataTree
from azaion_training.queue import AnnotationConsumer
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.rejects import (
    MAX_REASON_LENGTH,
    PRUNED_FILE,
    RejectedFolder,
    one_line,
    reject,
    rejected_messages,
)


def test_reject_keeps_the_entry_and_its_reason(tree: DataTree) -> None:
    batch = WriteBatch()
    reject(tree, batch, offset=12, raw=b"\x00raw entry", reason="bad\nthing  here")
    reject(tree, batch, offset=3, raw=b"other", reason="x")
    kept = list(rejected_messages(tree))
    assert [(r.offset, r.reason, r.raw()) for r in kept] == [
        (3, "x", b"other"),
        (12, "bad thing here", b"\x00raw entry"),
    ]
    assert (tree.queue_rejected / "000000000012.reason.txt").read_text() == (
        "offset 12: bad thing here\n"
    )


def test_rejecting_the_same_offset_again_rewrites_the_same_files(tree: DataTree) -> None:
    for _ in range(2):
        reject(tree, WriteBatch(), offset=5, raw=b"entry", reason="why")
    assert sorted(p.name for p in tree.queue_rejected.iterdir()) == [
        "000000000005.amqp",
        "000000000005.reason.txt",
    ]


def test_one_line_is_short() -> None:
    line = one_line("word " * 1000)
    assert len(line) == MAX_REASON_LENGTH
    assert line.endswith("...")


@pytest.mark.parametrize(
    ("max_count", "max_bytes", "kept"),
    [
        (3, 10**9, [7, 8, 9]),  # by count
        (100, 5 * 130, [5, 6, 7, 8, 9]),  # by size: 121 bytes each (entry 100, reason 21)
        (2, 3 * 130, [8, 9]),  # both
        (100, 10, [9]),  # the newest stays, even alone over the bound
    ],
)
def test_the_folder_is_bounded_the_oldest_pruned_and_counted(
    tree: DataTree, max_count: int, max_bytes: int, kept: list[int]
) -> None:
    folder = RejectedFolder(tree, WriteBatch(), max_count=max_count, max_bytes=max_bytes)
    for offset in range(10):
        folder.reject(offset=offset, raw=b"x" * 100, reason="r" * 10)
    assert [r.offset for r in rejected_messages(tree)] == kept
    assert folder.pruned == 10 - len(kept)
    assert (tree.queue_rejected / PRUNED_FILE).read_text() == f"{10 - len(kept)}\n"
    assert folder.bytes == sum(
        p.stat().st_size for p in tree.queue_rejected.iterdir() if p.name != PRUNED_FILE
    )


def test_the_bounds_hold_across_restarts(tree: DataTree) -> None:
    for offset in range(5):
        reject(tree, WriteBatch(), offset=offset, raw=b"x", reason="old")
    folder = RejectedFolder(tree, WriteBatch(), max_count=3, max_bytes=10**9)
    assert (len(folder), folder.pruned) == (5, 0)
    folder.reject(offset=5, raw=b"x", reason="new")
    assert [r.offset for r in rejected_messages(tree)] == [3, 4, 5]
    again = RejectedFolder(tree, WriteBatch(), max_count=3, max_bytes=10**9)
    assert (len(again), again.pruned) == (3, 3)


def test_the_consumer_counts_pruned_rejections_in_its_summary(tree: DataTree) -> None:
    settings = QueueSettings(stream="s", rejected_max_count=2)
    consumer = AnnotationConsumer(settings, tree)
    for offset in range(5):
        consumer.handle(b"\x00 not an entry", offset)
    assert (consumer.stats.rejected, consumer.stats.pruned) == (5, 3)
    assert "5 rejected (3 old rejections pruned from queue-rejected/)" in consumer.stats.summary(4)
    assert [r.offset for r in rejected_messages(tree)] == [3, 4]
