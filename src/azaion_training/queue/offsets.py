"""The consumer's position in the stream: ``{root}/offset.yaml`` (SPEC 5.5).

The file names the stream, the offset of the last message whose effects are durable, and that
message's chunk timestamp (milliseconds, set by the broker when it wrote the message): the
identity of the stream at that offset. A stream deleted and re-created under the same name holds
another message there, written at another time, so the consumer can tell it from the stream it
followed (`queue.consumer`). The consumer resumes at the next offset.

It is written atomically and only after the `WriteBatch` that holds the files of every message
up to that offset has been flushed, so the position is never ahead of the data (at-least-once;
replays are harmless because handlers are idempotent). `Checkpointer` batches this: it commits
after ``every`` messages or ``interval_s`` seconds, whichever comes first, and on demand
(shutdown).

    # azaion-queue position: the last offset whose files are on disk
    stream: azaion-annotations
    offset: 1234
    timestamp: 1764790000123
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from azaion_training.errors import QueueError
from azaion_training.fs import atomic_write_text
from azaion_training.queue.durability import WriteBatch

logger = logging.getLogger(__name__)

_HEADER = "# azaion-queue position: the last offset whose files are on disk\n"


@dataclass(frozen=True)
class Position:
    """A stored position: the last durable offset and its message's chunk timestamp (ms)."""

    offset: int
    timestamp: int | None = None


FROM_CHOICES = (
    "--from first (replay the whole stream; safe), --from last (new messages only) or --from OFFSET"
)
"""The choices named when the stored position does not fit the stream (`azaion-queue --from`)."""


def load_position(path: Path, *, stream: str) -> Position | None:
    """The stored position in ``stream``, or ``None`` when there is none (a new root).

    A bare number, as older versions wrote, is accepted (no timestamp).

    Raises:
        QueueError: the file cannot be read, or holds a position in another stream (the
            message names the file and the remedy; nothing is reset silently).
    """
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise QueueError(_unreadable(path, one_line_of(exc))) from exc
    if _is_int(loaded):
        return Position(int(loaded))
    if not isinstance(loaded, dict) or not _is_int(loaded.get("offset")):
        raise QueueError(_unreadable(path, "expected a mapping with an integer 'offset'"))
    timestamp = loaded.get("timestamp")
    if timestamp is not None and not _is_int(timestamp):
        raise QueueError(_unreadable(path, "'timestamp' is not an integer"))
    if loaded.get("stream", stream) != stream:
        raise QueueError(
            f"{path} holds a position in stream {loaded['stream']!r}, not {stream!r}; "
            f"start with {FROM_CHOICES}"
        )
    return Position(int(loaded["offset"]), timestamp)


def load_offset(path: Path, *, stream: str) -> int | None:
    """The last committed offset for ``stream`` (`load_position` without the timestamp)."""
    position = load_position(path, stream=stream)
    return None if position is None else position.offset


def save_offset(path: Path, *, stream: str, offset: int, timestamp: int | None = None) -> None:
    """Writes the position atomically and durably."""
    fields: dict[str, object] = {"stream": stream, "offset": int(offset)}
    if timestamp is not None:
        fields["timestamp"] = int(timestamp)
    atomic_write_text(path, _HEADER + yaml.safe_dump(fields, sort_keys=False))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def one_line_of(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _unreadable(path: Path, why: str) -> str:
    return (
        f"cannot read the queue position {path}: {why}. Restore it from a backup, or start "
        f"with {FROM_CHOICES} (the file is rewritten at the first commit)"
    )


class Checkpointer:
    """Commits the position in batches, each after flushing the files it covers.

    Args:
        path: ``offset.yaml``.
        stream: the stream name written beside the offset.
        start: where to start instead of the stored position (``None``: the stored one; a
            `Position` with offset -1 starts before the first message).
        writes: the batch holding the files of the messages applied since the last commit.
        every: commit after this many messages ...
        interval_s: ... or when this many seconds passed since the last commit.
        clock: a monotonic clock in seconds (tests pass their own).
    """

    def __init__(
        self,
        path: Path,
        *,
        stream: str,
        writes: WriteBatch,
        start: Position | None = None,
        every: int = 200,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.stream = stream
        self.writes = writes
        self.every = every
        self.interval_s = interval_s
        self._clock = clock
        self.stored = load_position(path, stream=stream) if start is None else None
        """The position read from ``path`` (``None`` when a start was given or there is none)."""
        self._committed = self.stored.offset if self.stored else None
        self._applied = self._committed
        if start is not None and start.offset >= 0:
            self._applied = start.offset
        self._timestamp = self.stored.timestamp if self.stored else None
        self._pending = 0
        self._last_commit = clock()
        self.commits = 0

    @property
    def applied(self) -> int | None:
        """The last offset applied (its files may not be durable yet)."""
        return self._applied

    @property
    def timestamp(self) -> int | None:
        """The broker's timestamp of the message at `applied` (``None``: not known)."""
        return self._timestamp

    @property
    def committed(self) -> int | None:
        """The last offset written to ``offset.yaml``."""
        return self._committed

    def advance(self, offset: int, timestamp: int | None = None) -> None:
        """Records that the message at ``offset`` (written by the broker at ``timestamp``) was
        applied; commits when a batch is full."""
        self._applied = offset
        self._timestamp = timestamp
        self._pending += 1
        if self._pending >= self.every:
            self.commit()
        else:
            self.commit_if_due()

    def commit_if_due(self) -> None:
        """Commits when ``interval_s`` passed since the last commit and something is pending."""
        if self._pending and self._clock() - self._last_commit >= self.interval_s:
            self.commit()

    def commit(self) -> None:
        """Flushes the pending files, then writes the position (nothing to do if up to date)."""
        self._last_commit = self._clock()
        if self._applied is None or self._applied == self._committed:
            return
        self.writes.flush()
        save_offset(self.path, stream=self.stream, offset=self._applied, timestamp=self._timestamp)
        self._committed = self._applied
        self._pending = 0
        self.commits += 1
