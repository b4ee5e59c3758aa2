"""One annotation's samples, made in-process (the pool runs the same function)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from azaion_training.augment.pipeline import BoxRules
from azaion_training.augment.worker import Outcome, SampleJob, make_samples
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.labels import Box, read_label
from tests.augment.helpers import HEIGHT, WIDTH, contents, sample_files, write_label_text


def _job(tree: DataTree, name: str, *, variants: int = 7) -> SampleJob:
    image = tree.data.find_image(name) or tree.data.images / f"{name}.jpg"
    return SampleJob(
        name=name,
        image=image,
        label=tree.data.label_path(name),
        output=tree.data_processed,
        variants=variants,
        rules=BoxRules(),
        jpeg_quality=90,
    )


@pytest.fixture
def one(tree: DataTree) -> str:
    return write_annotations(tree.data, 1, width=WIDTH, height=HEIGHT, prefix="one")[0]


@pytest.mark.parametrize(
    "label_text",
    [
        "",  # an empty label still gives 8 samples
        "1 0.5 0.5 0.2 0.2\n",  # one box
        "\n\n",  # blank lines only
    ],
)
def test_eight_samples_with_valid_labels(tree: DataTree, one: str, label_text: str) -> None:
    write_label_text(tree.data, one, label_text)
    result = make_samples(_job(tree, one))
    assert (result.outcome, result.samples) == (Outcome.MADE, 8)
    assert set(contents(tree.data_processed)) == sample_files(one)
    for label in tree.data_processed.labels.iterdir():
        read_label(label)  # raises if invalid


def test_original_keeps_the_image_bytes_and_every_box_clipped(tree: DataTree, one: str) -> None:
    # Straddles the right border (x 0.93..1.03), and a box under one pixel (0.64 x 0.48 px).
    write_label_text(tree.data, one, "2 0.98 0.5 0.1 0.2\n3 0.5 0.5 0.005 0.005\n")
    result = make_samples(_job(tree, one))
    original = tree.data_processed
    assert (original.images / f"{one}.jpg").read_bytes() == (
        tree.data.images / f"{one}.jpg"
    ).read_bytes()
    boxes = read_label(original.label_path(one))
    assert [box.class_id for box in boxes] == [2, 3]  # the original keeps every box
    assert boxes[0].xyxy == pytest.approx((0.93, 0.4, 1.0, 0.6), abs=1e-6)
    for index in range(1, 8):  # variants drop the sub-pixel box as too thin
        assert all(b.class_id == 2 for b in read_label(original.label_path(f"{one}_{index}")))
    assert result.dropped.thin == 7


@pytest.mark.parametrize(
    ("label_text", "reason"),
    [
        ("99 0.5 0.5 0.1 0.1\n", "invalid label: line 1: class id '99' is outside 0..79"),
        ("1 0.5 0.5 0.1\n", "invalid label: line 1: expected 5 columns"),
        ("1 0.5 1.5 0.1 0.1\n", "invalid label: line 1: y '1.5' is outside [0, 1]"),
    ],
)
def test_invalid_label_is_corrupted(tree: DataTree, one: str, label_text: str, reason: str) -> None:
    write_label_text(tree.data, one, label_text)
    result = make_samples(_job(tree, one))
    assert result.outcome is Outcome.CORRUPTED
    assert result.reason.startswith(reason)
    assert contents(tree.data_processed) == {}


@pytest.mark.parametrize(
    "image_bytes",
    [
        b"",  # empty file
        b"not an image at all",  # garbage
        b"\xff\xd8\xff\xe0" + bytes(64),  # a JPEG header and nothing else
    ],
)
def test_undecodable_image_is_corrupted(tree: DataTree, one: str, image_bytes: bytes) -> None:
    (tree.data.images / f"{one}.jpg").write_bytes(image_bytes)
    result = make_samples(_job(tree, one))
    assert (result.outcome, result.reason) == (Outcome.CORRUPTED, "image does not decode")
    assert contents(tree.data_processed) == {}


@pytest.mark.parametrize("missing", ["image", "label"])
def test_vanished_source(tree: DataTree, one: str, missing: str) -> None:
    job = _job(tree, one)
    Path(getattr(job, missing)).unlink()
    assert make_samples(job).outcome is Outcome.VANISHED
    assert contents(tree.data_processed) == {}


def test_png_original_keeps_its_format(tree: DataTree, one: str) -> None:
    image = cv2.imread(str(tree.data.images / f"{one}.jpg"))
    (tree.data.images / f"{one}.jpg").unlink()
    cv2.imwrite(str(tree.data.images / f"{one}.png"), image)
    assert make_samples(_job(tree, one)).outcome is Outcome.MADE
    assert set(contents(tree.data_processed)) == sample_files(one, extension=".png")


def test_variant_count_follows_the_setting(tree: DataTree, one: str) -> None:
    result = make_samples(_job(tree, one, variants=2))
    assert result.samples == 3
    assert set(contents(tree.data_processed)) == sample_files(one, variants=2)


def test_boxes_are_formatted_by_the_label_module(tree: DataTree, one: str) -> None:
    write_label_text(tree.data, one, "1 0.5 0.5 0.2 0.2\n")
    make_samples(_job(tree, one))
    text = tree.data_processed.label_path(one).read_text()
    assert text == Box(1, 0.5, 0.5, 0.2, 0.2).to_line() + "\n"


@pytest.mark.parametrize("bands", [1, 4])
def test_a_geotiff_original_becomes_the_models_input_as_png(tree: DataTree, bands: int) -> None:
    import numpy as np

    from tests.imagery import aerial_scene, geotiff

    scene, boxes = aerial_scene(HEIGHT, WIDTH)
    if bands == 4:  # 8-bit RGB + NIR
        grey = (scene // 16).astype(np.uint8)
        scene = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    (tree.data.images / "tile.tif").write_bytes(geotiff(scene))
    lines = "".join(f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for cx, cy, w, h in boxes)
    write_label_text(tree.data, "tile", lines)
    result = make_samples(_job(tree, "tile"))
    assert (result.outcome, result.samples) == (Outcome.MADE, 8), result.reason
    assert set(contents(tree.data_processed)) == sample_files("tile") - {"images/tile.jpg"} | {
        "images/tile.png"
    }
    original = cv2.imread(str(tree.data_processed.images / "tile.png"), cv2.IMREAD_UNCHANGED)
    assert original.shape == (HEIGHT, WIDTH, 3) and original.dtype.name == "uint8"
    cx, cy, _, _ = boxes[0]
    assert original[round(cy * HEIGHT), round(cx * WIDTH)].min() >= 200  # an object, bright
    kept = read_label(tree.data_processed.label_path("tile"))
    assert len(kept) == len(boxes)
