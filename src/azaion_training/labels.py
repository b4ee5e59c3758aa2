"""YOLO labels: the one place that parses, validates, clips and writes them.

A label file holds one ``class cx cy w h`` line per box; the coordinates are normalised to
``[0, 1]``. A label is invalid when a line does not parse, the class id is outside ``0..79`` or
a value is outside ``[0, 1]`` (NaN included). Blank lines are ignored; an empty file is a valid
label with no boxes.

Parsing and formatting are pure; `read_label` and `write_label` do the file I/O (the write is
atomic).

Example:
    >>> boxes = parse_label("1 0.5 0.5 0.2 0.1\\n")
    >>> boxes[0].class_id, boxes[0].xyxy
    (1, (0.4, 0.45, 0.6, 0.55))
    >>> format_label(boxes)
    '1 0.500000 0.500000 0.200000 0.100000\\n'
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from azaion_training.classes import NUM_SLOTS
from azaion_training.errors import LabelError
from azaion_training.fs import atomic_write_text

_COLUMNS = 5


@dataclass(frozen=True, slots=True)
class Box:
    """One box in YOLO form: a class slot and a normalised centre, width and height."""

    class_id: int
    cx: float
    cy: float
    w: float
    h: float

    @classmethod
    def from_xyxy(cls, class_id: int, x1: float, y1: float, x2: float, y2: float) -> Box:
        """A box from normalised corners ``(x1, y1)`` (top left) and ``(x2, y2)``."""
        return cls(class_id=class_id, cx=(x1 + x2) / 2, cy=(y1 + y2) / 2, w=x2 - x1, h=y2 - y1)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """Normalised corners ``(x1, y1, x2, y2)``."""
        return (
            self.cx - self.w / 2,
            self.cy - self.h / 2,
            self.cx + self.w / 2,
            self.cy + self.h / 2,
        )

    @property
    def area(self) -> float:
        """Area as a fraction of the image."""
        return self.w * self.h

    def to_line(self) -> str:
        """The label line, six decimals per value, without a newline."""
        return f"{self.class_id} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"


def parse_line(line: str, *, source: str = "<label>", line_no: int | None = None) -> Box:
    """Parses and validates one ``class cx cy w h`` line.

    Raises:
        LabelError: naming the source, the line and what is wrong.
    """
    parts = line.split()
    try:  # the common case first: five numbers in range (NaN fails the comparisons)
        class_id, cx, cy, w, h = map(float, parts)
    except ValueError:
        pass  # the checks below say what is wrong
    else:
        if class_id.is_integer() and 0 <= class_id < NUM_SLOTS and _in_unit(cx, cy, w, h):
            return Box(int(class_id), cx, cy, w, h)
    if len(parts) != _COLUMNS:
        raise LabelError(
            f"expected {_COLUMNS} columns 'class cx cy w h', got {len(parts)}",
            source=source,
            line=line_no,
        )
    class_id = _parse_class_id(parts[0], source=source, line_no=line_no)
    coordinates = zip(parts[1:], "xywh", strict=True)
    values = [_parse_coordinate(p, name, source, line_no) for p, name in coordinates]
    return Box(class_id, *values)


def _in_unit(*values: float) -> bool:
    return all(0.0 <= value <= 1.0 for value in values)


def parse_label(text: str, *, source: str = "<label>") -> list[Box]:
    """Parses a whole label text; blank lines are skipped.

    Raises:
        LabelError: at the first invalid line.
    """
    return [
        parse_line(line, source=source, line_no=number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def format_label(boxes: Iterable[Box]) -> str:
    """The label text of ``boxes``: one line each, newline-terminated; empty for no boxes."""
    return "".join(box.to_line() + "\n" for box in boxes)


def clip_box(box: Box, *, min_area: float = 0.0) -> Box | None:
    """Clips a box to the image; ``None`` when nothing is left or less than ``min_area``.

    ``min_area`` is a fraction of the image; the default keeps every box that is not empty (SPEC
    6: small aerial targets keep their labels).
    """
    corners = box.xyxy
    x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in corners)
    if (x1, y1, x2, y2) == corners:
        return box if box.area >= min_area and box.w > 0 and box.h > 0 else None
    if x2 <= x1 or y2 <= y1 or (x2 - x1) * (y2 - y1) < min_area:
        return None
    return Box.from_xyxy(box.class_id, x1, y1, x2, y2)


def clip_boxes(boxes: Iterable[Box], *, min_area: float = 0.0) -> list[Box]:
    """Clips every box to the image and drops those below ``min_area``."""
    clipped = (clip_box(box, min_area=min_area) for box in boxes)
    return [box for box in clipped if box is not None]


def read_label(path: Path | str, *, dir_fd: int | None = None) -> list[Box]:
    """Reads and validates a label file (``path`` relative to the open folder ``dir_fd``, if
    given).

    Raises:
        LabelError: the file is unreadable, not UTF-8, or holds an invalid line.
    """
    try:
        text = _read_small(path, dir_fd=dir_fd).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"cannot read label: {exc}", source=str(path)) from exc
    return parse_label(text, source=str(path))


def _read_small(path: Path | str, *, dir_fd: int | None) -> bytes:
    """A small file's bytes in four system calls (``open().read()`` makes nine; dataset
    formation reads hundreds of thousands of labels)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_label(path: Path, boxes: Iterable[Box]) -> None:
    """Writes a label file atomically (temporary name, fsync, rename)."""
    atomic_write_text(path, format_label(boxes))


def _parse_class_id(token: str, *, source: str, line_no: int | None) -> int:
    try:
        value = float(token)
    except ValueError:
        raise LabelError(
            f"class id {token!r} is not a number", source=source, line=line_no
        ) from None
    if not value.is_integer() or not 0 <= value < NUM_SLOTS:
        raise LabelError(
            f"class id {token!r} is outside 0..{NUM_SLOTS - 1}", source=source, line=line_no
        )
    return int(value)


def _parse_coordinate(token: str, name: str, source: str, line_no: int | None) -> float:
    try:
        value = float(token)
    except ValueError:
        raise LabelError(f"{name} {token!r} is not a number", source=source, line=line_no) from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise LabelError(f"{name} {token!r} is outside [0, 1]", source=source, line=line_no)
    return value
