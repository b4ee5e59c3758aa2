"""The demo's checks of the user's data, before any broker or training starts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.classes import ClassTable
from azaion_training.demo.userdata import UserData, prepare_user_data
from azaion_training.errors import DatasetError
from azaion_training.images import ToRGB
from tests.imagery import aerial_scene, geotiff


def _prepare(data: UserData, work: Path, *, imgsz: int = 64, tiled: bool = False):
    return prepare_user_data(
        data, work, table=ClassTable.default(), to_rgb=ToRGB(), imgsz=imgsz, tiled=tiled,
        progress=False,
    )  # fmt: skip


def _yolo(folder: Path, count: int, *, label: str | None, size: int = 64) -> Path:
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for index in range(count):
        cv2.imwrite(str(folder / "images" / f"a{index}.png"), np.zeros((size, size, 3), np.uint8))
        if label is not None:
            (folder / "labels" / f"a{index}.txt").write_text(label)
    return folder


def test_images_without_labels_stop_before_anything_starts(tmp_path: Path) -> None:
    data = UserData(_yolo(tmp_path / "data", 4, label=None))
    with pytest.raises(DatasetError, match=r"no box in .*data \(4 images\): give YOLO labels"):
        _prepare(data, tmp_path / "work")


def test_too_few_images_with_boxes_name_the_remedy(tmp_path: Path) -> None:
    data = UserData(_yolo(tmp_path / "data", 2, label="1 0.5 0.5 0.5 0.5\n"))
    with pytest.raises(DatasetError, match=r"only 2 image.* needs 3 .* --chips PX"):
        _prepare(data, tmp_path / "work")


def test_boxes_below_the_stride_are_warned_about(tmp_path: Path) -> None:
    data = UserData(_yolo(tmp_path / "data", 3, label="1 0.5 0.5 0.02 0.02\n", size=640))
    prepared = _prepare(data, tmp_path / "work", imgsz=320)
    (note,) = prepared.notes
    assert note.startswith("warning: the median box is 6.4 px at the model's input (size 320)")
    assert "--imgsz" in note and "--chips" in note
    tiled = _prepare(data, tmp_path / "work2", imgsz=320, tiled=True)
    assert tiled.notes == (), "at native resolution (tiles) the boxes are 12.8 px"


def test_a_geotiff_in_a_yolo_folder_is_sent_as_png_and_chips_keep_the_boxes(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    scene, boxes = aerial_scene(256, 256, seed=1)
    (folder / "images" / "pan.tif").write_bytes(geotiff(scene))
    lines = "".join(f"0 {cx} {cy} {w} {h}\n" for cx, cy, w, h in boxes)
    (folder / "labels" / "pan.txt").write_text(lines)
    prepared = _prepare(UserData(folder, chips=128), tmp_path / "work", imgsz=128)
    pieces = sorted(p.name for p in prepared.folder.images.iterdir())
    assert pieces == [f"pan-x{x}-y{y}.png" for x in (0, 128) for y in (0, 128)]
    assert prepared.images >= 3 and prepared.boxes >= len(boxes) - 1  # a box cut in half may go
