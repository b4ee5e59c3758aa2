"""The consumer's position in the stream: ``{root}/offset.yaml`` (SPEC 5.5).

The file names the stream and the offset of the last message whose effects are durable; the
consumer resumes at the next one. It is written atomically and only after the `WriteBatch` that
holds the files of every message up to that offset has been flushed, so the position is never
ahead of the data (at-least-once; replays are harmless because handlers are idempotent).
`Checkpointer` batches this: it commits after ``every`` messages or ``interval_s`` seconds,
whichever comes first, and on demand (shutdown).

    # azaion-queue position: the last offset whose files are on disk
    stream: azaion-annotations
    offset: 1234
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from azaion_training.errors import QueueError
from azaion_training.fs import atomic_write_text
from azaion_training.queue.durability import WriteBatch

logger = logging.getLogger(__name__)

_HEADER = "# azaion-queue position: the last offset whose files are on disk\n"


def load_offset(path: Path, *, stream: str) -> int | None:
    """The last committed offset for ``stream``, or ``None`` to start from the beginning.

    A file written for another stream is ignored (with a warning). A bare number, as older
    versions may have written, is accepted.

    Raises:
        QueueError: the file exists but cannot be read (the message says how to recover).
    """
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise QueueError(_unreadable(path, str(exc))) from exc
    if isinstance(loaded, int) and not isinstance(loaded, bool):
        return loaded
    if not isinstance(loaded, dict) or not isinstance(loaded.get("offset"), int):
        raise QueueError(_unreadable(path, "expected a mapping with an integer 'offset'"))
    if loaded.get("stream", stream) != stream:
        logger.warning(
            "%s holds a position in stream %r, not %r; starting from the beginning",
            path,
            loaded["stream"],
            stream,
        )
        return None
    return int(loaded["offset"])


def save_offset(path: Path, *, stream: str, offset: int) -> None:
    """Writes the position atomically and durably."""
    body = yaml.safe_dump({"stream": stream, "offset": int(offset)}, sort_keys=False)
    atomic_write_text(path, _HEADER + body)


def _unreadable(path: Path, why: str) -> str:
    return (
        f"cannot read the queue position {path}: {why}. Delete the file to replay the stream "
        f"from its beginning (safe: handlers are idempotent)"
    )


class Checkpointer:
    """Commits the position in batches, each after flushing the files it covers.

    Args:
        path: ``offset.yaml``.
        stream: the stream name written beside the offset.
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
        self._committed = load_offset(path, stream=stream)
        self._applied = self._committed
        self._pending = 0
        self._last_commit = clock()
        self.commits = 0

    @property
    def applied(self) -> int | None:
        """The last offset applied (its files may not be durable yet)."""
        return self._applied

    @property
    def committed(self) -> int | None:
        """The last offset written to ``offset.yaml``."""
        return self._committed

    def advance(self, offset: int) -> None:
        """Records that the message at ``offset`` was applied; commits when a batch is full."""
        self._applied = offset
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
        save_offset(self.path, stream=self.stream, offset=self._applied)
        self._committed = self._applied
        self._pending = 0
        self.commits += 1
