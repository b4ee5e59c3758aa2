from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from azaion_training.augment.functional import variant_seed
from azaion_training.augment.pipeline import (
    augment,
    build_pipeline,
    default_transforms,
    seed_pipeline,
)
from azaion_training.labels import Box


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (100, 100, 3), dtype=np.uint8)


def test_transforms_follow_the_spec() -> None:
    transforms = default_transforms()
    assert [(type(t).__name__, t.p) for t in transforms] == [
        ("HorizontalFlip", 0.6),
        ("RandomBrightnessContrast", 0.4),
        ("Affine", 0.8),
        ("MotionBlur", 0.1),
        ("HueSaturationValue", 0.4),
    ]
    affine = transforms[2]
    assert affine.scale == {"x": (0.8, 1.2), "y": (0.8, 1.2)}
    assert affine.rotate == (-35, 35)
    assert affine.shear == {"x": (-10, 10), "y": (-10, 10)}


def test_each_transform_gets_its_own_seed() -> None:
    # Compose.set_random_seed alone gives all transforms the same seed, which makes their
    # coin flips identical (RandomBrightnessContrast and HueSaturationValue would always pair).
    pipeline = build_pipeline()
    seed_pipeline(pipeline, variant_seed("a", 1))
    assert len({t.seed for t in pipeline.transforms}) == len(pipeline.transforms)


def test_transforms_fire_independently() -> None:
    pipeline = A.Compose(default_transforms(), save_applied_params=True)
    combinations = set()
    for index in range(1, 201):
        seed_pipeline(pipeline, variant_seed("a", index))
        applied = pipeline(image=_image())["applied_transforms"]
        combinations.add(tuple(sorted(name for name, _ in applied)))
    # 5 transforms -> up to 32 combinations; with one shared seed there are only 6.
    assert len(combinations) > 12


def test_same_seed_same_variant() -> None:
    boxes = [Box(1, 0.5, 0.5, 0.3, 0.2)]
    first = augment(build_pipeline(), _image(), boxes, seed=42)
    second = augment(build_pipeline(), _image(), boxes, seed=42)
    assert np.array_equal(first[0], second[0])
    assert first[1] == second[1]


def test_boxes_follow_a_horizontal_flip() -> None:
    flip = build_pipeline([A.HorizontalFlip(p=1.0)])
    _, boxes = augment(flip, _image(), [Box(2, 0.2, 0.4, 0.1, 0.2)], seed=0)
    assert [box.class_id for box in boxes] == [2]
    assert boxes[0].xyxy == pytest.approx((0.75, 0.3, 0.85, 0.5), abs=1e-6)


# A box at x 5..10 px, y 40..60 px of a 100x100 image (area 0.01); shifting the image 8 px to
# the left leaves x 0..2 px visible, i.e. an area of 0.02 * 0.2 = 0.004.
_SHIFT_LEFT = A.Affine(translate_px={"x": (-8, -8), "y": (0, 0)}, p=1.0)
_NEAR_EDGE = Box.from_xyxy(4, 0.05, 0.4, 0.10, 0.6)
_INSIDE = Box.from_xyxy(5, 0.5, 0.4, 0.7, 0.6)


@pytest.mark.parametrize(
    ("min_area", "kept_near_edge"),
    [
        (0.001, True),  # the clipped remainder (0.004) is above the minimum: kept, clipped
        (0.005, False),  # pushed below the minimum area: dropped
    ],
)
def test_box_pushed_off_the_image_is_clipped_or_dropped(
    min_area: float, kept_near_edge: bool
) -> None:
    shift = build_pipeline([_SHIFT_LEFT])
    _, boxes = augment(shift, _image(), [_NEAR_EDGE, _INSIDE], seed=0, min_area=min_area)
    by_class = {box.class_id: box for box in boxes}
    assert by_class[5].xyxy == pytest.approx((0.42, 0.4, 0.62, 0.6), abs=1e-6)
    if kept_near_edge:
        assert by_class[4].xyxy == pytest.approx((0.0, 0.4, 0.02, 0.6), abs=1e-6)
    else:
        assert 4 not in by_class


def test_boxes_stay_inside_the_image_under_the_default_pipeline() -> None:
    pipeline = build_pipeline()
    boxes = [Box(0, 0.05, 0.05, 0.1, 0.1), Box(1, 0.5, 0.5, 0.9, 0.9), Box(2, 0.95, 0.5, 0.1, 0.3)]
    for index in range(1, 51):
        _, moved = augment(pipeline, _image(), boxes, seed=variant_seed("edge", index))
        for box in moved:
            x1, y1, x2, y2 = box.xyxy
            assert -1e-9 <= x1 < x2 <= 1 + 1e-9 and -1e-9 <= y1 < y2 <= 1 + 1e-9
            assert box.area >= 0.0001
