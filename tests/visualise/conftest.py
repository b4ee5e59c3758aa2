"""Hand-made annotation folders for the visualiser: blank images with labels we know."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from azaion_training.fs import AnnotationDir
from azaion_training.labels import Box, write_label


def add_image(
    folder: AnnotationDir,
    name: str,
    boxes: list[Box] | None,
    *,
    width: int = 160,
    height: int = 80,
    colour: int = 255,
) -> Path:
    """A plain image (white by default) and, unless ``boxes`` is None, its label."""
    folder.create()
    path = folder.images / f"{name}.png"
    assert cv2.imwrite(str(path), np.full((height, width, 3), colour, np.uint8))
    if boxes is not None:
        write_label(folder.labels / f"{name}.txt", boxes)
    return path


def read_png_rgb(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
