from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from azaion_training.augment.functional import variant_seed
from azaion_training.augment.pipeline import (
    BoxDrops,
    BoxRules,
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
    ("rules", "kept_near_edge", "drops"),
    [
        # 2 of its 5 px stay inside (0.4 of its own area), 2 px wide: kept, clipped
        (BoxRules(), True, BoxDrops()),
        # less than half of it stays inside: dropped as outside
        (BoxRules(min_visible_fraction=0.5), False, BoxDrops(outside=1)),
        # 2 px is thinner than 3: dropped as thin
        (BoxRules(min_box_px=3), False, BoxDrops(thin=1)),
    ],
)
def test_box_pushed_off_the_image_is_clipped_or_dropped(
    rules: BoxRules, kept_near_edge: bool, drops: BoxDrops
) -> None:
    shift = build_pipeline([_SHIFT_LEFT])
    dropped = BoxDrops()
    _, boxes = augment(shift, _image(), [_NEAR_EDGE, _INSIDE], seed=0, rules=rules, drops=dropped)
    by_class = {box.class_id: box for box in boxes}
    assert by_class[5].xyxy == pytest.approx((0.42, 0.4, 0.62, 0.6), abs=1e-6)
    if kept_near_edge:
        assert by_class[4].xyxy == pytest.approx((0.0, 0.4, 0.02, 0.6), abs=1e-6)
    else:
        assert 4 not in by_class
    assert dropped == drops


@pytest.mark.parametrize(
    ("shift_px", "kept"),
    [
        (-80, False),  # a 100 px box pushed 80 px out: 20% stays inside, dropped
        (-60, True),  # 40% stays inside: kept, clipped
        (-130, False),  # gone entirely (the transform removes it itself): counted as outside
    ],
)
def test_a_box_pushed_mostly_out_of_the_image_is_dropped(shift_px: int, kept: bool) -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    box = Box.from_xyxy(1, 0.0, 0.4, 0.25, 0.6)  # x 0..100 px
    shift = build_pipeline([A.Affine(translate_px={"x": (shift_px, shift_px), "y": (0, 0)}, p=1)])
    dropped = BoxDrops()
    _, boxes = augment(shift, image, [box], seed=0, drops=dropped)
    assert len(boxes) == int(kept)
    assert dropped == BoxDrops(outside=int(not kept))


def test_tiny_boxes_survive_every_variant_where_they_stay_visible() -> None:
    """0.005% of a 1280x720 image is a 46 px^2 box (about 9x5 px): a car seen from 300 m."""
    image = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    side_w, side_h = 9 / 1280, 5.1 / 720
    assert side_w * side_h == pytest.approx(0.00005, rel=0.01)
    centres = [(0.3 + 0.04 * i, 0.3 + 0.05 * j) for i in range(10) for j in range(8)]
    boxes = [Box(i % 80, x, y, side_w, side_h) for i, (x, y) in enumerate(centres)]
    pipeline = build_pipeline()
    for index in range(1, 8):
        dropped = BoxDrops()
        _, moved = augment(pipeline, image, boxes, seed=variant_seed("tiny", index), drops=dropped)
        # Central boxes never leave a 1280x720 frame under SPEC 6's transforms, and a 0.8 scale
        # keeps them over 2 px: every one is kept in every variant.
        assert len(moved) == len(boxes) and dropped == BoxDrops()


def test_boxes_stay_inside_the_image_under_the_default_pipeline() -> None:
    pipeline = build_pipeline()
    boxes = [Box(0, 0.05, 0.05, 0.1, 0.1), Box(1, 0.5, 0.5, 0.9, 0.9), Box(2, 0.95, 0.5, 0.1, 0.3)]
    for index in range(1, 51):
        _, moved = augment(pipeline, _image(), boxes, seed=variant_seed("edge", index))
        for box in moved:
            x1, y1, x2, y2 = box.xyxy
            assert -1e-9 <= x1 < x2 <= 1 + 1e-9 and -1e-9 <= y1 < y2 <= 1 + 1e-9
            assert min(box.w * 100, box.h * 100) >= 2 - 1e-6  # 2 px in a 100 px image


def test_a_new_transform_is_one_entry_in_default_transforms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adding a transform: a class (here, one that paints the image grey) and one entry in
    `default_transforms` (plus a `PIPELINE_VERSION` bump, in the same module, so every sample
    is made again); `build_pipeline` and so every variant then applies it."""
    from azaion_training.augment import pipeline

    class Grey(A.ImageOnlyTransform):
        def apply(self, img: np.ndarray, **params: object) -> np.ndarray:
            return np.full_like(img, 128)

    defaults = pipeline.default_transforms
    monkeypatch.setattr(pipeline, "default_transforms", lambda: [*defaults(), Grey(p=1.0)])
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    out, boxes = augment(build_pipeline(), image, [Box(1, 0.5, 0.5, 0.2, 0.2)], seed=3)
    assert (out == 128).all() and len(boxes) == 1  # painted last; the box still travels
