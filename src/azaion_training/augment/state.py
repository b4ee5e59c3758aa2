"""What the augmenter remembers between passes: the stamp of each source it has augmented.

A `Stamp` holds what `os.stat` says about an annotation's image and label (name, size,
modification time in nanoseconds) plus the *recipe* (pipeline version and the settings that shape
the samples). A source whose stamp is unchanged and whose samples are all present is skipped with
no file read, so a pass over 100,000 unchanged annotations costs two folder listings with stat
and one table read.

The table lives in SQLite at ``data-processed/.augment-state.sqlite``: dot-named, so nothing that
reads samples mistakes it for one. A row is written only after the samples it stands for are on
disk, so a crash at any point at worst re-makes some samples. A damaged state file stops the
augmenter with one line naming it (`StorageError`): deleting it is safe (the next pass re-makes
every sample, the same samples), but that is the operator's choice, never a silent reset. Any
other SQLite failure (disk full, I/O error, locked) is a `StorageError` too: the pass stops and
the daemon tries again at its next interval.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from azaion_training.errors import StorageError
from azaion_training.images import ToRGB

logger = logging.getLogger(__name__)

STATE_FILE = ".augment-state.sqlite"
"""The state's file name inside ``data-processed/``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    image_mtime_ns INTEGER NOT NULL,
    image_size INTEGER NOT NULL,
    label_mtime_ns INTEGER NOT NULL,
    label_size INTEGER NOT NULL,
    recipe TEXT NOT NULL
)
"""


class Stamp(NamedTuple):
    """The identity of one source annotation's files at the time its samples were made."""

    image: str
    image_mtime_ns: int
    image_size: int
    label_mtime_ns: int
    label_size: int
    recipe: str


def recipe(
    *,
    version: int,
    variants: int,
    box_rules: object,
    jpeg_quality: int,
    to_rgb: object = None,
) -> str:
    """A short text naming everything besides the source files that shapes the samples.

    ``to_rgb`` (the image conversion rule) is named only when it is not the default, so the
    samples made before the rule existed keep their recipe.
    """
    text = f"v{version}:variants={variants}:boxes={box_rules!r}:q={jpeg_quality}"
    return text if to_rgb is None or to_rgb == ToRGB() else f"{text}:rgb={to_rgb!r}"


class StateStore:
    """The stamps of augmented sources, in a SQLite file; used from one thread.

    Example:
        >>> with StateStore(Path(tmp) / ".augment-state.sqlite") as state:  # doctest: +SKIP
        ...     state.record([("a", Stamp("a.jpg", 1, 2, 3, 4, "v1"))])
        ...     state.commit()
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = self._open()

    def load(self) -> dict[str, Stamp]:
        """Every recorded stamp, by source name."""
        with self._failing("read"):
            rows = self._db.execute(
                "SELECT name, image, image_mtime_ns, image_size, label_mtime_ns, label_size, "
                "recipe FROM sources"
            ).fetchall()
        return {name: Stamp(*rest) for name, *rest in rows}

    def record(self, stamps: Iterable[tuple[str, Stamp]]) -> None:
        """Sets the stamp of each named source (visible to others after `commit`)."""
        with self._failing("write"):
            self._db.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((name, *stamp) for name, stamp in stamps),
            )

    def forget(self, names: Iterable[str]) -> None:
        """Removes the stamps of the named sources."""
        with self._failing("write"):
            self._db.executemany("DELETE FROM sources WHERE name = ?", ((name,) for name in names))

    def commit(self) -> None:
        with self._failing("write"):
            self._db.commit()

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._db.close()

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Turns a SQLite failure into one line naming the file (`StorageError`); what was
        not committed is rolled back, so the file stays as it was."""
        try:
            yield
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.rollback()
            raise StorageError(f"cannot {what} the augment state {self.path}: {exc}") from exc

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"the augment state {self.path} is damaged ({exc}): delete it and the next pass "
                "re-makes every sample (the same samples; it only takes time)"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        try:
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM sources").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db
