"""The data tree on disk, and the only ways the toolkit writes into it.

Every folder of SPEC section 3 is derived from one root by `DataTree`. Writes are atomic: the
bytes go to a temporary file in the same folder (its name starts with a dot, so readers that skip
dot-files never see it), are fsynced, and are renamed into place; the folder is then fsynced so the
rename survives a power cut. Moves between folders are renames. Names from outside (queue
messages, CLI arguments) pass `check_name` before anything is written, and every path that the
queue and the augmenter write is one of `DataTree`'s folders joined with such a name, so nothing
they write lands outside the root; entries read from the tree are never followed (`not_regular`;
`atomic_move` never copies through a link), so nothing outside it is read through the tree.

    {root}/data/{images,labels}/            validated annotations
    {root}/data-seed/{images,labels}/       unvalidated annotations
    {root}/data_deleted/{images,labels}/    soft-deleted annotations
    {root}/data-processed/{images,labels}/  augmented samples
    {root}/data-corrupted/{images,labels}/  rejected images/labels with a reason
    {root}/datasets/azaion-{date}/          formed datasets
    {root}/models/                          training runs and the current model
    {root}/queue-rejected/                  rejected queue messages
    {root}/logs/                            rotating log files
    {root}/model-store/                     the embedded local model store (no API configured)
    {root}/model-cache/                     big parts of models downloaded from the CDN
    {root}/offset.yaml                      the queue consumer's position
    {root}/.azaion-{role}.lock              one writer per role (`locks`)
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import functools
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from azaion_training.errors import UnsafePathError
from azaion_training.images import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from azaion_training.config import Settings

MAX_NAME_LENGTH = 200
"""Longest file stem accepted from outside, in bytes of UTF-8 (file systems count bytes: 255
is the usual limit, and a stem needs room for its extension and a temporary-file suffix)."""

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories refused in names: controls, format characters (bidirectional overrides,
zero-width characters), lone surrogates and line or paragraph separators."""

TEMPORARY_SUFFIX = ".tmp"


def check_name(name: str, *, what: str = "name") -> str:
    """Returns ``name`` if it is a plain, safe file name; raises otherwise.

    A safe name is non-empty, at most `MAX_NAME_LENGTH` bytes in UTF-8, has no path separator,
    no ``..``, no leading dot and no control, format or separator characters.

    Raises:
        UnsafePathError: saying which rule the name breaks.
    """
    if not isinstance(name, str) or not name:
        raise UnsafePathError(f"{what} is empty or not a string")
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in name):
        shown = name[:60].encode("ascii", "backslashreplace").decode()
        raise UnsafePathError(f"{what} {shown!r} contains control or invisible characters")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_LENGTH:
        raise UnsafePathError(f"{what} is {size} bytes long in UTF-8 (at most {MAX_NAME_LENGTH})")
    if "/" in name or "\\" in name:
        raise UnsafePathError(f"{what} {name[:60]!r} contains a path separator")
    if ".." in name:
        raise UnsafePathError(f"{what} {name[:60]!r} contains '..'")
    if name.startswith("."):
        raise UnsafePathError(f"{what} {name[:60]!r} starts with a dot")
    return name


def is_temporary(path: Path | os.DirEntry[str]) -> bool:
    """True for the dot-named files that atomic writes use before their rename (readers skip
    every dot-file)."""
    return path.name.startswith(".")


def fsync_dir(path: Path) -> None:
    """Flushes a folder's entries (renames, new files) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, durable: bool = True, mode: int = 0o666, exclusive: bool = False
) -> Iterator[IO[bytes]]:
    """Opens a temporary file beside ``path`` for binary writing; renames it into place on success.

    With ``exclusive`` it is linked into place instead, and `FileExistsError` is raised if
    ``path`` exists: a name claimed atomically, never replaced.

    On any exception the temporary file is removed and ``path`` is untouched. With ``durable``
    the data and the folder entry are fsynced before returning. The file is created with
    ``mode`` (narrowed by the umask) from the start: ``0o600`` for a file no one else may read,
    at any instant.

    Example:
        >>> with atomic_writer(Path(tmp) / "model.bin") as f:  # doctest: +SKIP
        ...     f.write(b"...")
    """
    with (
        _replacing(Path(path), mode=mode, durable=durable, exclusive=exclusive) as descriptor,
        os.fdopen(descriptor, "wb", closefd=False) as handle,  # flushed when the block ends
    ):
        yield handle


def atomic_write_bytes(
    path: Path, data: bytes, *, durable: bool = True, exclusive: bool = False
) -> None:
    """Writes ``data`` to ``path`` atomically (as `atomic_writer`, without a file object: the
    queue consumer writes two files per message)."""
    with _replacing(Path(path), mode=0o666, durable=durable, exclusive=exclusive) as descriptor:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]


@contextlib.contextmanager
def _replacing(path: Path, *, mode: int, durable: bool, exclusive: bool = False) -> Iterator[int]:
    """The descriptor of a new temporary file beside ``path`` (created with ``mode``; its
    folders too, on first use), renamed over ``path`` when the block succeeds (``exclusive``:
    linked, failing if ``path`` exists) and removed when it fails. With ``durable`` the file and
    the folder entry are fsynced."""
    temporary = f"{path.parent}/.{path.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        try:
            descriptor = os.open(temporary, flags, mode)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, flags, mode)
        try:
            yield descriptor
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if exclusive:
            os.link(temporary, path)
            os.unlink(temporary)
        else:
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(
    path: Path, text: str, *, durable: bool = True, exclusive: bool = False
) -> None:
    """Writes UTF-8 ``text`` to ``path`` atomically (``exclusive``: see `atomic_writer`)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable, exclusive=exclusive)


def atomic_move(source: Path, target: Path, *, durable: bool = True) -> None:
    """Moves a file by rename (replacing ``target``); copies atomically across filesystems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # never a link
        with open(descriptor, "rb") as src, atomic_writer(target, durable=durable) as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        source.unlink()
    if durable:
        fsync_dir(target.parent)
        if source.parent != target.parent:
            fsync_dir(source.parent)


NO_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP})
"""Why a hard link may be impossible (another file system, no permission, too many links):
the errors after which a copy is made instead."""


def link_or_copy(
    source: Path | str,
    target: Path | str,
    *,
    src_dir_fd: int | None = None,
    dst_dir_fd: int | None = None,
    link: bool = True,
) -> bool:
    """Hard-links ``source`` at ``target``, or copies it where a link is impossible.

    Args:
        source / target: paths, or names in the open folders ``src_dir_fd`` / ``dst_dir_fd``
            (then each call resolves one name, not a whole path; the target's folder must
            exist).
        link: ``False`` always copies (for comparison).

    Returns:
        True when a hard link was made, False when the file was copied.
    """
    if dst_dir_fd is None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            return True
        except OSError as exc:
            if exc.errno not in NO_LINK_ERRNOS:
                raise
    if src_dir_fd is None and dst_dir_fd is None:
        shutil.copyfile(source, target)
        return False
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    with (
        open(os.open(source, os.O_RDONLY | os.O_CLOEXEC, dir_fd=src_dir_fd), "rb") as reader,
        open(os.open(target, flags, 0o666, dir_fd=dst_dir_fd), "wb") as writer,
    ):
        shutil.copyfileobj(reader, writer)
    return False


def not_regular(entry: os.DirEntry[str]) -> str | None:
    """Why a folder entry is not a plain file, without following it: ``None`` for a regular
    file; a symbolic link or a special file (FIFO, socket, device) is never opened, followed or
    linked, so nothing outside the root is read through the tree."""
    try:
        if entry.is_symlink():
            return f"{entry.name} is a symbolic link (never followed)"
        if entry.is_file(follow_symlinks=False):
            return None
    except FileNotFoundError:
        return None  # gone: the caller's next look finds nothing
    return f"{entry.name} is not a regular file (a FIFO, socket or device; never opened)"


def is_image(path: Path) -> bool:
    """True for a regular, non-temporary file with an image ending (any case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_temporary(path) and path.is_file()


def list_images(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and below it with ``recursive``), sorted by path.

    Temporary (dot-named) files are skipped; a missing folder has none.
    """
    if not folder.is_dir():
        return []
    paths = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in paths if is_image(path))


_DATED_NAME = re.compile(r"azaion-(\d{4}-\d{2}-\d{2})(?:\.(\d+))?")


def dated_order(name: str) -> tuple[dt.date, int] | None:
    """The ``(date, N)`` of an ``azaion-{YYYY-MM-DD}[.N]`` name (N is 1 without a suffix).

    Example:
        >>> dated_order("azaion-2026-12-02.10")
        (datetime.date(2026, 12, 2), 10)
        >>> dated_order("azaion-2026-12-02"), dated_order("azaion.onnx")
        ((datetime.date(2026, 12, 2), 1), None)
    """
    match = _DATED_NAME.fullmatch(name)
    if match is None:
        return None
    try:
        date = dt.date.fromisoformat(match[1])
    except ValueError:
        return None
    return date, int(match[2] or 1)


def newest_dated(folder: Path) -> Path | None:
    """The ``azaion-{date}[.N]`` folder in ``folder`` with the greatest ``(date, N)``, or ``None``.

    ``free_dir`` numbers a day's second folder ``.2``, so ``.10`` is newer than ``.9``.
    """
    if not folder.is_dir():
        return None
    dated = [
        (order, path)
        for path in folder.iterdir()
        if (order := dated_order(path.name)) is not None and path.is_dir()
    ]
    return max(dated)[1] if dated else None


def free_dir(base: Path) -> Path:
    """``base`` if it does not exist, else the first free ``base.2``, ``base.3``, ..."""
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}.{number}")
    return candidate


@dataclass(frozen=True)
class AnnotationDir:
    """A folder of annotations: ``images/{name}{ext}`` beside ``labels/{name}.txt``."""

    path: Path

    @property
    def images(self) -> Path:
        return self.path / "images"

    @property
    def labels(self) -> Path:
        return self.path / "labels"

    def image_path(self, name: str, extension: str) -> Path:
        """The image file of annotation ``name``; ``extension`` includes the dot."""
        return self.images / f"{check_name(name)}{extension}"

    def label_path(self, name: str) -> Path:
        """The label file of annotation ``name``."""
        return self.labels / f"{check_name(name)}.txt"

    def find_image(self, name: str) -> Path | None:
        """The image of annotation ``name`` whatever its extension, or ``None``."""
        check_name(name)
        for candidate in self.images.glob(f"{glob_escape(name)}.*"):
            if candidate.stem == name and not is_temporary(candidate):
                return candidate
        return None

    def create(self) -> None:
        self.images.mkdir(parents=True, exist_ok=True)
        self.labels.mkdir(parents=True, exist_ok=True)


def glob_escape(name: str) -> str:
    """Escapes glob metacharacters in a plain name."""
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in name)


@dataclass(frozen=True)
class DataTree:
    """Every folder of the data tree, derived from one root.

    Build it from the settings with `DataTree.from_settings` and pass it down; nothing else in
    the toolkit joins folder names onto the root.
    """

    root: Path
    data_name: str = "data"
    data_seed_name: str = "data-seed"
    data_deleted_name: str = "data_deleted"

    def __post_init__(self) -> None:
        # Absolute from the start: tools we hand paths to (Ultralytics) resolve relative ones
        # against folders of their own, which would put files outside the root.
        object.__setattr__(self, "root", Path(self.root).absolute())

    @classmethod
    def from_settings(cls, settings: Settings) -> DataTree:
        """The tree of ``settings.root_dir`` (which need not exist yet).

        Raises:
            UnsafePathError: the root is something other than a folder, or a folder name of the
                settings is not a plain name.
        """
        root = Path(settings.root_dir)
        if root.exists() and not root.is_dir():
            raise UnsafePathError(
                f"the root {root} is not a folder (check AZAION_ROOT_DIR / --root)"
            )
        return cls(
            root=root,
            data_name=check_name(settings.data_dir, what="data_dir"),
            data_seed_name=check_name(settings.data_seed_dir, what="data_seed_dir"),
            data_deleted_name=check_name(settings.data_deleted_dir, what="data_deleted_dir"),
        )

    @property
    def data(self) -> AnnotationDir:
        return AnnotationDir(self.root / self.data_name)

    @property
    def data_seed(self) -> AnnotationDir:
        return AnnotationDir(self.root / self.data_seed_name)

    @property
    def data_deleted(self) -> AnnotationDir:
        return AnnotationDir(self.root / self.data_deleted_name)

    @property
    def data_processed(self) -> AnnotationDir:
        return AnnotationDir(self.root / "data-processed")

    @property
    def data_corrupted(self) -> AnnotationDir:
        return AnnotationDir(self.root / "data-corrupted")

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def current_model_pt(self) -> Path:
        return self.models / "azaion.pt"

    @property
    def current_model_onnx(self) -> Path:
        return self.models / "azaion.onnx"

    @property
    def queue_rejected(self) -> Path:
        return self.root / "queue-rejected"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def model_store(self) -> Path:
        """The embedded local model store (used when no API is configured)."""
        return self.root / "model-store"

    @property
    def model_cache(self) -> Path:
        """Downloaded big parts of models from the CDN."""
        return self.root / "model-cache"

    def lock_file(self, role: str) -> Path:
        """``.azaion-{role}.lock``: the lock of the one writer of ``role`` on this root."""
        return self.root / f".azaion-{role}.lock"

    @property
    def offset_file(self) -> Path:
        return self.root / "offset.yaml"

    def annotation_dirs(self) -> tuple[AnnotationDir, ...]:
        return (
            self.data,
            self.data_seed,
            self.data_deleted,
            self.data_processed,
            self.data_corrupted,
        )

    def dataset_dir(self, date: dt.date) -> Path:
        """``datasets/azaion-{YYYY-MM-DD}``."""
        return self.datasets / f"azaion-{date.isoformat()}"

    def run_dir(self, date: dt.date) -> Path:
        """``models/azaion-{YYYY-MM-DD}``: one training run."""
        return self.models / f"azaion-{date.isoformat()}"

    def newest_dataset(self) -> Path | None:
        """The newest formed dataset, ``datasets/azaion-{date}[.N]`` by (date, N), or ``None``."""
        return newest_dated(self.datasets)

    def latest_run(self) -> Path | None:
        """The newest training run, ``models/azaion-{date}[.N]`` by ``(date, N)``, or ``None``."""
        return newest_dated(self.models)

    def create(self) -> DataTree:
        """Creates every folder of the tree (idempotent) and returns ``self``."""
        for folder in self.annotation_dirs():
            folder.create()
        for path in (self.datasets, self.models, self.queue_rejected, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        return self


def sync_filesystems(folders: Iterable[Path]) -> bool:
    """``syncfs(2)`` once per filesystem holding ``folders``: one journal commit for all that
    was written there; False where ``syncfs`` is not available (not Linux).

    Raises:
        OSError: a ``syncfs`` failed. Never answer that by syncing again: Linux drops the dirty
            pages after a failed flush, so a second one "succeeds" with the data lost.
    """
    syncfs = _syncfs()
    if syncfs is None:
        return False
    by_device: dict[int, Path] = {}
    for folder in folders:
        try:
            by_device.setdefault(folder.stat().st_dev, folder)
        except FileNotFoundError:
            continue
    for folder in by_device.values():
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if syncfs(fd) != 0:
                error = ctypes.get_errno()
                if error == errno.ENOSYS:
                    return False
                raise OSError(error, f"syncfs of {folder}: {os.strerror(error)}")
        finally:
            os.close(fd)
    return True


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def sync_folders(folders: Iterable[Path]) -> None:
    """Makes everything written under ``folders`` durable: `sync_filesystems`, else (not Linux)
    ``os.sync()``.

    Raises:
        OSError: a ``syncfs`` failed (see `sync_filesystems`).
    """
    if not sync_filesystems(folders):
        os.sync()
