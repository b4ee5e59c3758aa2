"""The split ledger: where every group went, the first time a dataset saw it (SPEC 7).

A *group* is the unit of the split: every annotation of one source media (``media:{name}``),
images with identical content (``image:{digest}``), or, failing both, the annotation alone
(``name:{name}``). `group_keys` gives an annotation's keys; the first one is its group.

The ledger (SQLite, ``{root}/split-ledger.sqlite``) keeps, per *generation*, the split of every
key it has placed. `SplitLedger.place` answers from the ledger when any of an annotation's keys
is recorded (its own name first, so an annotation never moves, then its media, then its image),
and otherwise buckets its group by a hash threshold (`bucket`): ``int(sha256(group)[:16], 16) /
2**64`` against the cumulative ratios. The ratios hold in expectation and nothing placed ever
moves. `SplitLedger.resplit` starts a new, empty generation: the one explicit way to re-split.

Example:
    >>> bucket("media:flight-7", (0.7, 0.2, 0.1))
    'valid'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

LEDGER_FILE = "split-ledger.sqlite"
"""The ledger's file name under the data root."""

SPLITS: tuple[str, str, str] = ("train", "valid", "test")
"""Split names, in the order of the ratios."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (number INTEGER PRIMARY KEY, started TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS placed (
    generation INTEGER NOT NULL,
    key TEXT NOT NULL,
    split TEXT NOT NULL,
    PRIMARY KEY (generation, key)
) WITHOUT ROWID;
"""


def bucket(group: str, ratios: Sequence[float], names: Sequence[str] = SPLITS) -> str:
    """The split of a new group: its hash's place in ``[0, 1)`` against the cumulative ratios."""
    point = int(hashlib.sha256(group.encode("utf-8")).hexdigest()[:16], 16) / 2**64
    cumulative = 0.0
    for name, ratio in zip(names, ratios, strict=True):
        cumulative += ratio
        if point < cumulative:
            return name
    return names[-1]


def group_keys(name: str, *, media: str | None = None, digest: str | None = None) -> list[str]:
    """An annotation's ledger keys: its group (media, else image digest, else name) first."""
    keys = [f"media:{media}"] if media else []
    if digest:
        keys.append(f"image:{digest}")
    name_key = f"name:{name}"
    return [*keys, name_key] if keys else [name_key]


class SplitLedger:
    """The split of every group placed so far, in the current generation.

    Writes stay in one transaction until `commit` (formation commits once its dataset is in
    place, so a failed formation records nothing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT max(number) FROM generations").fetchone()
        if row[0] is None:
            self._db.execute(
                "INSERT INTO generations VALUES (1, ?)", (dt.datetime.now(dt.UTC).isoformat(),)
            )
        self.generation: int = row[0] or 1
        self._in_transaction = False

    @classmethod
    def under(cls, root: Path) -> SplitLedger:
        """The ledger of the data tree at ``root``."""
        return cls(root / LEDGER_FILE)

    def close(self) -> None:
        """Rolls back what was not committed and closes the file."""
        if self._in_transaction:
            self._db.execute("ROLLBACK")
        self._db.close()

    def __enter__(self) -> SplitLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recorded(self, key: str) -> str | None:
        """The split of ``key`` in this generation, or ``None`` if it was never placed."""
        row = self._db.execute(
            "SELECT split FROM placed WHERE generation = ? AND key = ?", (self.generation, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def place(self, name: str, keys: Sequence[str], ratios: Sequence[float]) -> tuple[str, bool]:
        """The split of annotation ``name`` with ``keys`` (`group_keys`); records every key.

        Returns:
            The split, and whether it came from the ledger (``False``: newly bucketed).
        """
        name_key = f"name:{name}"
        ordered = [name_key, *(k for k in keys if k != name_key)]
        split = next((s for s in map(self.recorded, ordered) if s is not None), None)
        known = split is not None
        if split is None:
            split = bucket(keys[0], ratios)
        if not self._in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
        self._db.executemany(
            "INSERT OR IGNORE INTO placed VALUES (?, ?, ?)",
            [(self.generation, key, split) for key in ordered],
        )
        return split, known

    def commit(self) -> None:
        """Makes the placements so far permanent."""
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False

    def resplit(self) -> int:
        """Starts a new, empty generation; returns its number."""
        self.commit()
        self.generation += 1
        self._db.execute(
            "INSERT INTO generations VALUES (?, ?)",
            (self.generation, dt.datetime.now(dt.UTC).isoformat()),
        )
        return self.generation

    def size(self) -> int:
        """How many keys this generation has placed."""
        row = self._db.execute(
            "SELECT count(*) FROM placed WHERE generation = ?", (self.generation,)
        ).fetchone()
        return int(row[0])
