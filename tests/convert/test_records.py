"""`to_yolo`: class resolution, border checks and normalisation, to the coordinate."""

from __future__ import annotations

import pytest

from azaion_training.convert import ClassMap, PixelBox, SkipReason, SourceAnnotation, to_yolo
from azaion_training.labels import Box

W, H = 200, 100


@pytest.mark.parametrize(
    ("box", "expected", "reason"),
    [
        # inside: (20..60, 10..50) -> cx 40/200, cy 30/100, w 40/200, h 40/100
        (PixelBox("Truck", 20, 10, 60, 50), Box(1, 0.2, 0.3, 0.2, 0.4), None),
        # the whole image
        (PixelBox("Car", 0, 0, 200, 100), Box(2, 0.5, 0.5, 1.0, 1.0), None),
        # crosses the border by 0.4 px (< 0.5 tolerance): clipped to 0..200
        (PixelBox("Taxi", 100, 50, 200.4, 100), Box(2, 0.75, 0.75, 0.5, 0.5), None),
        (PixelBox("Taxi", -0.5, -0.5, 100, 50), Box(2, 0.25, 0.25, 0.5, 0.5), None),
        # crosses by 1 px: out of range
        (PixelBox("Truck", 100, 50, 201, 100), None, SkipReason.OUT_OF_RANGE),
        (PixelBox("Truck", -3, 10, 20, 20), None, SkipReason.OUT_OF_RANGE),
        # entirely outside
        (PixelBox("Truck", 300, 10, 320, 20), None, SkipReason.OUT_OF_RANGE),
        # no width, no height, inverted
        (PixelBox("Truck", 50, 10, 50, 20), None, SkipReason.DEGENERATE),
        (PixelBox("Truck", 10, 20, 50, 20), None, SkipReason.DEGENERATE),
        (PixelBox("Truck", 60, 10, 20, 50), None, SkipReason.DEGENERATE),
        # a sliver on the border that clipping reduces to nothing
        (PixelBox("Truck", 200, 10, 200.3, 20), None, SkipReason.DEGENERATE),
        # not finite
        (PixelBox("Truck", float("nan"), 10, 20, 20), None, SkipReason.BAD_BOX),
        # classes
        (PixelBox("Motorcycle", 20, 10, 60, 50), None, SkipReason.SKIPPED_CLASS),
        (PixelBox("Bus", 20, 10, 60, 50), None, SkipReason.UNKNOWN_CLASS),
    ],
)
def test_to_yolo(box: PixelBox, expected: Box | None, reason: SkipReason | None) -> None:
    note = SourceAnnotation(name="a", source="a.xml", boxes=(box,))
    boxes, skips = to_yolo(note, width=W, height=H, class_map=ClassMap.default())
    if expected is None:
        assert boxes == []
        assert [s.reason for s in skips] == [reason]
    else:
        assert skips == []
        (got,) = boxes
        assert got.class_id == expected.class_id
        assert (got.cx, got.cy, got.w, got.h) == pytest.approx(
            (expected.cx, expected.cy, expected.w, expected.h), abs=1e-12
        )


def test_tolerance_is_a_parameter() -> None:
    note = SourceAnnotation(name="a", source="a", boxes=(PixelBox("Truck", 100, 50, 202, 100),))
    strict, skips = to_yolo(note, width=W, height=H, class_map=ClassMap.default())
    assert strict == [] and skips[0].reason is SkipReason.OUT_OF_RANGE
    loose, skips = to_yolo(
        note, width=W, height=H, class_map=ClassMap.default(), edge_tolerance_px=2
    )
    assert skips == [] and loose[0].xyxy == pytest.approx((0.5, 0.5, 1.0, 1.0))


def test_skips_name_the_box_and_keep_parse_time_skips_first() -> None:
    from azaion_training.convert import Skip

    earlier = Skip(SkipReason.BAD_BOX, "a.txt:1", "expected 14 columns, got 3")
    note = SourceAnnotation(
        name="a",
        source="a.txt",
        boxes=(PixelBox("Bus", 1, 1, 5, 5, where="a.txt:2"),),
        skips=(earlier,),
    )
    _, skips = to_yolo(note, width=W, height=H, class_map=ClassMap.default())
    assert skips == [earlier, Skip(SkipReason.UNKNOWN_CLASS, "a.txt:2", "'Bus'")]
    assert str(skips[1]) == "a.txt:2: unknown class ('Bus')"
