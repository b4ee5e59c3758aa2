"""Link-and-verify: a sample's image and label taken into a dataset as a snapshot.

`take_pair` hard-links the image and the label (copied only where a link is impossible) from
their folders into the target folders, then checks the links there: they are a snapshot that
later writes cannot change. The pair is kept only if neither source file was replaced while
linking (same inode, device, size and time before and after) and the label is not older than the
image (writers write the image first): else it is linked again, `LINK_ATTEMPTS` times at most,
and then it is *changing*. A pair whose label is not newer than its image may be half-way through
a rewrite: it is *recent* until its image is older than `SETTLE_S`, and the caller looks at it
again later. A file that vanished is gone, not corrupt. Only the label written is read; an
invalid one is reported with its reason (the caller quarantines it).

The folders are open descriptors (`OpenFolder`), so each of a million calls resolves one name.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from azaion_training.errors import LabelError
from azaion_training.fs import link_or_copy
from azaion_training.labels import read_label

LINK_ATTEMPTS = 3
"""How often a pair that changed while it was linked is linked again before it is skipped."""

SETTLE_S = 1.0
"""A pair whose label is not newer than its image is taken once its image is this old."""


class OpenFolder(NamedTuple):
    """An open folder: its path (for messages) and a descriptor, so that the calls for each of a
    million files resolve one name, not the whole path."""

    path: str
    fd: int

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path) -> Iterator[OpenFolder]:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield cls(str(path), fd)
        finally:
            os.close(fd)

    def stat(self, name: str) -> os.stat_result:
        """The entry itself (``lstat``): a symbolic link is never followed."""
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def exists(self, name: str) -> bool:
        try:
            self.stat(name)
        except OSError:  # missing, or a name the file system refuses (as os.path.exists)
            return False
        return True


Pair = tuple[OpenFolder, OpenFolder]
"""The images folder and the labels folder."""


class Outcome(Enum):
    """What became of one pair."""

    RECENT = "recent"
    INCOMPLETE = "incomplete"
    PLACED = "placed"
    VANISHED = "vanished"
    CHANGING = "changing"
    INVALID = "invalid"


@dataclass(frozen=True)
class Taken:
    """The outcome of `take_pair`: ``links`` files hard-linked (``PLACED``), ``reason`` why the
    label is invalid (``INVALID``)."""

    outcome: Outcome
    links: int = 0
    reason: str = ""


def take_pair(origin: Pair, targets: Pair, names: tuple[str, str], *, link: bool) -> Taken:
    """Links the image and label ``names`` from ``origin`` into ``targets`` and checks the
    snapshot (see the module docstring); nothing is left in ``targets`` unless ``PLACED``.

    Args:
        link: hard-link where possible; ``False`` always copies.
    """
    for _ in range(LINK_ATTEMPTS):
        try:
            image_before = origin[0].stat(names[0])
        except FileNotFoundError:
            return Taken(Outcome.VANISHED)
        try:
            before = (image_before, origin[1].stat(names[1]))
        except FileNotFoundError:
            return Taken(Outcome.INCOMPLETE)  # an image whose label is not (or no longer) there
        for name, found in zip(names, before, strict=True):
            if not stat.S_ISREG(found.st_mode):  # never followed, never hard-linked
                kind = "a symbolic link" if stat.S_ISLNK(found.st_mode) else "not a regular file"
                return Taken(Outcome.INVALID, reason=f"{name} is {kind} (never followed)")
        try:
            links = sum(
                link_or_copy(name, name, src_dir_fd=source.fd, dst_dir_fd=target.fd, link=link)
                for source, target, name in zip(origin, targets, names, strict=True)
            )
            # A link names the inode the source had when linked: if the source still has the
            # inode it had before, the link (or copy) holds that very file.
            settled = unchanged(origin, names, before)
        except FileNotFoundError:
            _unlink(targets, names)
            return Taken(Outcome.VANISHED)
        if settled and not label_after_image(*before):
            _unlink(targets, names)
            return Taken(Outcome.RECENT)
        if settled:
            try:
                read_label(names[1], dir_fd=targets[1].fd)
            except LabelError as exc:
                _unlink(targets, names)
                if not unchanged(origin, names, before):
                    continue  # replaced since: look at the new pair
                return Taken(Outcome.INVALID, reason=f"invalid label: {exc}")
            return Taken(Outcome.PLACED, links=links)
        _unlink(targets, names)
    return Taken(Outcome.CHANGING)


def unchanged(folders: Pair, names: tuple[str, str], before: tuple[os.stat_result, ...]) -> bool:
    """True when both files are still those ``before`` described (not replaced or removed)."""
    for folder, name, then in zip(folders, names, before, strict=True):
        try:
            now = folder.stat(name)
        except FileNotFoundError:
            return False
        same = (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns)
        if same != (then.st_ino, then.st_dev, then.st_size, then.st_mtime_ns):
            return False
    return True


def label_after_image(image: os.stat_result, label: os.stat_result) -> bool:
    """True when the label was written after the image, as writers do for one pair.

    File times are coarse (a few ms), so equal times say nothing; such a pair counts once its
    image is older than `SETTLE_S` (a writer finishes a pair far quicker than that).
    """
    if label.st_mtime_ns > image.st_mtime_ns:
        return True
    settled = time.time_ns() - image.st_mtime_ns > SETTLE_S * 1e9
    return label.st_mtime_ns == image.st_mtime_ns and settled


def _unlink(folders: Pair, names: tuple[str, str]) -> None:
    for folder, name in zip(folders, names, strict=True):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder.fd)
