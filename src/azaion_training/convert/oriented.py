"""The 14-column oriented-box text format -> `SourceAnnotation`: `parse_oriented` (pure) and
`read_oriented` (the files).

One text file per image, named like the image (``00000042.txt`` for ``00000042.png``), one box per
line, 14 whitespace-separated numbers. This is the per-image layout of the VEDAI aerial vehicle
dataset. Columns, counted from 0:

    ====  ==========================================================
    0, 1  centre x, centre y (pixels; not used: the corners decide)
    2     orientation (radians; not used)
    3     class code (see `CLASS_NAMES`)
    4, 5  "fully inside the image" and "occluded" flags (not used)
    6-9   x of the four corners, corner 1 to 4 (pixels)
    10-13 y of the four corners, corner 1 to 4 (pixels)
    ====  ==========================================================

So with the default ``corner_order="xxxxyyyy"`` corner *k* (1..4) is ``(col[5+k], col[9+k])``.
Some tools write the same 8 numbers interleaved (``x1 y1 x2 y2 x3 y3 x4 y4``); pass
``corner_order="xyxyxyxy"`` for those. The box written is the axis-aligned box that encloses the
four corners: ``x1 = min(xs)``, ``x2 = max(xs)``, ``y1 = min(ys)``, ``y2 = max(ys)``. The format
carries no image size, so the caller normalises with the size read from the image.

The class code is turned into a name through `CLASS_NAMES` (``7`` -> ``motorcycle``) and the name
goes through the class map; a code with no name stays as its digits, so ``--map 12=2`` works too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, cast

from azaion_training.convert.records import PixelBox, SourceAnnotation
from azaion_training.convert.report import Skip, SkipReason
from azaion_training.convert.sources import ImageIndex, ReadOptions, Sources, annotation_files
from azaion_training.errors import ConfigError

COLUMNS = 14
CLASS_COLUMN = 3
CORNER_COLUMNS = slice(6, 14)

CornerOrder = Literal["xxxxyyyy", "xyxyxyxy"]

CLASS_NAMES: dict[int, str] = {
    1: "car",
    2: "truck",
    4: "tractor",
    5: "camping car",
    7: "motorcycle",
    8: "bus",
    9: "van",
    10: "other",
    11: "pickup",
    23: "boat",
    31: "plane",
}
"""The VEDAI class codes. With the default map car -> 2 and truck -> 1; motorcycle is skipped;
the others are unknown until mapped (``--map pickup=2,van=2``)."""


def read_oriented(source: Path, options: ReadOptions) -> Sources:
    """Every ``*.txt`` under ``source``; each image by the text file's stem."""
    files = annotation_files(source, "*.txt", options.excluded, what="oriented-box text")
    order = cast(CornerOrder, options["corner_order"])
    annotations, skips = [], []
    for path in files:
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            skips.append(Skip(SkipReason.BAD_ANNOTATION, str(path), str(exc)))
            continue
        annotations.append(
            parse_oriented(text, name=path.stem, source=str(path), corner_order=order)
        )
    return Sources(annotations, skips, ImageIndex(source, excluded=options.excluded))


def parse_oriented(
    text: str, *, name: str, source: str, corner_order: CornerOrder = "xxxxyyyy"
) -> SourceAnnotation:
    """Parses one oriented-box text file; a line that does not parse is skipped and reported.

    Args:
        text: the file's text.
        name: the image stem the file belongs to.
        source: the file's path, for reports.
        corner_order: how columns 6-13 hold the corners (see the module docstring).
    """
    if corner_order not in ("xxxxyyyy", "xyxyxyxy"):
        raise ConfigError(f"corner order {corner_order!r} is not 'xxxxyyyy' or 'xyxyxyxy'")
    boxes: list[PixelBox] = []
    skips: list[Skip] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        parsed = parse_line(line, corner_order=corner_order)
        if isinstance(parsed, str):
            skips.append(Skip(SkipReason.BAD_BOX, where, parsed))
        else:
            label, x1, y1, x2, y2 = parsed
            boxes.append(PixelBox(label, x1, y1, x2, y2, where=where))
    return SourceAnnotation(name=name, source=source, boxes=tuple(boxes), skips=tuple(skips))


def parse_line(
    line: str, *, corner_order: CornerOrder = "xxxxyyyy"
) -> tuple[str, float, float, float, float] | str:
    """One line -> ``(class name, x1, y1, x2, y2)`` of the enclosing box, or a reason string.

    Example:
        >>> parse_line("50 50 0.785 1 1 0 50 60 50 40 40 50 60 50")  # a square turned 45 degrees
        ('car', 40.0, 40.0, 60.0, 60.0)
    """
    parts = line.split()
    if len(parts) != COLUMNS:
        return f"expected {COLUMNS} columns, got {len(parts)}"
    try:
        values = [float(part) for part in parts]
    except ValueError:
        return "a column is not a number"
    if not all(math.isfinite(v) for v in values):
        return "a column is not finite"
    code = values[CLASS_COLUMN]
    if not code.is_integer():
        return f"class code {parts[CLASS_COLUMN]!r} is not an integer"
    corners = values[CORNER_COLUMNS]
    xs, ys = (
        (corners[:4], corners[4:]) if corner_order == "xxxxyyyy" else (corners[0::2], corners[1::2])
    )
    label = CLASS_NAMES.get(int(code), str(int(code)))
    return label, min(xs), min(ys), max(xs), max(ys)
