"""What every format parser produces, and the pure step from pixel boxes to YOLO boxes.

A parser turns one source annotation (a VOC XML file, an oriented-box text file, one COCO image
entry) into a `SourceAnnotation`: the image it belongs to and its boxes as `PixelBox` values
(axis-aligned, in pixels of the source image, with the source's class name). `to_yolo` then
resolves the class names through a `ClassMap`, checks each box against the image and normalises
it. Everything here is pure; `runner` does the file I/O.

Example:
    >>> from azaion_training.convert.classmap import ClassMap
    >>> note = SourceAnnotation(name="a", source="a.xml", boxes=(PixelBox("car", 10, 20, 30, 60),))
    >>> boxes, skips = to_yolo(note, width=100, height=100, class_map=ClassMap.default())
    >>> boxes[0].to_line(), skips
    ('2 0.200000 0.400000 0.200000 0.400000', [])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from azaion_training.convert.classmap import ClassMap
from azaion_training.convert.report import Skip, SkipReason
from azaion_training.labels import Box

DEFAULT_EDGE_TOLERANCE_PX = 0.5
"""How far (in pixels) a box may cross the image border and still be clipped rather than skipped."""


@dataclass(frozen=True)
class PixelBox:
    """An axis-aligned box in source-image pixels, top left ``(x1, y1)``, bottom right ``(x2, y2)``.

    Attributes:
        label: the class as the source names it (``"car"``, ``"7"``, a COCO category name).
        where: where the box came from, for reports (``"a.txt:3"``, ``"a.xml object 2"``).
    """

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    where: str = ""


@dataclass(frozen=True)
class SourceAnnotation:
    """One image's annotation as read from a foreign format.

    Attributes:
        name: the output stem: ``images/{name}{ext}`` and ``labels/{name}.txt``.
        source: the annotation file (and entry) it was read from, for reports.
        image: the image file name as the annotation records it (may hold sub-folders), or
            ``None`` when the format does not name it (then it is looked up by ``name``).
        size: ``(width, height)`` as the annotation records it, or ``None``.
        boxes: the boxes that parsed.
        skips: boxes that were dropped while parsing (bad lines, crowd annotations, ...).
    """

    name: str
    source: str
    image: str | None = None
    size: tuple[int, int] | None = None
    boxes: tuple[PixelBox, ...] = ()
    skips: tuple[Skip, ...] = field(default=())


def to_yolo(
    annotation: SourceAnnotation,
    *,
    width: int,
    height: int,
    class_map: ClassMap,
    edge_tolerance_px: float = DEFAULT_EDGE_TOLERANCE_PX,
) -> tuple[list[Box], list[Skip]]:
    """Converts an annotation's boxes for an image of ``width`` x ``height`` pixels.

    A box is skipped (and reported) when its class is unknown or skipped by the map, when it
    reaches further than ``edge_tolerance_px`` outside the image, or when it has no area. A box
    that crosses the border by less than the tolerance is clipped to the image.

    Returns:
        The YOLO boxes (normalised ``class cx cy w h``) and the skips, parse-time skips first.
    """
    boxes: list[Box] = []
    skips: list[Skip] = list(annotation.skips)
    for pixel_box in annotation.boxes:
        where = pixel_box.where or annotation.source
        resolved = class_map.resolve(pixel_box.label)
        if isinstance(resolved, SkipReason):
            skips.append(Skip(resolved, where, repr(pixel_box.label)))
            continue
        box, problem = _normalise(
            pixel_box, class_id=resolved, width=width, height=height, tolerance=edge_tolerance_px
        )
        if problem is not None:
            skips.append(Skip(problem[0], where, problem[1]))
        else:
            boxes.append(box)
    return boxes, skips


def _normalise(
    pixel_box: PixelBox, *, class_id: int, width: int, height: int, tolerance: float
) -> tuple[Box, None] | tuple[None, tuple[SkipReason, str]]:
    x1, y1, x2, y2 = pixel_box.x1, pixel_box.y1, pixel_box.x2, pixel_box.y2
    shown = f"x {_num(x1)}..{_num(x2)}, y {_num(y1)}..{_num(y2)} in {width}x{height}"
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None, (SkipReason.BAD_BOX, shown)
    if x2 <= x1 or y2 <= y1:
        return None, (SkipReason.DEGENERATE, shown)
    outside = (
        x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance
    )
    if outside:
        return None, (SkipReason.OUT_OF_RANGE, shown)
    x1, x2 = max(x1, 0.0), min(x2, float(width))
    y1, y2 = max(y1, 0.0), min(y2, float(height))
    if x2 <= x1 or y2 <= y1:
        return None, (SkipReason.DEGENERATE, shown)
    return Box.from_xyxy(class_id, x1 / width, y1 / height, x2 / width, y2 / height), None


def _num(value: float) -> str:
    return f"{value:g}"
