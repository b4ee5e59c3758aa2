"""The 14-column oriented format: columns 6-13 are x1..x4 then y1..y4 (0-based)."""

from __future__ import annotations

import math

import pytest

from azaion_training.convert import ClassMap, PixelBox, SkipReason, parse_oriented, to_yolo
from azaion_training.convert.oriented import parse_line
from azaion_training.errors import ConfigError

from .conftest import oriented_line


def _rotated(cx: float, cy: float, w: float, h: float, degrees: float) -> list[tuple[float, float]]:
    """The corners of a ``w`` x ``h`` rectangle centred on ``(cx, cy)``, turned by ``degrees``."""
    a = math.radians(degrees)
    half = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return [
        (cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a))
        for x, y in half
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # axis-aligned rectangle 10..50 x 20..40, corners listed clockwise
        ("30 30 0 2 1 0 10 50 50 10 20 20 40 40", ("truck", 10.0, 20.0, 50.0, 40.0)),
        # a 20x20 square turned 45 degrees about (50, 50): a diamond reaching 50 +- 10*sqrt(2)/...
        # corners (50,40) (60,50) (50,60) (40,50) -> enclosing box 40..60 x 40..60
        ("50 50 0.785 1 1 0 50 60 50 40 40 50 60 50", ("car", 40.0, 40.0, 60.0, 60.0)),
        # unnamed class code stays as digits
        ("5 5 0 12 1 0 1 9 9 1 2 2 8 8", ("12", 1.0, 2.0, 9.0, 8.0)),
        # named VEDAI codes
        ("5 5 0 7 1 0 1 9 9 1 2 2 8 8", ("motorcycle", 1.0, 2.0, 9.0, 8.0)),
        ("5 5 0 11.0 1 0 1 9 9 1 2 2 8 8", ("pickup", 1.0, 2.0, 9.0, 8.0)),
        # wrong shapes
        ("5 5 0 1 1 0 1 9 9 1 2 2 8", "expected 14 columns, got 13"),
        ("0 5 5 0 1 1 0 1 9 9 1 2 2 8 8", "expected 14 columns, got 15"),
        ("5 5 0 1 1 0 1 9 9 one 2 2 8 8", "a column is not a number"),
        ("5 5 0 1 1 0 1 9 9 nan 2 2 8 8", "a column is not finite"),
        ("5 5 0 1.5 1 0 1 9 9 1 2 2 8 8", "class code '1.5' is not an integer"),
    ],
)
def test_parse_line(line: str, expected: object) -> None:
    assert parse_line(line) == expected


def test_rotated_box_30_degrees_encloses_all_corners() -> None:
    corners = _rotated(100, 60, 40, 20, 30)
    label, x1, y1, x2, y2 = parse_line(oriented_line(2, corners))  # type: ignore[misc]
    # half extents of a turned rectangle: (w cos a + h sin a) / 2 and (w sin a + h cos a) / 2
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    hx, hy = (40 * c + 20 * s) / 2, (40 * s + 20 * c) / 2
    assert label == "truck"
    assert (x1, y1, x2, y2) == pytest.approx((100 - hx, 60 - hy, 100 + hx, 60 + hy), abs=1e-9)


def test_interleaved_corner_order() -> None:
    # the rectangle 10..50 x 20..40 written x1 y1 x2 y2 x3 y3 x4 y4
    line = "30 30 0 2 1 0 10 20 50 20 50 40 10 40"
    assert parse_line(line, corner_order="xyxyxyxy") == ("truck", 10.0, 20.0, 50.0, 40.0)
    # read with the default order the same numbers are other corners: xs 10 20 50 20, ys 50 40 10 40
    assert parse_line(line) == ("truck", 10.0, 10.0, 50.0, 50.0)


def test_parse_oriented_skips_bad_lines_and_numbers_them() -> None:
    text = "\n".join(
        [
            "30 30 0 2 1 0 10 50 50 10 20 20 40 40",
            "",
            "garbage",
            "5 5 0 1 1 0 3 3 3 3 2 2 8 8",  # all x equal: a degenerate box, kept for to_yolo
        ]
    )
    note = parse_oriented(text, name="00000042", source="a/00000042.txt")
    assert note.name == "00000042" and note.image is None and note.size is None
    assert note.boxes == (
        PixelBox("truck", 10, 20, 50, 40, where="a/00000042.txt:1"),
        PixelBox("car", 3, 2, 3, 8, where="a/00000042.txt:4"),
    )
    assert [(s.reason, s.where) for s in note.skips] == [(SkipReason.BAD_BOX, "a/00000042.txt:3")]
    boxes, skips = to_yolo(note, width=100, height=50, class_map=ClassMap.default())
    # truck: x 10..50 of 100, y 20..40 of 50
    assert [b.to_line() for b in boxes] == ["1 0.300000 0.600000 0.400000 0.400000"]
    assert [s.reason for s in skips] == [SkipReason.BAD_BOX, SkipReason.DEGENERATE]


def test_unknown_corner_order_is_refused() -> None:
    with pytest.raises(ConfigError, match="corner order"):
        parse_oriented("", name="a", source="a", corner_order="yyyyxxxx")  # type: ignore[arg-type]
