"""Rejected queue messages, kept whole under ``{root}/queue-rejected/`` (SPEC 5.4).

Each rejected stream entry leaves two files named by its offset (zero-padded, so they sort):

    queue-rejected/000000001234.amqp        the entry's raw AMQP bytes, exactly as received
    queue-rejected/000000001234.reason.txt  one line: "offset 1234: <reason>"

An operator can read the reason, fix the cause and publish the message again. The files are
written through the consumer's `WriteBatch`, so they are durable before the position moves past
them; rejecting the same offset again (a replay) rewrites the same two files.

The folder is bounded (`RejectedFolder`): beyond a number of messages or of bytes the oldest
are pruned, so a flood of bad messages cannot fill the disk the data lives on. How many were
pruned, ever, is kept in ``queue-rejected/pruned.txt``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from azaion_training.fs import DataTree
from azaion_training.queue.durability import WriteBatch

MAX_REASON_LENGTH = 500
"""Reasons are cut to this many characters."""

_MESSAGE_SUFFIX = ".amqp"
_REASON_SUFFIX = ".reason.txt"
PRUNED_FILE = "pruned.txt"
"""Under ``queue-rejected/``: how many rejected messages were pruned, ever."""

logger = logging.getLogger(__name__)


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
    message_path = _message_path(tree, offset)
    writes.write_bytes(message_path, bytes(raw))
    line = f"offset {offset}: {one_line(reason)}\n"
    writes.write_bytes(_reason_path(tree, offset), line.encode())
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


class RejectedFolder:
    """``queue-rejected/`` kept within ``max_count`` messages and ``max_bytes``, oldest pruned.

    The sizes on disk are read once when it is made; then every `reject` adds the new entry and
    prunes the oldest until the folder is within both bounds (the newest entry always stays).

    Args:
        tree: the data tree.
        writes: the consumer's batch (writes and removals are flushed with it).
        max_count: most rejected messages kept.
        max_bytes: most bytes kept (messages and reasons).
    """

    def __init__(
        self, tree: DataTree, writes: WriteBatch, *, max_count: int, max_bytes: int
    ) -> None:
        self.tree = tree
        self.writes = writes
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._sizes: dict[int, int] = {}  # by offset, oldest first (offsets only grow)
        for offset, paths in sorted(_entries(tree.queue_rejected).items()):
            self._sizes[offset] = sum(_size(path) for path in paths)
        self._bytes = sum(self._sizes.values())
        self.pruned = _read_count(tree.queue_rejected / PRUNED_FILE)

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def bytes(self) -> int:
        """Bytes held by the kept messages and their reasons."""
        return self._bytes

    def reject(self, *, offset: int, raw: bytes, reason: str) -> Path:
        """Keeps a rejected entry (see `reject`), then prunes the oldest beyond the bounds."""
        path = reject(self.tree, self.writes, offset=offset, raw=raw, reason=reason)
        size = _size(path) + _size(_reason_path(self.tree, offset))
        self._bytes += size - self._sizes.pop(offset, 0)
        self._sizes[offset] = size
        self._prune(keep=offset)
        return path

    def _prune(self, *, keep: int) -> None:
        before = self.pruned
        while len(self._sizes) > self.max_count or self._bytes > self.max_bytes:
            oldest = next(iter(self._sizes))
            if oldest == keep:
                break
            self.writes.remove(_reason_path(self.tree, oldest))  # the reason first: readers
            self.writes.remove(_message_path(self.tree, oldest))  # list by reason
            self._bytes -= self._sizes.pop(oldest)
            self.pruned += 1
        if self.pruned != before:
            self.writes.write_bytes(
                self.tree.queue_rejected / PRUNED_FILE, f"{self.pruned}\n".encode()
            )
            logger.info(
                "queue-rejected/: pruned the %d oldest (%d in all; bounds: %d messages, %d bytes)",
                self.pruned - before,
                self.pruned,
                self.max_count,
                self.max_bytes,
            )


def _message_path(tree: DataTree, offset: int) -> Path:
    return tree.queue_rejected / f"{offset:012d}{_MESSAGE_SUFFIX}"


def _reason_path(tree: DataTree, offset: int) -> Path:
    return tree.queue_rejected / f"{offset:012d}{_REASON_SUFFIX}"


def _entries(folder: Path) -> dict[int, list[Path]]:
    """The files of each rejected offset in ``folder``."""
    found: dict[int, list[Path]] = {}
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return found
    for name in names:
        for suffix in (_MESSAGE_SUFFIX, _REASON_SUFFIX):
            stem = name[: -len(suffix)]
            if name.endswith(suffix) and stem.isdigit():
                found.setdefault(int(stem), []).append(folder / name)
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_count(path: Path) -> int:
    try:
        text = path.read_text("utf-8").strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0
