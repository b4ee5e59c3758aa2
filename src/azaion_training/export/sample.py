"""Calibration images: a reproducible sample of a dataset, letterboxed as inference does.

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
from azaion_training.fs import atomic_write_text, list_images


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
    images = list_images(source, recursive=True)
    if not images:
        raise DatasetError(f"no images in {source}")
    return sorted(random.Random(seed).sample(images, k=min(n, len(images))))


def write_sample_list(paths: Iterable[Path], out: Path) -> Path:
    """Writes one absolute image path per line to ``out`` (atomically); returns ``out``.

    This is the dataset file format of ``rknn.build(dataset=...)``.
    """
    atomic_write_text(out, "".join(f"{Path(path).resolve()}\n" for path in paths))
    return out


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Fits a BGR image into a ``size`` x ``size`` square as Ultralytics does for inference.

    This is `azaion_training.infer.preprocess.Letterbox` (aspect kept, bilinear, centred on grey
    114), then converted to RGB for the calibrators.

    Args:
        image: ``(h, w, 3)`` uint8, BGR.
        size: the side of the square.

    Returns:
        ``(size, size, 3)`` uint8, RGB.
    """
    from azaion_training.infer.preprocess import Letterbox

    fitted = Letterbox.fit(source_hw=image.shape[:2], target_hw=(size, size))
    return np.ascontiguousarray(fitted.apply(image)[..., ::-1])


def load_letterboxed(path: Path, size: int) -> np.ndarray:
    """Reads an image file (`azaion_training.images.read_image`: 16-bit, 1- or 4-band images as
    the augmenter turns them) and letterboxes it (see `letterbox`): ``(size, size, 3)`` uint8
    RGB.

    Raises:
        MediaError: the file does not decode as an image.
    """
    from azaion_training.images import read_image

    try:
        rgb = read_image(path)
    except OSError as exc:
        raise MediaError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    return letterbox(np.ascontiguousarray(rgb[:, :, ::-1]), size)
