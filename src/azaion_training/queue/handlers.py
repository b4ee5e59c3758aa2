"""Applying annotation messages to the data tree (SPEC 5.3), idempotently.

Routing:

    Created   by a validator role -> data/        else -> data-seed/
    Edited    by a validator role -> data/        else -> data-seed/ (no longer validated)
              (the new label; the image comes with the message or is moved from where it is)
    Validated each name: data-seed/ -> data/
    Deleted   each name: data/ or data-seed/ -> data_deleted/

Validator roles are Validator, Admin and ApiAdmin. An annotation lives in exactly one of
``data/``, ``data-seed/`` and ``data_deleted/``: placing it in one removes it from the others.
Whenever an annotation's files in ``data/`` change or leave, its augmented samples in
``data-processed/`` are dropped, so stale boxes never reach the next dataset.

Messages are routed by a table, (kind, status) -> handler: a status without a row is rejected with
a reason (an unknown bulk status is never taken for a delete).

Everything is checked before the first write: names (`azaion_training.fs.check_name`: UTF-8
bytes, control characters), the image extension (`IMAGE_EXTENSIONS`, any case), the image's
size from its header (a pixel budget) and that it decodes, and the boxes (the label rules
of `azaion_training.labels`; boxes reaching past the edge are clipped). A message that fails is
refused with `MessageError` and changes nothing. The checks that need no file system
(`AnnotationRouter.check`) are pure and thread-safe, so the consumer runs them ahead of the
in-order apply step on a thread pool (``cv2`` releases the GIL while it decodes).

Idempotence: a file whose content is already what the message says is not rewritten, and moves
of files that are already in place do nothing, so a replayed message leaves the tree as it was.
Order for readers: into ``data/`` the label goes before the image, out of it the image leaves
before the label, so a reader that pairs images with labels never sees an image without one.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from azaion_training.config import QueueSettings
from azaion_training.errors import LabelError, MediaError, MessageError, UnsafePathError
from azaion_training.fs import AnnotationDir, DataTree, check_name
from azaion_training.imageheader import check_pixels, image_size
from azaion_training.images import QUEUE_SUFFIXES, SUFFIX_SPELLINGS
from azaion_training.labels import Box, clip_boxes, format_label, parse_label
from azaion_training.queue.durability import WriteBatch
from azaion_training.queue.messages import Annotation, AnnotationStatus, BulkAnnotations, Message
from azaion_training.samples import DEFAULT_VARIANTS, sample_names

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = QUEUE_SUFFIXES
"""Image extensions accepted from the queue (`azaion_training.images.FORMATS`), compared without
case; written in lower case."""

DEFAULT_MAX_MEGAPIXELS = QueueSettings().max_image_megapixels
"""Largest image accepted when no setting says otherwise (the setting's default)."""

MESSAGE_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})
"""File-system errors that belong to one message (a name the file system refuses), not to the
tree: the message is rejected and the consumer goes on."""

_CANDIDATE_EXTENSIONS = SUFFIX_SPELLINGS
"""Every image ending (not only the queue's): an annotation placed by hand, or an original sample
the augmenter wrote as PNG, is found and removed as well."""


@dataclass(frozen=True)
class Checked:
    """A message that passed every check that needs no file system (`AnnotationRouter.check`).

    Attributes:
        message: the decoded message.
        names: the annotation names it concerns, checked.
        extension: Created/Edited: the image extension, lower case with its dot.
        label: Created/Edited: the label file's bytes (boxes checked and clipped).
    """

    message: Message
    names: tuple[str, ...]
    extension: str = ""
    label: bytes = b""


@dataclass(frozen=True)
class Applied:
    """What applying one message did.

    Attributes:
        status: the message kind.
        names: the annotations it named.
        changes: files written, moved or removed (0 for a replay of an applied message).
        missing: named annotations that were not found (nothing to validate, edit or delete).
    """

    status: AnnotationStatus
    names: tuple[str, ...]
    changes: int
    missing: tuple[str, ...] = ()


class AnnotationRouter:
    """Applies messages to a data tree through a `WriteBatch`.

    Messages are routed by one table, (message kind, status) -> handler; a status without a
    row is rejected, never guessed.

    Args:
        tree: the data tree (its folders must exist: `DataTree.create`).
        writes: where writes go; the caller flushes it before persisting its position.
        variants: augmented variants per annotation, to find the samples to drop.
        max_image_megapixels: largest image accepted, read from its header before decoding.
    """

    def __init__(
        self,
        tree: DataTree,
        writes: WriteBatch,
        *,
        variants: int = DEFAULT_VARIANTS,
        max_image_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    ) -> None:
        self.tree = tree
        self._data, self._seed = _Folder(tree.data), _Folder(tree.data_seed)
        self._deleted, self._processed = _Folder(tree.data_deleted), _Folder(tree.data_processed)
        self.writes = writes
        self.variants = variants
        self.max_image_megapixels = max_image_megapixels
        self._routes: dict[tuple[type, AnnotationStatus], Callable[[Checked], Applied]] = {
            (Annotation, AnnotationStatus.CREATED): self._single,
            (Annotation, AnnotationStatus.EDITED): self._single,
            (BulkAnnotations, AnnotationStatus.VALIDATED): self._bulk_route(self._validate),
            (BulkAnnotations, AnnotationStatus.DELETED): self._bulk_route(self._delete),
        }

    def check(self, message: Message, *, decode: bool = True) -> Checked:
        """Every check of ``message`` that needs no file system: its route, names, image
        extension, boxes and image (its header; without ``decode``, the decode is left to
        `check_decodes`). Pure and thread-safe.

        Raises:
            MessageError: the message is unsafe or invalid, or its status has no route.
        """
        self._route(message)
        if isinstance(message, BulkAnnotations):
            return Checked(message, tuple(_safe_name(name) for name in message.names))
        name = _safe_name(message.name)
        extension = image_extension(message.image_extension)
        label = format_label(label_boxes(message)).encode()
        if message.image is not None:
            check_image(
                message.image,
                what=f"image of {name}",
                max_megapixels=self.max_image_megapixels,
                decode=decode,
            )
        return Checked(message, (name,), extension, label)

    @staticmethod
    def check_decodes(checked: Checked) -> Checked:
        """``checked`` once its image, if any, decodes: the part of `check` that ``cv2`` runs
        without the GIL, for a thread pool.

        Raises:
            MessageError: the image does not decode.
        """
        message = checked.message
        if isinstance(message, Annotation) and message.image is not None:
            check_decodes(message.image, what=f"image of {checked.names[0]}")
        return checked

    def apply(self, message: Message | Checked) -> Applied:
        """Checks (unless it comes `check`-ed) and applies one message, through the route of
        its kind and status.

        Raises:
            MessageError: the message is unsafe or invalid, its status has no route, or the file
                system refuses one of its names; nothing was written.
            OSError: the data tree itself cannot be written (disk full, I/O error, permissions).
        """
        checked = message if isinstance(message, Checked) else self.check(message)
        route = self._route(checked.message)
        for name in checked.names:  # the one check of the names on the way to the files
            _safe_name(name)
        try:
            return route(checked)
        except OSError as exc:
            if exc.errno not in MESSAGE_ERRNOS:
                raise
            raise MessageError(f"the file system refuses a name of the message: {exc}") from exc

    def _route(self, message: Message) -> Callable[[Checked], Applied]:
        route = self._routes.get((type(message), message.status))
        if route is None:
            raise MessageError(
                f"no route for {type(message).__name__} with status {message.status.wire_name} "
                f"(routes: {', '.join(f'{k.__name__} {s.wire_name}' for k, s in self._routes)})"
            )
        return route

    def _bulk_route(self, apply_one: Callable[[str], int]) -> Callable[[Checked], Applied]:
        def route(checked: Checked) -> Applied:
            return self._bulk(checked.message.status, checked.names, apply_one)

        return route

    def _single(self, checked: Checked) -> Applied:
        """Created or Edited: the annotation placed where its role puts it."""
        message, (name,) = checked.message, checked.names
        assert isinstance(message, Annotation)
        target = self._data if message.role.validates else self._seed
        if message.image is not None:
            changes = self._place(
                name, target, image=message.image, extension=checked.extension, label=checked.label
            )
            return Applied(message.status, (name,), changes)
        return self._relabel(message.status, name, target, label=checked.label)

    def _relabel(
        self, status: AnnotationStatus, name: str, target: _Folder, *, label: bytes
    ) -> Applied:
        """An Edited message without an image: the new label, and the image moved to it."""
        existing = _find_image(target, name) or _find_image(self._other_live(target), name)
        if existing is None:
            logger.warning("Edited %s: no image in %s or %s; skipped", name, *self._live_names())
            return Applied(status, (name,), 0, missing=(name,))
        changes = self._place(name, target, image=existing, extension=existing.suffix, label=label)
        return Applied(status, (name,), changes)

    def _place(
        self,
        name: str,
        target: _Folder,
        *,
        image: bytes | Path,
        extension: str,
        label: bytes,
    ) -> int:
        """Puts annotation ``name`` into ``target`` (label first, then image) and removes it
        from the other annotation folders; returns the number of file changes."""
        label_path = target.label_path(name)
        had_data = target is self._data and (
            os.path.exists(label_path) or _find_image(target, name) is not None
        )
        written = self._write_if_changed(label_path, label)
        image_path = target.image_path(name, extension)
        if isinstance(image, Path):
            if image != image_path:
                self.writes.move(image, image_path)
                written += 1
        else:
            written += self._write_if_changed(image_path, image)
        written += self._remove_images(target, name, keep=image_path)
        left = self._remove(self._other_live(target), name)
        changes = written + left + self._remove(self._deleted, name)
        if (had_data and written) or (target is not self._data and left):
            changes += self.drop_samples(name)  # samples exist only for what was in data/
        return changes

    def _validate(self, name: str) -> int:
        moved = self._move(name, source=self._seed, target=self._data)
        return moved + self.drop_samples(name) if moved else 0

    def _delete(self, name: str) -> int:
        deleted = self._deleted
        moved = self._move(name, source=self._seed, target=deleted)
        left_data = self._move(name, source=self._data, target=deleted)  # data/ wins
        return moved + left_data + (self.drop_samples(name) if left_data else 0)

    def _move(self, name: str, *, source: _Folder, target: _Folder) -> int:
        """Moves annotation ``name`` from ``source`` to ``target``; returns the files moved."""
        label, image = source.label_path(name), _find_image(source, name)
        moves = [(label, target.label_path(name))] if os.path.exists(label) else []
        image_target = None if image is None else target.image_path(name, image.suffix)
        if image is not None and image_target is not None:
            moves.append((image, image_target))
        if target is not self._data:
            moves.reverse()  # out of data/: the image leaves before its label
        for origin, destination in moves:
            self.writes.move(origin, destination)
        if image_target is None:
            return len(moves)
        return len(moves) + self._remove_images(target, name, keep=image_target)

    def _bulk(
        self, status: AnnotationStatus, names: tuple[str, ...], apply_one: Callable[[str], int]
    ) -> Applied:
        changes, missing = 0, []
        for name in names:
            done = apply_one(name)
            changes += done
            if done == 0 and not self._anywhere(name):
                missing.append(name)
        if missing:
            logger.info("%s: %d of %d names not found", status.wire_name, len(missing), len(names))
        return Applied(status, names, changes, missing=tuple(missing))

    def drop_samples(self, name: str) -> int:
        """Removes the augmented samples of annotation ``name``; returns how many files went."""
        images, labels = self._processed.images, self._processed.labels
        removed = 0
        for sample in sample_names(name, variants=self.variants):
            for extension in _CANDIDATE_EXTENSIONS:
                removed += self.writes.remove(f"{images}/{sample}{extension}")
            removed += self.writes.remove(f"{labels}/{sample}.txt")
        if removed:
            logger.debug("dropped %d stale sample files of %s", removed, name)
        return removed

    def _remove(self, folder: _Folder, name: str) -> int:
        """Removes annotation ``name`` from ``folder``: images first, then the label."""
        changes = self._remove_images(folder, name, keep=None)
        changes += self.writes.remove(folder.label_path(name))
        return changes

    def _remove_images(self, folder: _Folder, name: str, *, keep: Path | None) -> int:
        images, kept = folder.images, str(keep)
        removed = 0
        for extension in _CANDIDATE_EXTENSIONS:
            path = f"{images}/{name}{extension}"
            if path != kept:
                removed += self.writes.remove(path)
        return removed

    def _write_if_changed(self, path: Path, data: bytes) -> int:
        if _has_content(path, data):
            return 0
        self.writes.write_bytes(path, data)
        return 1

    def _other_live(self, folder: _Folder) -> _Folder:
        return self._seed if folder is self._data else self._data

    def _anywhere(self, name: str) -> bool:
        folders = (self._data, self._seed, self._deleted)
        return any(_find_image(f, name) or os.path.exists(f.label_path(name)) for f in folders)

    def _live_names(self) -> tuple[str, str]:
        return self.tree.data_name, self.tree.data_seed_name


def image_extension(extension: str) -> str:
    """The lower-case image extension with its dot, if it is allowed.

    Raises:
        MessageError: the extension is not one of `IMAGE_EXTENSIONS`.
    """
    normalised = extension.strip().lower()
    if normalised and not normalised.startswith("."):
        normalised = f".{normalised}"
    if normalised not in IMAGE_EXTENSIONS:
        shown = extension[:20] + ("..." if len(extension) > 20 else "")
        raise MessageError(f"image extension {shown!r} is not one of {', '.join(IMAGE_EXTENSIONS)}")
    return normalised


def check_image(
    data: bytes,
    *,
    what: str = "image",
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    decode: bool = True,
) -> None:
    """Checks that ``data`` is an image of at most ``max_megapixels`` that decodes (OpenCV;
    without ``decode``, only its header and size: `check_decodes` does the rest).

    The size is read from the header first, so an image bomb is refused before any decode.
    JPEGs are decoded at 1/8 scale, which still reads every compressed block but is several
    times faster than a full decode.

    Raises:
        MessageError: too large, or the bytes do not decode.
    """
    try:
        size = image_size(data)
    except MediaError as exc:
        raise MessageError(f"{what} does not decode ({len(data)} bytes): {exc}") from exc
    try:
        check_pixels(size, max_megapixels=max_megapixels)
    except MediaError as exc:
        raise MessageError(f"{what}: {exc}") from exc
    if decode:
        check_decodes(data, what=what)


def check_decodes(data: bytes, *, what: str = "image") -> None:
    """Checks that ``data`` decodes (OpenCV; JPEGs at 1/8 scale). Call `check_image` first:
    this reads no header and sets no pixel budget.

    Raises:
        MessageError: the bytes do not decode.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    except cv2.error as exc:
        raise MessageError(f"{what} does not decode ({len(data)} bytes)") from exc
    if image is None or image.size == 0:
        raise MessageError(f"{what} does not decode ({len(data)} bytes)")


def label_boxes(message: Annotation) -> list[Box]:
    """The boxes of ``message`` checked by the label rules and clipped to the image.

    Raises:
        MessageError: a box breaks the label rules (class outside 0..79, a value outside [0, 1]).
    """
    boxes = message.boxes
    try:
        checked = parse_label(format_label(boxes), source=f"detections of {message.name[:60]}")
    except LabelError as exc:
        raise MessageError(str(exc)) from exc
    return clip_boxes(checked, min_area=0.0)


def _safe_name(name: str) -> str:
    try:
        return check_name(name, what="annotation name")
    except UnsafePathError as exc:
        raise MessageError(str(exc)) from exc


class _Folder:
    """An annotation folder with its two paths joined once, for the many probes of each
    message (`AnnotationRouter.apply` checks the names before they reach these)."""

    __slots__ = ("images", "labels")

    def __init__(self, folder: AnnotationDir) -> None:
        self.images, self.labels = str(folder.images), str(folder.labels)

    def label_path(self, name: str) -> Path:
        return Path(f"{self.labels}/{name}.txt")

    def image_path(self, name: str, extension: str) -> Path:
        return Path(f"{self.images}/{name}{extension}")


def _find_image(folder: _Folder, name: str) -> Path | None:
    """The image of ``name`` in ``folder`` with an allowed extension (any case), or ``None``.

    Tries the few possible names instead of listing the folder, which may hold millions.
    """
    images = folder.images
    for extension in _CANDIDATE_EXTENSIONS:
        path = f"{images}/{name}{extension}"
        if os.path.isfile(path):
            return Path(path)
    return None


def _has_content(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except FileNotFoundError:
        return False
