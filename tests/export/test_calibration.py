"""INT8 calibration batches and their feed (`export.calibration`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from azaion_training.errors import ExportError
from azaion_training.export.calibration import CalibrationFeed, calibration_batches


@pytest.mark.parametrize(
    ("count", "batch", "sizes"),
    [
        (8, 4, [4, 4]),  # exact
        (9, 4, [4, 4]),  # the partial last batch is dropped
        (3, 4, []),  # not one full batch
        (3, 1, [1, 1, 1]),  # batch 1
    ],
)
def test_calibration_batches(count: int, batch: int, sizes: list[int]) -> None:
    images = [Path(f"{i}.jpg") for i in range(count)]
    batches = calibration_batches(images, batch=batch)
    assert [len(b) for b in batches] == sizes
    assert [p for b in batches for p in b] == images[: sum(sizes)]


def test_calibration_feed_gives_letterboxed_batches(tmp_path: Path) -> None:
    paths = _images(tmp_path, 5)
    feed = CalibrationFeed(paths, batch=2, imgsz=16)
    batches = [feed.next_batch(), feed.next_batch(), feed.next_batch()]
    assert [b.shape if b is not None else None for b in batches] == [(2, 16, 16, 3)] * 2 + [None]
    assert feed.failure is None


def test_a_calibration_image_that_does_not_load_is_named(tmp_path: Path) -> None:
    paths = _images(tmp_path, 4)
    paths[2].write_bytes(b"not an image")
    feed = CalibrationFeed(paths, batch=2, imgsz=16)
    assert feed.next_batch() is not None
    assert feed.next_batch() is None  # TensorRT hears "no more data"...
    assert feed.failure is not None and str(paths[2]) in feed.failure  # ...the build does not
    assert feed.next_batch() is None


def test_calibration_needs_one_full_batch(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="needs at least 4 images, got 3"):
        CalibrationFeed(_images(tmp_path, 3), batch=4, imgsz=16)


def _images(folder: Path, count: int) -> list[Path]:
    import cv2

    paths = [folder / f"{index}.png" for index in range(count)]
    for index, path in enumerate(paths):
        cv2.imwrite(str(path), np.full((12, 20, 3), 40 * index, np.uint8))
    return paths
