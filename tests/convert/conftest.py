"""Hand-made fixtures for the converters: blank images of known sizes and annotation text."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_image(path: Path, width: int, height: int) -> Path:
    """A grey image of ``width`` x ``height`` pixels (PNG or JPEG by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


def voc_xml(
    filename: str | None,
    objects: list[tuple[str, float, float, float, float]],
    *,
    size: tuple[int, int] | None = None,
) -> str:
    """A Pascal VOC document with ``(name, xmin, ymin, xmax, ymax)`` objects."""
    parts = ["<annotation>", "<folder>VOC</folder>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height>")
        parts.append("<depth>3</depth></size>")
    for name, x1, y1, x2, y2 in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts)


def oriented_line(code: int, corners: list[tuple[float, float]]) -> str:
    """A 14-column line: centre, angle 0, class, flags 1 0, then x1..x4 and y1..y4."""
    xs = [x for x, _ in corners]
    ys = [y for _, y in corners]
    cx, cy = sum(xs) / 4, sum(ys) / 4
    return " ".join(str(v) for v in [cx, cy, 0.0, code, 1, 0, *xs, *ys])


def label_lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines()
