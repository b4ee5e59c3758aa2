from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from pathlib import Path

import pytest

from azaion_training.errors import LabelError
from azaion_training.labels import (
    Box,
    clip_box,
    clip_boxes,
    format_label,
    parse_label,
    parse_line,
    read_label,
    write_label,
)


@pytest.mark.parametrize(
    ("text", "expected", "exception"),
    [
        ("", [], does_not_raise()),  # empty file: a valid label with no boxes
        ("\n\n  \n", [], does_not_raise()),  # blank lines only
        ("1 0.5 0.5 0.2 0.1", [Box(1, 0.5, 0.5, 0.2, 0.1)], does_not_raise()),  # no newline
        ("79 0 0 1 1\n", [Box(79, 0.0, 0.0, 1.0, 1.0)], does_not_raise()),  # bounds inclusive
        ("3.0 0.1 0.1 0.1 0.1\n", [Box(3, 0.1, 0.1, 0.1, 0.1)], does_not_raise()),  # float id
        ("80 0.5 0.5 0.1 0.1\n", None, pytest.raises(LabelError, match=r"outside 0\.\.79")),
        ("-1 0.5 0.5 0.1 0.1\n", None, pytest.raises(LabelError, match=r"outside 0\.\.79")),
        ("1.5 0.5 0.5 0.1 0.1\n", None, pytest.raises(LabelError, match=r"outside 0\.\.79")),
        ("1 1.01 0.5 0.1 0.1\n", None, pytest.raises(LabelError, match="outside")),  # > 1
        ("1 0.5 -0.1 0.1 0.1\n", None, pytest.raises(LabelError, match="outside")),  # negative
        ("1 0.5 0.5 nan 0.1\n", None, pytest.raises(LabelError, match="outside")),  # NaN
        ("1 0.5 0.5 inf 0.1\n", None, pytest.raises(LabelError, match="outside")),  # infinity
        ("1 0.5 0.5 0.1\n", None, pytest.raises(LabelError, match="got 4")),  # too few
        ("1 0.5 0.5 0.1 0.1 0.9\n", None, pytest.raises(LabelError, match="got 6")),  # too many
        ("car 0.5 0.5 0.1 0.1\n", None, pytest.raises(LabelError, match="not a number")),
        ("1 0.5 x 0.1 0.1\n", None, pytest.raises(LabelError, match="not a number")),
    ],
)
def test_parse_label(text: str, expected: list[Box] | None, exception) -> None:
    with exception:
        assert parse_label(text, source="a.txt") == expected


def test_error_names_file_and_line() -> None:
    with pytest.raises(LabelError) as info:
        parse_label("1 0.5 0.5 0.1 0.1\n\n2 0.5 0.5 2 0.1\n", source="labels/x.txt")
    assert info.value.source == "labels/x.txt"
    assert info.value.line == 3
    assert str(info.value).startswith("labels/x.txt:3: ")


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (Box(1, 0.5, 0.5, 0.2, 0.2), Box(1, 0.5, 0.5, 0.2, 0.2)),  # inside: unchanged
        (Box(1, 0.05, 0.5, 0.2, 0.2), Box(1, 0.075, 0.5, 0.15, 0.2)),  # straddles the left edge
        (Box(2, 1.0, 1.0, 0.4, 0.4), Box(2, 0.9, 0.9, 0.2, 0.2)),  # straddles a corner
        (Box(1, 0.0, 0.5, 0.01, 0.01), Box(1, 0.0025, 0.5, 0.005, 0.01)),  # tiny: half kept
        (Box(1, 1.2, 0.5, 0.2, 0.2), None),  # wholly outside
        (Box(1, 0.5, 0.5, 0.0, 0.5), None),  # degenerate
    ],
)
def test_clip_box(box: Box, expected: Box | None) -> None:
    clipped = clip_box(box)
    if expected is None:
        assert clipped is None
    else:
        assert clipped is not None
        assert clipped.class_id == expected.class_id
        assert clipped.xyxy == pytest.approx(expected.xyxy)


def test_min_area_is_a_parameter() -> None:
    box = Box(0, 0.5, 0.5, 0.05, 0.05)  # area 0.0025
    assert clip_boxes([box], min_area=0.002) == [box]
    assert clip_boxes([box], min_area=0.003) == []


def test_format_round_trips_and_is_stable() -> None:
    boxes = [Box(0, 0.123456789, 0.5, 0.25, 0.75), Box(41, 1.0, 0.0, 0.5, 0.5)]
    text = format_label(boxes)
    assert text == "0 0.123457 0.500000 0.250000 0.750000\n41 1.000000 0.000000 0.500000 0.500000\n"
    assert format_label(parse_label(text)) == text
    assert format_label([]) == ""


def test_xyxy_round_trip() -> None:
    box = Box.from_xyxy(3, 0.1, 0.2, 0.5, 0.8)
    assert (box.cx, box.cy, box.w, box.h) == pytest.approx((0.3, 0.5, 0.4, 0.6))
    assert box.xyxy == pytest.approx((0.1, 0.2, 0.5, 0.8))


def test_parse_line_without_location() -> None:
    with pytest.raises(LabelError, match=r"^<label>: "):
        parse_line("x")


def test_read_and_write_label(tmp_path: Path) -> None:
    path = tmp_path / "labels" / "a.txt"
    write_label(path, [Box(5, 0.5, 0.5, 0.1, 0.1)])
    assert read_label(path) == [Box(5, 0.5, 0.5, 0.1, 0.1)]
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]  # no temporary left


def test_read_label_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(LabelError, match="cannot read label"):
        read_label(path)
