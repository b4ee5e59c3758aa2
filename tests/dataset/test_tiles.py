"""Training tiles: the cut-box rule, the background share, and tiles that never leave their
frame's split as the dataset grows."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.boxes import Window
from azaion_training.config import Settings
from azaion_training.dataset.formation import MEMBERS, form_dataset, read_manifest
from azaion_training.dataset.tiles import TILE_MARK, TrainTiles, is_tile
from azaion_training.demo.world import write_annotations
from azaion_training.fs import DataTree
from azaion_training.labels import Box, read_label
from tests.dataset.helpers import add_variants_by_linking, split_names
from tests.dataset.test_formation import catalogue_media

DAY = dt.date(2026, 12, 3)


def test_a_box_cut_by_a_tile_edge_follows_the_variants_rule() -> None:
    tiles = TrainTiles(tile_hw=(100, 100), min_visible_fraction=0.3, min_box_px=2.0)
    frame_hw = (100, 300)
    boxes = [  # in a 300x100 frame: 90..110 px (half in the first tile), 96..116 (a fifth)
        Box.from_xyxy(1, 90 / 300, 0.4, 110 / 300, 0.6),
        Box.from_xyxy(2, 96 / 300, 0.4, 116 / 300, 0.6),
    ]

    first = tiles.boxes_in(boxes, Window(x=0, y=0, w=100, h=100), frame_hw=frame_hw)

    assert [box.class_id for box in first] == [1]  # 20% of the second box is inside: dropped
    assert first[0].xyxy == pytest.approx((0.9, 0.4, 1.0, 0.6))  # clipped to the tile


@pytest.mark.parametrize(("share", "kept"), [(0.0, 0), (1.0, 9)])
def test_the_share_of_empty_tiles_is_kept(tmp_path: Path, share: float, kept: int) -> None:
    image, label = tmp_path / "f.jpg", tmp_path / "f.txt"
    cv2.imwrite(str(image), np.full((240, 320, 3), 90, np.uint8))
    label.write_text("")
    out = tmp_path / "out"
    out.mkdir()

    written = TrainTiles(tile_hw=(128, 128), empty_share=share).write(image, label, out, out)

    assert len(written) == kept  # 3 x 3 tiles of 128 in 320 x 240, none with a box


def _frame_of(tile: str) -> str:
    return tile[: tile.index(TILE_MARK)]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_tile_lands_in_another_split_than_its_frame_as_the_dataset_grows(
    settings: Settings, tree: DataTree
) -> None:
    settings = settings.model_copy(
        update={
            "training": settings.training.model_copy(update={"imgsz": 64}),
            "augment": settings.augment.model_copy(update={"variants": 1}),
        }
    )
    assert settings.dataset.tiles == "auto"  # 160 x 120 frames exceed 64 by more than 1.5

    def grow(count: int, seed: int, flights: int) -> list[str]:
        names = write_annotations(
            tree.data_processed,
            count,
            seed=seed,
            width=160,
            height=120,
            prefix=f"g{seed}",
            objects=(3, 5),
        )
        add_variants_by_linking(tree.data_processed, names, variants=1)
        catalogue_media(
            tree, {name: f"flight-{seed}-{i % flights}" for i, name in enumerate(names)}
        )
        grown.extend(names)
        return names

    def check(dataset: Path) -> dict[str, str]:
        splits = {s: split_names(dataset, s) for s in ("train", "valid", "test")}
        assert not any(is_tile(n) for n in splits["valid"] | splits["test"])  # whole frames only
        tiles = {n for n in splits["train"] if is_tile(n)}
        assert tiles and all(_frame_of(n) in splits["train"] for n in tiles)
        source_split, tile_rows = {}, []
        for line in (dataset / MEMBERS).read_text().splitlines():
            split, group, source, sample = line.split("\t")
            if is_tile(sample):
                tile_rows.append((split, group, source, sample))
            else:
                source_split.setdefault(source, set()).add((split, group))
        assert len(tile_rows) == len(tiles)
        for split, group, source, sample in tile_rows:  # the frame's source, split and group
            assert _frame_of(sample).removesuffix("_1") == source
            assert source_split[source] == {(split, group)}
        manifest = read_manifest(dataset)
        assert manifest["tiles"]["written"] == len(tiles)  # type: ignore[index]
        return {n: _digest(dataset / "train" / "images" / f"{n}.jpg") for n in tiles}

    grown: list[str] = []
    grow(30, seed=1, flights=15)
    first = form_dataset(settings, tree, date=DAY, progress=False)
    tiles_before = check(first.path)
    grow(20, seed=2, flights=10)
    second = form_dataset(settings, tree, date=DAY + dt.timedelta(days=1), progress=False)
    tiles_after = check(second.path)

    assert all(second.splits[name] == split for name, split in first.splits.items())
    assert second.tiles == len(tiles_after) and f"{second.tiles} train tiles" in second.summary()
    assert second.copied == 0  # samples are linked; tiles are written, not copied
    # the tiles of the frames that were there before are the same files, byte for byte
    assert {n: d for n, d in tiles_after.items() if n in tiles_before} == tiles_before
    labels = second.path / "train" / "labels"
    assert sum(len(read_label(labels / f"{n}.txt")) for n in tiles_after) > 0
