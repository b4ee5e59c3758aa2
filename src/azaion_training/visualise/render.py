"""Images with their boxes: loading, fitting into a cell, drawing boxes, and figure plumbing.

Boxes are drawn with OpenCV onto the (resized) RGB array, so a box edge lands on an exact pixel;
matplotlib then shows the array 1:1 and writes the class names as text. Figures are built with
``matplotlib.figure.Figure`` (no pyplot, no GUI), which renders with Agg wherever it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.errors import MediaError
from azaion_training.fs import atomic_writer
from azaion_training.images import ToRGB, read_image
from azaion_training.labels import Box

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
"""Figures are laid out in pixels at this resolution."""

LINE_PX = 2
"""Box outline thickness in output pixels."""


@dataclass(frozen=True)
class PixelRect:
    """A box in pixels of a drawn image: top left ``(x1, y1)``, bottom right ``(x2, y2)``."""

    x1: int
    y1: int
    x2: int
    y2: int


def read_rgb(path: Path, to_rgb: ToRGB | None = None) -> np.ndarray:
    """The image as an RGB ``(h, w, 3)`` uint8 array, as the model sees it (16-bit and 1- or
    4-band images by the ``to_rgb`` rule of `azaion_training.images`).

    Raises:
        MediaError: the file does not decode.
    """
    try:
        return read_image(path, to_rgb)
    except OSError as exc:
        raise MediaError(f"{path} cannot be read: {exc.strerror or exc}") from exc


def fit(image: np.ndarray, *, max_width: int, max_height: int) -> np.ndarray:
    """Scales an image to fit ``max_width`` x ``max_height``, keeping its aspect ratio."""
    height, width = image.shape[:2]
    scale = min(max_width / width, max_height / height)
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    if size == (width, height):
        return image
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def box_rect(box: Box, *, width: int, height: int) -> PixelRect:
    """Where a normalised box falls on a ``width`` x ``height`` image (edges rounded)."""
    x1, y1, x2, y2 = box.xyxy
    return PixelRect(
        x1=round(x1 * width), y1=round(y1 * height), x2=round(x2 * width), y2=round(y2 * height)
    )


def draw_boxes(
    image: np.ndarray, boxes: Sequence[Box], table: ClassTable, *, thickness: int = LINE_PX
) -> np.ndarray:
    """A copy of an RGB image with each box outlined in its class colour.

    The outline lies inside the box: its outer edge is the box edge, ``thickness`` pixels wide.
    """
    drawn = np.ascontiguousarray(image).copy()
    height, width = drawn.shape[:2]
    for box in boxes:
        rect = box_rect(box, width=width, height=height)
        colour = table[box.class_id].rgb
        for inset in range(thickness):
            top_left = (rect.x1 + inset, rect.y1 + inset)
            bottom_right = (rect.x2 - 1 - inset, rect.y2 - 1 - inset)
            cv2.rectangle(drawn, top_left, bottom_right, colour, 1)
    return drawn


def text_colour(rgb: tuple[int, int, int]) -> str:
    """Black or white, whichever reads better on ``rgb``."""
    r, g, b = rgb
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "white"


def annotate(
    ax: Axes, boxes: Sequence[Box], table: ClassTable, *, width: int, height: int, size: float
) -> None:
    """Writes each box's short name (``Truck(W)``) on a tag of its colour at its top-left corner."""
    char_px = size * DPI / 72 * 0.62  # average glyph width of DejaVu Sans, in pixels
    for box in boxes:
        info = table[box.class_id]
        rect = box_rect(box, width=width, height=height)
        above = rect.y1 > size * 2
        fits_right = rect.x1 + len(info.short_name) * char_px + 4 <= width
        ax.text(
            rect.x1 if fits_right else rect.x2,
            rect.y1 if above else rect.y1 + LINE_PX,
            info.short_name,
            fontsize=size,
            color=text_colour(info.rgb),
            va="bottom" if above else "top",
            ha="left" if fits_right else "right",
            bbox={"facecolor": info.color, "edgecolor": "none", "pad": 1.0, "alpha": 0.85},
            clip_on=True,
        )


def new_figure(width_px: int, height_px: int) -> Figure:
    """A figure of exactly ``width_px`` x ``height_px`` pixels (at `DPI`), white, no GUI."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")


def save_figure(figure: Figure, path: Path) -> Path:
    """Writes a figure atomically; the format follows the suffix (``.png`` by default)."""
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_writer(path) as handle:
        figure.savefig(handle, format=fmt, dpi=figure.dpi, facecolor=figure.get_facecolor())
    return path
