"""Rejected messages are kept whole, with their offset and a one-line reason."""

from __future__ import annotations

from azaion_training.fs import DataTree
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.rejects import MAX_REASON_LENGTH, one_line, reject, rejected_messages


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
