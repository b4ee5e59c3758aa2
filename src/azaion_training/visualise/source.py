"""Where the images come from: annotation folders, dataset splits, and a reproducible pick.

An annotation folder is ``images/`` beside ``labels/`` (`fs.AnnotationDir`); a dataset is
``{train,valid,test}/`` of such folders. Each image is paired with ``labels/{stem}.txt``; an image
without a label file has no boxes (as in Ultralytics), a label that does not parse is reported.

Example:
    >>> items = list_images(AnnotationDir(Path("/azaion/data")))  # doctest: +SKIP
    >>> chosen = pick(items, n=16, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.errors import ConfigError, DatasetError, LabelError
from azaion_training.fs import AnnotationDir, DataTree
from azaion_training.fs import list_images as image_files
from azaion_training.labels import Box, read_label

SPLITS = ("train", "valid", "test")
SOURCES = ("data", "seed", "processed", "deleted", "corrupted", "dataset")


@dataclass(frozen=True)
class LabelledImage:
    """One image and its (possibly missing) label file."""

    name: str
    image: Path
    label: Path

    def boxes(self) -> list[Box]:
        """The boxes of the label; none when the label file is missing.

        Raises:
            LabelError: the label does not parse.
        """
        return read_label(self.label) if self.label.is_file() else []


def list_images(folder: AnnotationDir) -> list[LabelledImage]:
    """Every image of an annotation folder with its label path, sorted by name."""
    if not folder.images.is_dir():
        raise DatasetError(f"{folder.path} has no images/ folder")
    return [
        LabelledImage(name=path.stem, image=path, label=folder.labels / f"{path.stem}.txt")
        for path in image_files(folder.images)
    ]


def resolve_folders(
    tree: DataTree, source: str, *, path: Path | None = None, split: str | None = None
) -> dict[str, AnnotationDir]:
    """The annotation folders a command line names, keyed by a display name.

    Args:
        tree: the data tree.
        source: ``data``, ``seed``, ``processed``, ``deleted``, ``corrupted`` or ``dataset``.
        path: for ``dataset``: a dataset folder (with split folders) or an annotation folder;
            the newest ``datasets/azaion-*`` when ``None``.
        split: keep only this split of a dataset.

    Raises:
        ConfigError: an unknown source, a path given for a tree folder, or a missing split.
        DatasetError: the folder does not exist or there is no dataset yet.
    """
    named = {
        "data": tree.data,
        "seed": tree.data_seed,
        "processed": tree.data_processed,
        "deleted": tree.data_deleted,
        "corrupted": tree.data_corrupted,
    }
    if source in named:
        if path is not None:
            raise ConfigError(f"a PATH goes only with 'dataset', not with {source!r}")
        if split is not None:
            raise ConfigError("--split goes only with 'dataset'")
        folder = named[source]
        return {folder.path.name: _existing(folder)}
    if source != "dataset":
        raise ConfigError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    root = path if path is not None else _newest_dataset(tree)
    folders = {name: AnnotationDir(root / name) for name in SPLITS if (root / name).is_dir()}
    if not folders:
        return {root.name: _existing(AnnotationDir(root))}
    if split is not None:
        if split not in folders:
            raise ConfigError(f"{root} has no {split!r} split (it has {', '.join(folders)})")
        return {split: folders[split]}
    return folders


def _existing(folder: AnnotationDir) -> AnnotationDir:
    if not folder.images.is_dir():
        raise DatasetError(f"{folder.path} has no images/ folder")
    return folder


def _newest_dataset(tree: DataTree) -> Path:
    found = tree.newest_dataset()
    if found is None:
        raise DatasetError(f"no dataset under {tree.datasets}; give its PATH")
    return found


def class_ids(name: str, table: ClassTable) -> frozenset[int]:
    """The slots a ``--class`` value means.

    A base name (``Truck``, or its short name) means that class in every weather mode; a name
    with a mode (``Truck(Wint)``) or a number means exactly that slot. Case-insensitive.

    Raises:
        ConfigError: no class has that name.
    """
    key = name.strip().lower()
    if key.isdigit() and 0 <= int(key) < len(table):
        return frozenset({int(key)})
    exact = {info.id for info in table if info.name.lower() == key}
    if exact and "(" in key:
        return frozenset(exact)
    by_base = {
        info.id
        for info in table.used()
        if info.base_id is not None
        and key
        in (
            table.base_classes[info.base_id].name.lower(),
            table.base_classes[info.base_id].short_name.lower(),
        )
    }
    if by_base or exact:
        return frozenset(by_base | exact)
    known = ", ".join(base.name for base in table.base_classes)
    raise ConfigError(f"unknown class {name!r}; known classes: {known}")


def with_class(items: Iterable[LabelledImage], wanted: frozenset[int]) -> list[LabelledImage]:
    """The images with at least one box of a class in ``wanted`` (unreadable labels left out)."""
    kept = []
    for item in items:
        try:
            boxes = item.boxes()
        except LabelError:
            continue
        if any(box.class_id in wanted for box in boxes):
            kept.append(item)
    return kept


def pick(items: Sequence[LabelledImage], *, n: int, seed: int) -> list[LabelledImage]:
    """``n`` images chosen at random, reproducibly for a given ``seed``, in name order."""
    if n <= 0 or not items:
        return []
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(items), size=min(n, len(items)), replace=False)
    return [items[int(index)] for index in sorted(chosen)]
