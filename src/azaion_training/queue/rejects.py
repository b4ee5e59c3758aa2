"""Rejected queue messages, kept whole under ``{root}/queue-rejected/`` (SPEC 5.4).

Each rejected stream entry leaves two files named by its offset (zero-padded, so they sort):

    queue-rejected/000000001234.amqp        the entry's raw AMQP bytes, exactly as received
    queue-rejected/000000001234.reason.txt  one line: "offset 1234: <reason>"

An operator can read the reason, fix the cause and publish the message again. The files are
written through the consumer's `WriteBatch`, so they are durable before the position moves past
them; rejecting the same offset again (a replay) rewrites the same two files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from azaion_training.fs import DataTree
from azaion_training.queue.durability import WriteBatch

MAX_REASON_LENGTH = 500
"""Reasons are cut to this many characters."""

_MESSAGE_SUFFIX = ".amqp"
_REASON_SUFFIX = ".reason.txt"


@dataclass(frozen=True)
class Rejected:
    """One rejected message on disk."""

    offset: int
    reason: str
    message_path: Path

    def raw(self) -> bytes:
        """The rejected entry's bytes."""
        return self.message_path.read_bytes()


def one_line(text: str) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to `MAX_REASON_LENGTH`."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON_LENGTH else line[: MAX_REASON_LENGTH - 3] + "..."


def reject(tree: DataTree, writes: WriteBatch, *, offset: int, raw: bytes, reason: str) -> Path:
    """Keeps a rejected entry and its reason; returns the path of the kept message."""
    stem = f"{offset:012d}"
    message_path = tree.queue_rejected / f"{stem}{_MESSAGE_SUFFIX}"
    writes.write_bytes(message_path, bytes(raw))
    reason_path = tree.queue_rejected / f"{stem}{_REASON_SUFFIX}"
    writes.write_bytes(reason_path, f"offset {offset}: {one_line(reason)}\n".encode())
    return message_path


def rejected_messages(tree: DataTree) -> Iterator[Rejected]:
    """Every rejected message under the tree, by offset."""
    for reason_path in sorted(tree.queue_rejected.glob(f"*{_REASON_SUFFIX}")):
        stem = reason_path.name[: -len(_REASON_SUFFIX)]
        if not stem.isdigit():
            continue
        line = reason_path.read_text("utf-8").strip()
        _, _, reason = line.partition(": ")
        yield Rejected(
            offset=int(stem),
            reason=reason,
            message_path=tree.queue_rejected / f"{stem}{_MESSAGE_SUFFIX}",
        )
