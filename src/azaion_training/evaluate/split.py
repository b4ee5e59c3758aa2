"""A formed dataset split as the evaluator reads it: image files and their truth, one at a time.

A split folder holds ``images/`` and ``labels/`` (``datasets/azaion-{date}/{valid,test}``, where
formation puts only the originals, never the augmented variants). Truth boxes are turned from
YOLO's normalised form into the pixels of the full frame, so sizes are native.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from azaion_training.errors import DatasetError, LabelError, MediaError
from azaion_training.fs import list_images
from azaion_training.images import ToRGB, decode, to_bgr
from azaion_training.labels import read_label

SPLITS = ("test", "valid")
"""The scored split names, in the order a default is chosen (test when the dataset has one)."""


@dataclass(frozen=True)
class Truth:
    """The labelled objects of one image, in its pixels.

    Attributes:
        xyxy: ``(n, 4)`` float32 corners.
        class_id: ``(n,)`` int64 class slots.
    """

    xyxy: np.ndarray
    class_id: np.ndarray


@dataclass(frozen=True)
class Sample:
    """One image of a split: its file, its pixels (BGR) and its truth."""

    path: Path
    image: np.ndarray
    truth: Truth


def resolve_split(path: Path, split: str | None = None) -> Path:
    """The split folder to score: ``path`` itself when it holds ``images/``, else its ``split``
    (by default ``test``, or ``valid`` when it has no test split).

    Raises:
        DatasetError: no such folder, or no such split in it.
    """
    if not path.is_dir():
        raise DatasetError(f"{path}: no such folder (give a split or a dataset folder)")
    if (path / "images").is_dir():
        return path
    names = (split,) if split else SPLITS
    for name in names:
        if (path / name / "images").is_dir():
            return path / name
    wanted = split or " or ".join(SPLITS)
    raise DatasetError(f"{path}: no {wanted} split (expected {path}/{wanted}/images)")


def split_images(folder: Path) -> list[Path]:
    """The images of a split folder, sorted.

    Raises:
        DatasetError: the folder has no images.
    """
    images = list_images(folder / "images")
    if not images:
        raise DatasetError(f"{folder}: no images in {folder / 'images'}")
    return images


def read_sample(image_path: Path) -> Sample:
    """Reads one image and its label (``../labels/{stem}.txt``; none: no objects).

    Raises:
        DatasetError: the image or its label cannot be read.
    """
    try:  # every format of the image table, 16-bit and 4-band too, as the augmenter reads them
        image = to_bgr(decode(image_path.read_bytes(), what=str(image_path)), ToRGB())
    except (OSError, MediaError) as exc:
        raise DatasetError(f"{image_path}: not a readable image") from exc
    label = image_path.parent.parent / "labels" / f"{image_path.stem}.txt"
    try:
        boxes = read_label(label) if label.is_file() else []
    except LabelError as exc:
        raise DatasetError(f"{label}: {exc}") from exc
    height, width = image.shape[:2]
    scale = np.array([width, height, width, height], np.float32)
    xyxy = np.array([box.xyxy for box in boxes], np.float32).reshape(-1, 4) * scale
    class_id = np.array([box.class_id for box in boxes], np.int64)
    return Sample(image_path, image, Truth(xyxy, class_id))


def read_split(images: list[Path]) -> Iterator[Sample]:
    """The samples of ``images``, read one at a time (a split never sits in memory whole)."""
    for path in images:
        yield read_sample(path)
