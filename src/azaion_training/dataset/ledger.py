"""The split ledger: where every group went, the first time a dataset saw it (SPEC 7).

A *group* is the unit of the split: every annotation of one source media (``media:{name}``),
images with identical content (``image:{digest}``), or, failing both, the annotation alone
(``name:{name}``). `group_keys` gives an annotation's keys; the first one is its group.

The ledger (SQLite, ``{root}/split-ledger.sqlite``) keeps, per *generation*, the split of every
key it has placed. `SplitLedger.place` answers from the ledger when any of an annotation's keys
is recorded (its own name first, so an annotation never moves, then its media, then its image),
and otherwise buckets its group by a hash threshold (`bucket`): ``int(sha256(seed)[:16], 16) /
2**64`` against the cumulative ratios, where the seed is the group, prefixed with the generation
from generation 2 on (``"2:media:flight-7"``). The ratios hold in expectation and nothing placed
ever moves. `SplitLedger.resplit` starts a new, empty generation: the one explicit way to
re-split, and a real one (the generation is part of the hash); it says how many of the groups
of the generation before move.

The ledger is state that cannot be guessed again: a damaged file stops with one line naming it
(`DatasetError`), and a lost or emptied ledger while datasets exist is refused by formation
(`SplitLedger.for_formation`) unless the operator chose so (`SplitLedger.start_empty`);
`rebuild_from_manifests` makes it again from the datasets' ``manifest-members.tsv``.

Example:
    >>> bucket("media:flight-7", (0.7, 0.2, 0.1))
    'valid'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from azaion_training.errors import DatasetError

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
CREATE TABLE IF NOT EXISTS groups (
    generation INTEGER NOT NULL,
    key TEXT NOT NULL,
    split TEXT NOT NULL,
    PRIMARY KEY (generation, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS choices (generation INTEGER PRIMARY KEY, why TEXT NOT NULL);
"""

REMEDY = (
    "restore it from a backup, or rebuild it from the datasets' manifests with "
    "`azaion-dataset rebuild-ledger`"
)


def bucket(
    group: str, ratios: Sequence[float], names: Sequence[str] = SPLITS, *, generation: int = 1
) -> str:
    """The split of a new group in ``generation``: its hash's place in ``[0, 1)`` against the
    cumulative ratios (generation 1 hashes the group alone, later ones ``"{N}:{group}"``)."""
    seed = group if generation <= 1 else f"{generation}:{group}"
    point = int(hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16], 16) / 2**64
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
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT max(number) FROM generations").fetchone()
            self._db.execute("SELECT count(*) FROM placed").fetchone()
        except sqlite3.DatabaseError as exc:
            raise DatasetError(f"the split ledger {path} is damaged ({exc}): {REMEDY}") from exc
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

    @classmethod
    def for_formation(cls, root: Path, *, datasets: int) -> SplitLedger:
        """The ledger of ``root``, refused when it is lost or empty while ``datasets`` formed
        datasets exist and the operator did not start it empty (`start_empty`): forming then
        would split every group afresh behind the operator's back.

        Raises:
            DatasetError: the ledger is damaged, or lost while datasets exist.
        """
        ledger = cls.under(root)
        if datasets and ledger.total() == 0 and not ledger.chosen():
            ledger.close()
            raise DatasetError(
                f"the split ledger {ledger.path} is missing or empty, but {datasets} dataset(s) "
                f"exist: forming now would split every group afresh. Rebuild it with "
                f"`azaion-dataset rebuild-ledger`, or start a new split on purpose with "
                f"`azaion-dataset rebuild-ledger --empty`"
            )
        return ledger

    def start_empty(self) -> None:
        """Records that the operator chose to start this (empty) ledger afresh."""
        self._db.execute(
            "INSERT OR REPLACE INTO choices VALUES (?, ?)", (self.generation, "started empty")
        )

    def chosen(self) -> bool:
        """True when the operator started a generation on purpose (`start_empty`, `resplit`)."""
        return self._db.execute("SELECT count(*) FROM choices").fetchone()[0] > 0

    def total(self) -> int:
        """How many keys every generation together has placed."""
        return int(self._db.execute("SELECT count(*) FROM placed").fetchone()[0])

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
            split = bucket(keys[0], ratios, generation=self.generation)
        self.record(keys[0], ordered, split)
        return split, known

    def record(self, group: str, keys: Iterable[str], split: str) -> None:
        """Records ``split`` for ``group`` and every key (the ones recorded first stay)."""
        if not self._in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
        self._db.execute(
            "INSERT OR IGNORE INTO groups VALUES (?, ?, ?)", (self.generation, group, split)
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO placed VALUES (?, ?, ?)",
            [(self.generation, key, split) for key in keys],
        )

    def commit(self) -> None:
        """Makes the placements so far permanent."""
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False

    def resplit(self, ratios: Sequence[float]) -> tuple[int, int, int]:
        """Starts a new, empty generation, in which every group is bucketed afresh.

        Returns:
            The new generation's number, how many groups of the generation before it would
            move to another split with ``ratios``, and how many groups that generation had.
        """
        self.commit()
        rows = self._db.execute(
            "SELECT key, split FROM groups WHERE generation = ?", (self.generation,)
        ).fetchall()
        self.generation += 1
        self._db.execute(
            "INSERT INTO generations VALUES (?, ?)",
            (self.generation, dt.datetime.now(dt.UTC).isoformat()),
        )
        self._db.execute("INSERT INTO choices VALUES (?, ?)", (self.generation, "resplit"))
        moved = sum(bucket(key, ratios, generation=self.generation) != split for key, split in rows)
        return self.generation, moved, len(rows)

    def start_generation(self, number: int) -> None:
        """Makes ``number`` the current generation (rebuilding: the manifests' newest)."""
        self._db.execute(
            "INSERT OR IGNORE INTO generations VALUES (?, ?)",
            (number, dt.datetime.now(dt.UTC).isoformat()),
        )
        self.generation = number

    def size(self) -> int:
        """How many keys this generation has placed."""
        row = self._db.execute(
            "SELECT count(*) FROM placed WHERE generation = ?", (self.generation,)
        ).fetchone()
        return int(row[0])


def rebuild_from_manifests(ledger: SplitLedger, datasets: Sequence[Path]) -> tuple[int, int]:
    """Records the split of every group and annotation in the ``manifest-members.tsv`` of
    ``datasets`` (oldest first, so the first placement stays), in the newest generation they
    name; returns that generation and the number of groups recorded.

    Raises:
        DatasetError: the ledger already holds placements, or a manifest cannot be read.
    """
    import json

    if ledger.total():
        raise DatasetError(
            f"the split ledger {ledger.path} is not empty ({ledger.total()} keys): move it aside "
            "first to rebuild it"
        )
    manifests = []
    for dataset in datasets:
        try:
            manifest = json.loads((dataset / "manifest.json").read_text("utf-8"))
            members = (dataset / manifest.get("members", "manifest-members.tsv")).read_text()
        except FileNotFoundError:
            continue  # formed before manifests: nothing to learn from it
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read the manifest of {dataset}: {exc}") from exc
        manifests.append((int(manifest.get("ledger_generation", 1)), members))
    if not manifests:
        raise DatasetError("no dataset has a manifest: there is nothing to rebuild the ledger from")
    generation = max(number for number, _ in manifests)
    ledger.start_generation(generation)
    groups: set[str] = set()
    for number, members in manifests:
        if number != generation:
            continue
        for line in members.splitlines():
            split, group, annotation, _ = line.split("\t")
            ledger.record(group, [f"name:{annotation}", group], split)
            groups.add(group)
    ledger.commit()
    return generation, len(groups)
