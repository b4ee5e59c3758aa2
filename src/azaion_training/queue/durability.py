"""Writes into the data tree whose fsync is deferred, so many messages share one flush.

The queue consumer persists its position only after the files of every message before it are on
disk (SPEC 5.5). Doing that with an fsync per file and per folder for every message costs several
disk flushes per message; a `WriteBatch` instead writes atomically (temporary name, rename) but
without fsync, remembers what it touched, and `WriteBatch.flush` makes all of it durable at
once, just before the position is written. A crash before the flush loses nothing that matters:
the position still points before those messages, so they are applied again (handlers are
idempotent).

Example:
    >>> batch = WriteBatch()
    >>> batch.write_bytes(tree.data.labels / "a.txt", b"")  # doctest: +SKIP
    >>> batch.flush()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from azaion_training.fs import atomic_move, atomic_write_bytes, fsync_dir


class WriteBatch:
    """Atomic writes, moves and removals whose durability waits for `flush`."""

    def __init__(self) -> None:
        self._files: set[Path] = set()
        self._folders: set[Path] = set()

    def __len__(self) -> int:
        """How many files and folders wait for a flush."""
        return len(self._files) + len(self._folders)

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

    def remove(self, path: Path) -> bool:
        """Removes ``path`` if it exists; returns whether it did."""
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._folders.add(path.parent)
        return True

    def flush(self) -> None:
        """Makes every write, move and removal so far durable (fsync of files, then folders)."""
        for path in sorted(self._files):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # moved or removed later in the batch; its target is listed
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in sorted(self._folders):
            if folder.is_dir():
                fsync_dir(folder)
        self._files.clear()
        self._folders.clear()
