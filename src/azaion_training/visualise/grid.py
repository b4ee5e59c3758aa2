"""A grid of images with their boxes in class colours and short class names.

The figure is laid out in pixels (`grid_layout`): every image is scaled to fit a square cell and
shown 1:1, so the pixel of a box edge in the saved PNG is known exactly, which the tests check.

Example:
    >>> figure = grid_figure(pick(items, n=16, seed=0), ClassTable.default())  # doctest: +SKIP
    >>> save_figure(figure, Path("grid.png"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.errors import LabelError, MediaError
from azaion_training.images import ToRGB
from azaion_training.labels import Box
from azaion_training.visualise.render import (
    PixelRect,
    annotate,
    draw_boxes,
    fit,
    new_figure,
    read_rgb,
)
from azaion_training.visualise.source import LabelledImage

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

GAP_PX = 10
TITLE_PX = 22
HEADER_PX = 44
LABEL_FONT = 7.0
TITLE_FONT = 9.0


@dataclass(frozen=True)
class Cell:
    """One drawn image: its pixels (boxes drawn), its boxes and a caption."""

    image: np.ndarray
    boxes: list[Box]
    caption: str


def grid_layout(
    sizes: Sequence[tuple[int, int]], *, cell_px: int, columns: int | None = None
) -> tuple[list[PixelRect], tuple[int, int]]:
    """Where each image goes in the figure, in figure pixels from the top left.

    Args:
        sizes: ``(width, height)`` of each image after `render.fit` to ``cell_px``.
        cell_px: side of the square cell.
        columns: images per row; about the square root of the count when ``None``.

    Returns:
        One rectangle per image (centred in its cell horizontally, at the top of its row; a row
        is as tall as its tallest image), and the figure's ``(width, height)``.
    """
    count = max(len(sizes), 1)
    columns = columns or math.ceil(math.sqrt(count))
    rows = [sizes[start : start + columns] for start in range(0, len(sizes), columns)]
    row_heights = [max(h for _, h in row) for row in rows] or [cell_px]
    width = columns * cell_px + (columns + 1) * GAP_PX
    height = HEADER_PX + sum(TITLE_PX + h + GAP_PX for h in row_heights)
    rects = []
    top = HEADER_PX
    for row, row_height in zip(rows, row_heights, strict=False):
        for column, (w, h) in enumerate(row):
            x = GAP_PX + column * (cell_px + GAP_PX) + (cell_px - w) // 2
            y = top + TITLE_PX
            rects.append(PixelRect(x1=x, y1=y, x2=x + w, y2=y + h))
        top += TITLE_PX + row_height + GAP_PX
    return rects, (width, height)


def grid_figure(
    items: Sequence[LabelledImage],
    table: ClassTable,
    *,
    cell_px: int = 320,
    columns: int | None = None,
    title: str = "",
    to_rgb: ToRGB | None = None,
) -> Figure:
    """Draws ``items`` in a grid, each with its boxes and short class names.

    An image that does not decode is shown grey, a label that does not parse is named in the
    caption; neither stops the grid. ``to_rgb``: how images become 8-bit RGB (the ``images``
    settings).
    """
    cells = [load_cell(item, table, cell_px=cell_px, to_rgb=to_rgb) for item in items]
    rects, (width, height) = grid_layout(
        [(c.image.shape[1], c.image.shape[0]) for c in cells], cell_px=cell_px, columns=columns
    )
    figure = new_figure(width, height)
    if title:
        figure.text(0.5, 1 - 12 / height, title, ha="center", va="top", fontsize=12, weight="bold")
    for cell, rect in zip(cells, rects, strict=True):
        ax = figure.add_axes(
            (
                rect.x1 / width,
                1 - rect.y2 / height,
                (rect.x2 - rect.x1) / width,
                (rect.y2 - rect.y1) / height,
            )
        )
        ax.imshow(cell.image, interpolation="none")
        ax.set_axis_off()
        ax.set_title(_shorten(cell.caption, cell_px), fontsize=TITLE_FONT, pad=4)
        annotate(
            ax,
            cell.boxes,
            table,
            width=cell.image.shape[1],
            height=cell.image.shape[0],
            size=LABEL_FONT,
        )
    if not items:
        figure.text(0.5, 0.5, "no images", ha="center", va="center", fontsize=14)
    return figure


def load_cell(
    item: LabelledImage, table: ClassTable, *, cell_px: int, to_rgb: ToRGB | None = None
) -> Cell:
    """Reads one image and its label and draws the boxes at ``cell_px`` scale."""
    problems = []
    try:
        image = fit(read_rgb(item.image, to_rgb), max_width=cell_px, max_height=cell_px)
    except MediaError:
        logger.warning("%s does not decode", item.image)
        image = np.full((cell_px * 3 // 4, cell_px, 3), 200, np.uint8)
        problems.append("image does not decode")
    try:
        boxes = item.boxes()
    except LabelError as exc:
        logger.warning("%s", exc)
        boxes = []
        problems.append("label invalid")
    count = f"{len(boxes)} box" + ("" if len(boxes) == 1 else "es")
    caption = f"{item.name} · {', '.join(problems) or count}"
    return Cell(image=draw_boxes(image, boxes, table), boxes=boxes, caption=caption)


def _shorten(text: str, cell_px: int) -> str:
    limit = max(cell_px // 7, 12)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
