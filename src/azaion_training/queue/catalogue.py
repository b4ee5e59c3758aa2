"""The annotation catalogue: what the data tree's files do not say about each annotation (SPEC 7).

One SQLite file under the root (``{root}/catalogue.sqlite``, WAL) holds, per annotation, its
source media name and position in it, role, author, source (AI or manual), creation date, the
folder it is in, the date of its recorded deletion, the SHA-256 of its image bytes, and its status
history (one row per applied message, keyed by the stream offset, so a replay adds nothing).

The queue consumer writes it in the same durable batch as the files: `Catalogue.record` runs in
an open transaction that `Catalogue.commit` ends, and the consumer's `WriteBatch` calls that
commit right after the files are flushed and before the position is saved. A crash before the
commit loses the transaction and leaves the position before the messages it covered, so both are
replayed together; the catalogue never disagrees with the tree once the consumer has caught up.

Annotations that reach the tree by other paths (``azaion-convert``, files dropped in ``data/``)
get an entry the first time formation sees them (`Catalogue.register`).

Ordering (SPEC 5.4): a Created or Edited message dated before the annotation's recorded deletion
is refused (`Catalogue.check_order`), so a late, older message cannot bring a deleted annotation
back. The deletion's date is the Deleted message's own (its optional date key); a Deleted message
without a date records none, and nothing is refused on its account.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from azaion_training.errors import MessageError, QueueError
from azaion_training.fs import DataTree
from azaion_training.queue.messages import Annotation, AnnotationStatus, BulkAnnotations, Message

CATALOGUE_FILE = "catalogue.sqlite"

BUSY_WAIT_S = 5.0
"""How long one attempt waits for another writer (formation, another tool) before it logs and
tries again: a writer that meets the lock waits, it never fails for it."""

logger = logging.getLogger(__name__)
"""The catalogue's file name under the data root."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    name TEXT PRIMARY KEY,
    media TEXT,
    time_ticks INTEGER,
    role INTEGER,
    email TEXT,
    source INTEGER,
    created TEXT,
    digest TEXT,
    status INTEGER,
    folder TEXT,
    deleted TEXT,
    origin TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_media ON annotations (media);
CREATE TABLE IF NOT EXISTS history (
    name TEXT NOT NULL,
    offset INTEGER,
    status INTEGER NOT NULL,
    date TEXT,
    email TEXT,
    UNIQUE (name, offset)
);
"""


@dataclass(frozen=True)
class Entry:
    """One annotation's catalogue entry (``None`` where nothing is known)."""

    name: str
    media: str | None
    time_ticks: int | None
    role: int | None
    email: str | None
    source: int | None
    created: str | None
    digest: str | None
    status: int | None
    folder: str | None
    deleted: str | None
    origin: str


def image_digest(data: bytes) -> str:
    """The hex SHA-256 of an image's bytes: identical images share it."""
    return hashlib.sha256(data).hexdigest()


class Catalogue:
    """The catalogue file of one data tree.

    Args:
        path: the SQLite file (created with its folder if missing).
        data_folder, seed_folder, deleted_folder: the tree's annotation folder names, as
            recorded in ``folder``.
    """

    def __init__(
        self,
        path: Path,
        *,
        data_folder: str = "data",
        seed_folder: str = "data-seed",
        deleted_folder: str = "data_deleted",
    ) -> None:
        self.path = path
        self.folders = (data_folder, seed_folder, deleted_folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_WAIT_S)
            self._waiting(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=FULL")
            self._waiting(lambda: self._db.executescript(_SCHEMA))
            self._db.execute("SELECT count(*) FROM annotations").fetchone()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _damaged(exc):
                raise QueueError(f"cannot open the annotation catalogue {path}: {exc}") from exc
            raise QueueError(
                f"the annotation catalogue {path} is damaged ({exc}): restore it from a backup, "
                "or move it aside to start an empty one (azaion-queue --from first replays the "
                "stream into it; formation registers what it has not seen)"
            ) from exc
        self._open = False

    @classmethod
    def for_tree(cls, tree: DataTree) -> Catalogue:
        """The catalogue of a data tree (``{root}/catalogue.sqlite``)."""
        return cls(
            tree.root / CATALOGUE_FILE,
            data_folder=tree.data_name,
            seed_folder=tree.data_seed_name,
            deleted_folder=tree.data_deleted_name,
        )

    def close(self) -> None:
        """Rolls back what was not committed and closes the file."""
        if self._open:
            self._db.execute("ROLLBACK")
            self._open = False
        self._db.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def commit(self) -> None:
        """Makes every change since the last commit durable (one fsync in WAL mode).

        Raises:
            OSError: the file cannot be written (to the consumer, a failure of the tree).
        """
        if self._open:
            with self._as_os_error():
                self._waiting(lambda: self._db.execute("COMMIT"))
            self._open = False

    def get(self, name: str) -> Entry | None:
        """The entry of annotation ``name``, or ``None``."""
        row = self._db.execute("SELECT * FROM annotations WHERE name = ?", (name,)).fetchone()
        return None if row is None else Entry(*row)

    def entries(self) -> Iterator[Entry]:
        """Every entry, by name."""
        for row in self._db.execute("SELECT * FROM annotations ORDER BY name"):
            yield Entry(*row)

    def history(self, name: str) -> list[tuple[int | None, int, str | None, str | None]]:
        """The status history of ``name``: (offset, status, date, email), oldest first."""
        rows = self._db.execute(
            "SELECT offset, status, date, email FROM history WHERE name = ? ORDER BY rowid",
            (name,),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def media_counts(self) -> list[tuple[str | None, int]]:
        """Annotations per media name (``None``: no media), most first."""
        rows = self._db.execute(
            "SELECT media, count(*) FROM annotations GROUP BY media ORDER BY 2 DESC, 1"
        )
        return [(row[0], int(row[1])) for row in rows]

    def state(self) -> dict[str, int]:
        """The catalogue's identity for a manifest: entries and history rows so far."""
        entries = self._db.execute("SELECT count(*) FROM annotations").fetchone()[0]
        events = self._db.execute("SELECT count(*), max(offset) FROM history").fetchone()
        return {"annotations": int(entries), "events": int(events[0]), "last_offset": events[1]}

    def check_order(self, message: Message) -> None:
        """Refuses a Created or Edited message dated before the annotation's recorded deletion.

        Raises:
            MessageError: the message is older than the deletion.
        """
        if not isinstance(message, Annotation) or message.created_date is None:
            return
        row = self._db.execute(
            "SELECT deleted FROM annotations WHERE name = ?", (message.name,)
        ).fetchone()
        if row is None or row[0] is None:
            return
        deleted = dt.datetime.fromisoformat(row[0])
        if _aware(message.created_date) < deleted:
            raise MessageError(
                f"{message.status.wire_name} of {message.name} dated "
                f"{_aware(message.created_date).isoformat()} is older than its deletion "
                f"dated {deleted.isoformat()}; not applied"
            )

    def record(self, message: Message, *, offset: int | None, missing: tuple[str, ...]) -> None:
        """Records an applied message (``missing``: names the tree did not have).

        Raises:
            OSError: the file cannot be written.
        """
        with self._as_os_error():
            self._record(message, offset=offset, missing=missing)

    def _record(self, message: Message, *, offset: int | None, missing: tuple[str, ...]) -> None:
        self._begin()
        if isinstance(message, BulkAnnotations):
            for name in message.names:
                self._record_bulk(message, name, offset=offset, found=name not in missing)
            return
        if message.name in missing:
            return
        folder = self.folders[0] if message.role.validates else self.folders[1]
        created = None if message.created_date is None else _aware(message.created_date)
        self._db.execute(
            """INSERT INTO annotations (name, media, time_ticks, role, email, source, created,
                   digest, status, folder, origin)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queue')
               ON CONFLICT (name) DO UPDATE SET
                   media = coalesce(excluded.media, media),
                   time_ticks = coalesce(excluded.time_ticks, time_ticks),
                   role = excluded.role, email = coalesce(excluded.email, email),
                   source = coalesce(excluded.source, source),
                   created = coalesce(created, excluded.created),
                   digest = coalesce(excluded.digest, digest),
                   status = excluded.status, folder = excluded.folder, origin = 'queue'""",
            (
                message.name,
                message.original_media_name or None,
                message.time_ticks,
                int(message.role),
                message.email,
                None if message.source is None else int(message.source),
                None if created is None else created.isoformat(),
                None if message.image is None else image_digest(message.image),
                int(message.status),
                folder,
            ),
        )
        self._history(message.name, offset, message.status, created, message.email)

    def register(self, name: str, *, folder: str, image: Path | None) -> Entry:
        """Gives an annotation found in the tree (not from the queue) an entry, if it has none.

        The image, when given, is read once for its digest.
        """
        entry = self.get(name)
        if entry is not None:
            return entry
        digest = None
        if image is not None:
            try:
                digest = image_digest(image.read_bytes())
            except FileNotFoundError:
                digest = None
        self._begin()
        self._db.execute(
            "INSERT OR IGNORE INTO annotations (name, digest, folder, origin) "
            "VALUES (?, ?, ?, 'found')",
            (name, digest, folder),
        )
        return Entry(name, None, None, None, None, None, None, digest, None, folder, None, "found")

    def _record_bulk(
        self, message: BulkAnnotations, name: str, *, offset: int | None, found: bool
    ) -> None:
        date = None if message.created_date is None else _aware(message.created_date)
        if message.status is AnnotationStatus.DELETED:
            self._db.execute(
                "INSERT INTO annotations (name, status, deleted, origin) VALUES (?, ?, ?, 'queue')"
                " ON CONFLICT (name) DO UPDATE SET status = excluded.status,"
                " deleted = coalesce(max(deleted, excluded.deleted), excluded.deleted, deleted)",
                (name, int(message.status), None if date is None else date.isoformat()),
            )
            if found:
                self._set_folder(name, self.folders[2])
        elif found:
            self._db.execute(
                "UPDATE annotations SET status = ? WHERE name = ?", (int(message.status), name)
            )
            if message.status is AnnotationStatus.VALIDATED:  # only a validation moves it
                self._db.execute(
                    "UPDATE annotations SET folder = ? WHERE name = ? AND folder = ?",
                    (self.folders[0], name, self.folders[1]),
                )
        if found or message.status is AnnotationStatus.DELETED:
            self._history(name, offset, message.status, date, message.email)

    def _set_folder(self, name: str, folder: str) -> None:
        self._db.execute("UPDATE annotations SET folder = ? WHERE name = ?", (folder, name))

    def _history(
        self,
        name: str,
        offset: int | None,
        status: AnnotationStatus,
        date: dt.datetime | None,
        email: str | None,
    ) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO history VALUES (?, ?, ?, ?, ?)",
            (name, offset, int(status), None if date is None else date.isoformat(), email),
        )

    @contextlib.contextmanager
    def _as_os_error(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise OSError(f"annotation catalogue {self.path}: {exc}") from exc

    def _begin(self) -> None:
        if not self._open:
            with self._as_os_error():
                self._waiting(lambda: self._db.execute("BEGIN IMMEDIATE"))
            self._open = True

    def _waiting(self, step: Callable[[], object]) -> None:
        """Runs ``step``; while another process holds the write lock, logs and tries again."""
        waited = 0.0
        while True:
            try:
                step()
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
            waited += BUSY_WAIT_S
            logger.warning(
                "annotation catalogue %s is locked by another process for %.0f s; waiting",
                self.path,
                waited,
            )
            time.sleep(0.1)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _damaged(exc: sqlite3.OperationalError) -> bool:
    return "malformed" in str(exc) or "not a database" in str(exc)


def _aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC (naive dates are taken as UTC), so ISO strings compare in order."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC)
