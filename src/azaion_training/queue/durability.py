"""Writes into the data tree whose fsync is deferred, so many messages share one flush.

The queue consumer persists its position only after the files of every message before it are on
disk (SPEC 5.5). Doing that with an fsync per file and per folder for every message costs several
disk flushes per message; a `WriteBatch` instead writes atomically (temporary name, rename) but
without fsync, remembers what it touched, and `WriteBatch.flush` makes all of it durable at
once, just before the position is written. A crash before the flush loses nothing that matters:
the position still points before those messages, so they are applied again (handlers are
idempotent).

A store that must agree with the files (the annotation catalogue) joins the batch with `join`:
its commit runs right after the files are durable, inside `flush`, so it is never ahead of the
files and always before the position.

On Linux a flush of more than a few files is one ``syncfs(2)`` per filesystem: one journal
commit for the whole batch, where an fsync per file costs one each (the difference is what the
queue benchmark measures). Elsewhere every file and folder is fsynced.

A failed flush is final. After an fsync or syncfs error Linux drops the dirty pages and clears
the error, so a second flush "succeeds" with the data lost; a `WriteBatch` therefore never
retries: every later `WriteBatch.flush` raises the first error again, and the position is never
saved past the writes it covered. The consumer stops; on restart it applies those messages again.

Example:
    >>> batch = WriteBatch()
    >>> batch.write_bytes(tree.data.labels / "a.txt", b"")  # doctest: +SKIP
    >>> batch.flush()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from azaion_training.fs import atomic_move, atomic_write_bytes, fsync_dir, sync_filesystems

logger = logging.getLogger(__name__)

SYNCFS_MIN_FILES = 4
"""Batches with at least this many files are flushed with ``syncfs`` where it exists."""


class WriteBatch:
    """Atomic writes, moves and removals whose durability waits for `flush`."""

    def __init__(self, *, use_syncfs: bool = True) -> None:
        self._files: set[Path] = set()
        self._folders: set[Path] = set()
        self._use_syncfs = use_syncfs
        self.failure: OSError | None = None
        """The error of a failed flush; once set, every flush raises it."""
        self._commits: list[Callable[[], None]] = []

    def __len__(self) -> int:
        """How many files and folders wait for a flush."""
        return len(self._files) + len(self._folders)

    def join(self, commit: Callable[[], None]) -> None:
        """Runs ``commit`` at the end of every `flush`, once the files are durable."""
        self._commits.append(commit)

    def write_bytes(self, path: Path, data: bytes) -> None:
        """Writes ``data`` to ``path`` atomically (temporary name, rename)."""
        atomic_write_bytes(path, data, durable=False)
        self._files.add(path)
        self._folders.add(path.parent)

    def move(self, source: Path, target: Path) -> None:
        """Renames ``source`` to ``target``, replacing it."""
        atomic_move(source, target, durable=False)
        self._files.add(target)
        self._folders.update((source.parent, target.parent))

    def remove(self, path: Path | str) -> bool:
        """Removes ``path`` if it exists; returns whether it did."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        self._folders.add(Path(path).parent)
        return True

    def flush(self) -> None:
        """Makes every write, move and removal so far durable.

        Raises:
            OSError: a file or file system could not be flushed, now or in an earlier flush
                (see the module: a failed flush is never retried).
        """
        if self.failure is not None:
            raise OSError(self.failure.errno, f"an earlier flush failed: {self.failure}")
        try:
            synced = (
                self._use_syncfs
                and len(self._files) >= SYNCFS_MIN_FILES
                and sync_filesystems(self._folders)
            )
            if not synced:
                _fsync_files(self._files)
                for folder in sorted(self._folders):
                    if folder.is_dir():
                        fsync_dir(folder)
        except OSError as exc:
            self.failure = exc
            raise
        self._files.clear()
        self._folders.clear()
        for commit in self._commits:
            commit()


def _fsync_files(paths: Iterable[Path]) -> None:
    for path in sorted(paths):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # moved or removed later in the batch; its target is listed
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
