from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.errors import DatasetError, MediaError
from azaion_training.export.sample import (
    form_data_sample,
    letterbox,
    load_letterboxed,
    write_sample_list,
)
from azaion_training.infer.preprocess import PAD_VALUE as LETTERBOX_FILL


def make_images(folder: Path, count: int, *, suffix: str = ".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"image_{index:03d}{suffix}"
        cv2.imwrite(str(path), np.full((8, 8, 3), index, np.uint8))
        paths.append(path)
    return paths


def test_same_seed_gives_the_same_sample(tmp_path: Path) -> None:
    make_images(tmp_path / "images", 50)
    first = form_data_sample(tmp_path, 10, seed=3)
    assert len(first) == 10 and len(set(first)) == 10
    assert form_data_sample(tmp_path, 10, seed=3) == first
    assert form_data_sample(tmp_path, 10, seed=4) != first
    assert first == sorted(first)


def test_sample_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    forward, backward = tmp_path / "a", tmp_path / "b"
    make_images(forward / "images", 30)
    for path in reversed(make_images(tmp_path / "source", 30)):
        (backward / "images").mkdir(parents=True, exist_ok=True)
        path.rename(backward / "images" / path.name)
    names = [p.name for p in form_data_sample(forward, 7, seed=0)]
    assert [p.name for p in form_data_sample(backward, 7, seed=0)] == names


@pytest.mark.parametrize(
    ("layout", "n", "expected_count", "expected_folder"),
    [
        ({"train/images": 5, "valid/images": 5}, 3, 3, "train/images"),  # formed dataset: train
        ({"images": 4}, 10, 4, "images"),  # fewer images than asked: all of them
        ({"a": 2, "b/c": 2}, 4, 4, None),  # any folder: every image below it
    ],
)
def test_sample_sources(
    tmp_path: Path, layout: dict[str, int], n: int, expected_count: int, expected_folder: str | None
) -> None:
    for folder, count in layout.items():
        make_images(tmp_path / folder, count)
    sample = form_data_sample(tmp_path, n)
    assert len(sample) == expected_count
    if expected_folder:
        assert {p.parent for p in sample} == {tmp_path / expected_folder}


def test_sample_skips_temporary_and_foreign_files(tmp_path: Path) -> None:
    make_images(tmp_path, 2)
    (tmp_path / ".half-written.jpg.1a2b.tmp").write_bytes(b"")
    (tmp_path / ".hidden.jpg").write_bytes(b"")
    (tmp_path / "labels.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    make_images(tmp_path, 1, suffix=".PNG")
    names = sorted(p.name for p in form_data_sample(tmp_path, 10))
    assert names == ["image_000.PNG", "image_000.jpg", "image_001.jpg"]


@pytest.mark.parametrize(
    ("make", "n", "message"),
    [
        (lambda root: make_images(root, 2), 0, "at least 1"),  # nothing asked
        (lambda root: None, 1, "not a folder"),  # missing folder
        (lambda root: root.mkdir(), 1, "no images"),  # empty folder
    ],
)
def test_sample_errors(tmp_path: Path, make, n: int, message: str) -> None:
    root = tmp_path / "dataset"
    make(root)
    with pytest.raises(DatasetError, match=message):
        form_data_sample(root, n)


def test_write_sample_list(tmp_path: Path) -> None:
    paths = make_images(tmp_path / "images", 3)
    out = write_sample_list(paths, tmp_path / "lists" / "dataset.txt")
    lines = out.read_text().splitlines()
    assert lines == [str(p.resolve()) for p in paths]
    assert all(Path(line).is_absolute() for line in lines)


@pytest.mark.parametrize(
    ("height", "width", "content"),
    [
        (50, 100, (slice(25, 75), slice(0, 100))),  # wide: grey bands above and below
        (100, 50, (slice(0, 100), slice(25, 75))),  # tall: grey bands left and right
        (30, 30, (slice(0, 100), slice(0, 100))),  # square: scaled up, no padding
    ],
)
def test_letterbox_keeps_aspect_and_pads_grey(height: int, width: int, content: tuple) -> None:
    bgr = np.zeros((height, width, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR
    boxed = letterbox(bgr, 100)
    assert boxed.shape == (100, 100, 3) and boxed.dtype == np.uint8
    inside = boxed[content]
    assert (inside[..., 0] == 200).all() and (inside[..., 2] == 0).all()  # RGB now
    padding = np.ones((100, 100), bool)
    padding[content] = False
    assert (boxed[padding] == LETTERBOX_FILL).all()


def test_load_letterboxed_rejects_a_broken_image(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(MediaError, match=r"broken\.jpg does not decode"):
        load_letterboxed(broken, 64)
