"""Frames with small objects at native resolution, and a model trained to see them letterboxed.

`write_mosaics` puts four 160x120 synthetic scenes into one 320x240 frame: the objects keep the
pixel size the test detector (`tests.infer.conftest`) was trained on at 160x120 -> 128 (x0.8),
but whole frames letterboxed into 128 show them at x0.4. `build_mosaic_detector` trains the same
recipe on such frames, so it learns the x0.4 objects: it is the better model on whole letterboxed
frames, and the worse one when the frames are cut into 160x120 tiles at native resolution (where
the test detector sees its own scale). Two real models whose ranking differs between the two
evaluations: the gate's test case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from azaion_training.classes import WeatherMode
from azaion_training.demo.world import encode_jpeg, make_scene
from azaion_training.fs import AnnotationDir, atomic_write_bytes
from azaion_training.labels import Box, write_label
from tests.builds import Build
from tests.helpers import recipe_key
from tests.infer.conftest import CLASSES, MODEL_BATCH, train_short_run

TILE = (160, 120)
"""Width and height of one scene in a mosaic (the test detector's training frames)."""


def write_mosaics(folder: AnnotationDir, count: int, *, seed: int) -> None:
    """``count`` 320x240 frames, each four 160x120 scenes, with their labels."""
    rng = np.random.default_rng(seed)
    width, height = TILE
    for index in range(count):
        frame = np.zeros((2 * height, 2 * width, 3), np.uint8)
        boxes = []
        for row in range(2):
            for column in range(2):
                scene = make_scene(
                    rng,
                    width=width,
                    height=height,
                    classes=CLASSES,
                    mode=WeatherMode.NORM,
                    objects=(1, 2),
                    hard=False,
                )
                frame[row * height : (row + 1) * height, column * width : (column + 1) * width] = (
                    scene.image
                )
                boxes += [
                    Box(b.class_id, (b.cx + column) / 2, (b.cy + row) / 2, b.w / 2, b.h / 2)
                    for b in scene.boxes
                ]
        name = f"mosaic_{index:06d}"
        atomic_write_bytes(folder.image_path(name, ".jpg"), encode_jpeg(frame, 90))
        write_label(folder.label_path(name), boxes)


def build_mosaic_detector(work: Path, *, epochs: int = 20, images: int = 150) -> Path:
    """Trains the test detector's recipe on mosaics into the empty folder ``work``
    (``mosaic.pt``)."""
    write_mosaics(AnnotationDir(work / "data" / "train"), images, seed=10)
    last = train_short_run(work, val="train/images", epochs=epochs)
    shutil.copyfile(last, work / "mosaic.pt")
    shutil.rmtree(work / "data")
    shutil.rmtree(work / "train")
    return work / "mosaic.pt"


def mosaic_detector_key() -> str:
    """The cache key of the mosaic detector: its recipe and this world."""
    import sys

    return recipe_key(
        "mosaic-detector", build_mosaic_detector, sys.modules[__name__], train_short_run
    )


MOSAIC_DETECTOR = Build(
    fixture="mosaic_detector",
    key=mosaic_detector_key,
    make=build_mosaic_detector,
    products=("mosaic.pt",),
)


__all__ = ["MODEL_BATCH", "MOSAIC_DETECTOR", "TILE", "build_mosaic_detector", "write_mosaics"]
