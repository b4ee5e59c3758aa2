"""Calibration images: a reproducible sample of a dataset, and letterboxing as Ultralytics does.

The sample feeds INT8 calibration (TensorRT) and quantisation (RKNN).

The images come from the ``train`` split when ``dataset`` is a formed dataset
(``datasets/azaion-{date}/train/images``), else from every image below ``dataset``. They are listed
in path order before a seeded draw, so the same folder and seed always give the same sample.

Example:
    >>> paths = form_data_sample(Path("datasets/azaion-2025-01-31"), 200, seed=0)  # doctest: +SKIP
    >>> write_sample_list(paths, Path("models/calibration.txt"))  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from azaion_training.errors import DatasetError, MediaError
from azaion_training.fs import atomic_write_text, is_temporary

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
"""File endings taken as images (case-insensitive)."""


def form_data_sample(dataset: Path, n: int, *, seed: int = 0) -> list[Path]:
    """Draws ``n`` images of ``dataset`` (all of them when it holds fewer), reproducibly.

    Args:
        dataset: a formed dataset (its ``train`` split is used) or any folder of images.
        n: how many images to draw; at least 1.
        seed: the seed of the draw.

    Returns:
        The drawn image paths, sorted.

    Raises:
        DatasetError: ``n`` is below 1, or the folder is missing or holds no image.
    """
    if n < 1:
        raise DatasetError(f"a data sample needs at least 1 image, {n} asked")
    if not dataset.is_dir():
        raise DatasetError(f"dataset {dataset} is not a folder")
    train = dataset / "train" / "images"
    source = train if train.is_dir() else dataset
    images = sorted(_images_below(source))
    if not images:
        raise DatasetError(f"no images in {source}")
    return sorted(random.Random(seed).sample(images, k=min(n, len(images))))


def write_sample_list(paths: Iterable[Path], out: Path) -> Path:
    """Writes one absolute image path per line to ``out`` (atomically); returns ``out``.

    This is the dataset file format of ``rknn.build(dataset=...)``.
    """
    atomic_write_text(out, "".join(f"{Path(path).resolve()}\n" for path in paths))
    return out


def _images_below(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and not is_temporary(path) and path.is_file():
            yield path


LETTERBOX_FILL = 114
"""Grey of the padding, as Ultralytics' ``LetterBox``."""


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Fits a BGR image into a ``size`` x ``size`` square as Ultralytics does for inference.

    The image is resized keeping its aspect ratio (bilinear) and centred on grey (114) padding.

    Args:
        image: ``(h, w, 3)`` uint8, BGR.
        size: the side of the square.

    Returns:
        ``(size, size, 3)`` uint8, RGB.
    """
    import cv2

    height, width = image.shape[:2]
    ratio = min(size / height, size / width)
    new_w, new_h = round(width * ratio), round(height * ratio)
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_w, pad_h = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(pad_h - 0.1), round(pad_h + 0.1)
    left, right = round(pad_w - 0.1), round(pad_w + 0.1)
    fill = (LETTERBOX_FILL,) * 3
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=fill)
    return np.ascontiguousarray(image[..., ::-1])


def load_letterboxed(path: Path, size: int) -> np.ndarray:
    """Reads an image file and letterboxes it (see `letterbox`): ``(size, size, 3)`` uint8 RGB.

    Raises:
        MediaError: the file does not decode as an image.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot decode image {path}")
    return letterbox(image, size)
