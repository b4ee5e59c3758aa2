"""Change detection: which annotations need samples, and which samples have lost their source.

A *source* is an annotation in ``data/``: ``images/{name}{ext}`` together with
``labels/{name}.txt``. Its samples in ``data-processed/`` are the original ``images/{name}{ext}``
(the source image, byte for byte) and the variants ``images/{name}_{i}.jpg``, each with
``labels/{sample}.txt``.

Rules of a pass (see `plan_pass`):

- An image without a label, or a label without an image, is *incomplete*: the queue consumer may
  be half-way through writing or moving it. It is left alone (neither augmented nor rejected) and
  picked up by a later pass once complete; any samples it had are removed.
- A name that cannot have samples (two images with the same name, a name that is also a variant
  name of another annotation such as ``a_1`` beside ``a``, a name too long for its variants) is
  *skipped* with a reason, every pass, until someone renames it.
- A source is *to do* when it is new, its image or label changed (name, size or modification
  time), the recipe changed, or any of its samples is missing; otherwise it is *unchanged*.
- A file in ``data-processed/`` that is no sample of a current source is *stale* and removed,
  as are temporary files left by an interrupted write.

Sharding (`Shard`, ``azaion-augment --shard I/N``): several augmenters share one tree, each
owning the annotations whose *family* (the name without its ``_N`` suffixes,
`azaion_training.samples.family`) hashes into its shard. Every shard scans the whole tree, so the
sample files of every source are claimed and a file is stale for all shards alike; each shard
makes only its own sources and removes only the stale files (and leftover temporaries) of its own
families. Variants are seeded by name, so the shards together write what one augmenter writes.

Only folder listings and ``stat`` are used here; no image or label is read. The queue consumer
moves files while a pass scans: a file that vanishes between the listing and its ``stat`` is
simply not there (its annotation counts as incomplete this pass).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from azaion_training.augment.state import Stamp
from azaion_training.errors import ConfigError, UnsafePathError
from azaion_training.fs import (
    TEMPORARY_SUFFIX,
    AnnotationDir,
    check_name,
    is_temporary,
    not_regular,
)
from azaion_training.images import sample_suffix
from azaion_training.samples import family, sample_names, source_of, variant_name

VARIANT_EXTENSION = ".jpg"
"""Variants are written as JPEG whatever the source's format."""
LABEL_EXTENSION = ".txt"


_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[0-9a-f]+" + re.escape(TEMPORARY_SUFFIX) + "$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): the annotations whose family hashes into it.

    Example:
        >>> Shard.parse("2/3"), Shard().owns("anything", variants=7)
        (Shard(index=2, count=3), True)
    """

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: need 1 <= I <= N in I/N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` as a shard.

        Raises:
            ConfigError: not two integers with 1 <= I <= N.
        """
        match = _SHARD.match(text)
        if match is None:
            raise ConfigError(f"shard {text!r}: expected I/N, e.g. 1/3")
        return cls(int(match[1]), int(match[2]))

    @property
    def whole(self) -> bool:
        """True for 1/1: the whole tree."""
        return self.count == 1

    @property
    def label(self) -> str:
        """``"I-of-N"``, for the shard's own lock and state file names."""
        return f"{self.index}-of-{self.count}"

    def owns(self, name: str, *, variants: int) -> bool:
        """True when annotation (or sample) ``name`` belongs to this shard: a stable hash of its
        family (SHA-256, the same on every machine and Python)."""
        if self.whole:
            return True
        digest = hashlib.sha256(family(name, variants=variants).encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def owns_file(self, file_name: str, *, variants: int) -> bool:
        """True for a sample file (or an atomic write's temporary) of this shard's families."""
        temporary = _TEMPORARY.match(file_name)
        target = temporary["target"] if temporary else file_name
        return self.owns(os.path.splitext(target)[0], variants=variants)


@dataclass(frozen=True)
class Source:
    """One complete annotation in the source folder, as found by `scan_sources`."""

    name: str
    folder: AnnotationDir
    stamp: Stamp

    @property
    def image(self) -> Path:
        return self.folder.images / self.stamp.image

    @property
    def label(self) -> Path:
        return self.folder.labels / f"{self.name}{LABEL_EXTENSION}"

    @property
    def extension(self) -> str:
        """The image's extension, with its dot (the original sample keeps it)."""
        return os.path.splitext(self.stamp.image)[1]


@dataclass
class Plan:
    """What one pass has to do."""

    sources: dict[str, Source] = field(default_factory=dict)
    """Every complete, usable source, by name (to do and unchanged)."""
    todo: list[Source] = field(default_factory=list)
    unchanged: int = 0
    stale: list[Path] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Source name -> why it cannot have samples."""
    unsafe: dict[str, tuple[str, Path | None, Path | None]] = field(default_factory=dict)
    """Source name -> why its files must leave the tree (a symbolic link or a special file: never
    followed or read), and its image and label paths (``None`` where there is none)."""


def output_image_names(name: str, extension: str, *, variants: int) -> list[str]:
    """File names of the sample images of annotation ``name``, the original first (with the
    source's ``extension``, or ``.png`` for a TIFF: `azaion_training.images.sample_suffix`)."""
    return [f"{name}{sample_suffix(extension)}"] + [
        f"{variant}{VARIANT_EXTENSION}" for variant in sample_names(name, variants=variants)[1:]
    ]


def output_label_names(name: str, *, variants: int) -> list[str]:
    """File names of the sample labels of annotation ``name``, the original first."""
    return [f"{sample}{LABEL_EXTENSION}" for sample in sample_names(name, variants=variants)]


def scan_sources(folder: AnnotationDir, *, recipe: str, variants: int, plan: Plan) -> None:
    """Fills ``plan.sources``, ``plan.incomplete`` and ``plan.skipped`` from ``folder``."""
    images: dict[str, list[os.DirEntry[str]]] = {}
    for entry in _files(folder.images):
        images.setdefault(os.path.splitext(entry.name)[0], []).append(entry)
    labels = {
        entry.name[: -len(LABEL_EXTENSION)]: entry
        for entry in _files(folder.labels)
        if entry.name.endswith(LABEL_EXTENSION)
    }
    _set_unsafe_aside(images, labels, plan)
    plan.incomplete = sorted(images.keys() ^ labels.keys())
    for name in sorted(images.keys() & labels.keys()):
        reason = _unusable(name, images[name], variants=variants)
        if reason:
            plan.skipped[name] = reason
            continue
        stamp = _stamp(images[name][0], labels[name], recipe=recipe)
        if stamp is None:
            plan.incomplete.append(name)
            continue
        plan.sources[name] = Source(name=name, folder=folder, stamp=stamp)
    for name in list(plan.sources):
        owner = source_of(name, originals=plan.sources.keys(), variants=variants)
        if owner != name:
            plan.skipped[name] = f"its name is also a sample name of annotation {owner!r}"
            del plan.sources[name]


def rescan(source: Source) -> Source | None:
    """``source`` as it is now on disk (same image name), or ``None`` when it is incomplete."""
    stamp = _stamp(
        source.image, source.label, recipe=source.stamp.recipe, image_name=source.stamp.image
    )
    return None if stamp is None else Source(name=source.name, folder=source.folder, stamp=stamp)


def _stamp(
    image: os.DirEntry[str] | Path,
    label: os.DirEntry[str] | Path,
    *,
    recipe: str,
    image_name: str | None = None,
) -> Stamp | None:
    """The stamp of an image and its label, or ``None`` if either is gone."""
    try:
        image_stat, label_stat = image.stat(), label.stat()
    except FileNotFoundError:
        return None
    return Stamp(
        image=image_name or image.name,
        image_mtime_ns=image_stat.st_mtime_ns,
        image_size=image_stat.st_size,
        label_mtime_ns=label_stat.st_mtime_ns,
        label_size=label_stat.st_size,
        recipe=recipe,
    )


def plan_pass(
    source: AnnotationDir,
    output: AnnotationDir,
    state: Mapping[str, Stamp],
    *,
    recipe: str,
    variants: int,
    shard: Shard = Shard(),
) -> Plan:
    """Compares the source folder, the output folder and the recorded stamps (see the module).

    With a ``shard``, the plan holds only that shard's sources and stale files.
    """
    plan = Plan()
    scan_sources(source, recipe=recipe, variants=variants, plan=plan)
    # Each source claims its sample files from the listings; what nobody claims is stale.
    unclaimed_images = _names(output.images, plan)
    unclaimed_labels = _names(output.labels, plan)
    for name, found in list(plan.sources.items()):
        images = output_image_names(name, found.extension, variants=variants)
        labels = output_label_names(name, variants=variants)
        complete = _claim(unclaimed_images, images) & _claim(unclaimed_labels, labels)
        if not shard.owns(name, variants=variants):
            del plan.sources[name]
        elif complete and state.get(name) == found.stamp:
            plan.unchanged += 1
        else:
            plan.todo.append(found)
    plan.stale.extend(output.images / file_name for file_name in sorted(unclaimed_images))
    plan.stale.extend(output.labels / file_name for file_name in sorted(unclaimed_labels))
    if not shard.whole:
        plan.stale = [p for p in plan.stale if shard.owns_file(p.name, variants=variants)]
        plan.incomplete = [n for n in plan.incomplete if shard.owns(n, variants=variants)]
        plan.unsafe = {n: why for n, why in plan.unsafe.items() if shard.owns(n, variants=variants)}
        plan.skipped = {
            n: why for n, why in plan.skipped.items() if shard.owns(n, variants=variants)
        }
    return plan


def _claim(unclaimed: set[str], names: list[str]) -> bool:
    """Removes ``names`` from ``unclaimed``; True when every one of them was there."""
    before = len(unclaimed)
    unclaimed.difference_update(names)
    return before - len(unclaimed) == len(names)


def _unusable(name: str, images: list[os.DirEntry[str]], *, variants: int) -> str | None:
    if len(images) > 1:
        return "several images share its name: " + ", ".join(sorted(e.name for e in images))
    try:  # the longest sample name contains the name: one check covers both
        check_name(variant_name(name, variants), what="its last sample name")
    except UnsafePathError as exc:
        return str(exc)
    return None


def _set_unsafe_aside(
    images: dict[str, list[os.DirEntry[str]]], labels: dict[str, os.DirEntry[str]], plan: Plan
) -> None:
    """Moves the sources with a symbolic link or special file from ``images``/``labels`` to
    ``plan.unsafe``, with the reason (`fs.not_regular`); nothing of them is ever read."""
    for name in sorted(images.keys() | labels.keys()):
        entries = [*images.get(name, []), *([labels[name]] if name in labels else [])]
        reasons = [why for why in map(not_regular, entries) if why]
        if reasons:
            found = images.pop(name, [])
            label = labels.pop(name, None)
            image = Path(found[0].path) if found else None
            plan.unsafe[name] = ("; ".join(reasons), image, label and Path(label.path))


def _files(folder: Path) -> list[os.DirEntry[str]]:
    """The non-hidden entries of ``folder`` but folders (none when it does not exist): regular
    files, and links and special files for `_set_unsafe_aside`."""
    try:
        with os.scandir(folder) as entries:
            return [e for e in entries if not is_temporary(e) and _not_folder(e)]
    except FileNotFoundError:
        return []


def _not_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return not entry.is_dir(follow_symlinks=False)
    except FileNotFoundError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except FileNotFoundError:  # needed a stat (no d_type) and the file has gone
        return False


def _names(folder: Path, plan: Plan) -> set[str]:
    """Names of the sample files in an output folder; leftover temporaries go to ``plan.stale``."""
    names = set()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_temporary(entry):
                    if entry.name.endswith(TEMPORARY_SUFFIX):
                        plan.stale.append(folder / entry.name)
                elif _is_file(entry):
                    names.add(entry.name)
    except FileNotFoundError:
        pass
    return names
