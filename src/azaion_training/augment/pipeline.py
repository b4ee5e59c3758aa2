"""The augmentation pipeline of SPEC section 6, seeded per variant.

Transforms, in order (KEEP, the original's list): HorizontalFlip p=0.6; RandomBrightnessContrast
p=0.4; Affine (scale 0.8-1.2, rotate ±35°, shear ±10°) p=0.8; MotionBlur p=0.1;
HueSaturationValue p=0.4. Boxes travel with the image in YOLO form; afterwards each is clipped to
the image and dropped only by the rules of SPEC 6 (`BoxRules`, applied by `filter_boxes`): when
less than ``min_visible_fraction`` of its own area stays inside the image, or when it ends thinner
than ``min_box_px`` pixels. Never by a fraction of the image area: a 10x6 px car seen from 300 m is
a real target. `augment` counts what it dropped and why in a `BoxDrops`.

Each variant reseeds the pipeline before use (`seed_pipeline`). Albumentations' own
``Compose.set_random_seed`` hands the *same* seed to every transform, so their coin flips would be
the same number and, for example, RandomBrightnessContrast and HueSaturationValue (both p=0.4)
would always fire together; we give each transform a seed of its own instead.

Example:
    >>> pipeline = build_pipeline()
    >>> image = np.zeros((96, 128, 3), np.uint8)
    >>> out, boxes = augment(pipeline, image, [Box(0, 0.5, 0.5, 0.2, 0.2)], seed=1)
    >>> out.shape[:2], len(boxes)
    ((96, 128), 1)
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from azaion_training.augment.functional import arrays_to_boxes, boxes_to_arrays, child_seeds
from azaion_training.boxes import cut_to_window
from azaion_training.labels import Box

if TYPE_CHECKING:
    import albumentations as A


@functools.cache
def albumentations() -> ModuleType:
    """Albumentations, imported on first use without the two things its ``__init__`` does on the
    side (nothing happens when this module is imported).

    It asks PyPI for a newer version (a network call with a 2 s timeout, at every import, in every
    worker: against SPEC section 7, and slow offline), unless ``NO_ALBUMENTATIONS_UPDATE`` is set;
    and it imports its PyTorch helpers, and so torch (seconds per process), whenever torch is
    installed. We use neither: the variable is set for the import only (the environment is left
    as it was), and the helpers are skipped for this import only (``albumentations.pytorch``
    stays importable for whoever wants it later).
    """
    before = os.environ.get(_NO_UPDATE)
    skip_torch = "albumentations" not in sys.modules and "albumentations.pytorch" not in sys.modules
    os.environ[_NO_UPDATE] = "1"
    if skip_torch:
        sys.modules["albumentations.pytorch"] = None  # type: ignore[assignment]
    try:
        import albumentations
    finally:
        if skip_torch:
            del sys.modules["albumentations.pytorch"]
        if before is None:
            del os.environ[_NO_UPDATE]
        else:
            os.environ[_NO_UPDATE] = before
    return albumentations


_NO_UPDATE = "NO_ALBUMENTATIONS_UPDATE"


PIPELINE_VERSION = 2
"""Bump when the transforms change: every annotation's samples are then made again."""


def default_transforms() -> list[A.BasicTransform]:
    """The transforms of SPEC section 6, in order, with their probabilities."""
    A = albumentations()
    return [
        A.HorizontalFlip(p=0.6),
        A.RandomBrightnessContrast(p=0.4),
        A.Affine(scale=(0.8, 1.2), rotate=(-35, 35), shear=(-10, 10), p=0.8),
        A.MotionBlur(p=0.1),
        A.HueSaturationValue(p=0.4),
    ]


def build_pipeline(transforms: Sequence[A.BasicTransform] | None = None) -> A.Compose:
    """A Compose over ``transforms`` (default: `default_transforms`) that carries YOLO boxes.

    Boxes go in and come out as YOLO ``cx, cy, w, h`` with a ``class_ids`` label field; they are
    clipped to the image on the way in and filtered once, after the last transform (only the
    flip and the affine move boxes, so checking after each transform would change nothing).
    """
    A = albumentations()
    pipeline = A.Compose(
        list(transforms if transforms is not None else default_transforms()),
        bbox_params=A.BboxParams(
            format="yolo", label_fields=["class_ids"], clip=True, check_each_transform=False
        ),
    )
    processor = pipeline.processors["bboxes"]
    pipeline.processors["bboxes"] = _ruled_boxes()(processor.params)
    return pipeline


@dataclass(frozen=True)
class BoxRules:
    """When a variant drops a box (SPEC 6); the original sample keeps every box."""

    min_visible_fraction: float = 0.3
    """Dropped when less than this fraction of its own area stays inside the image."""
    min_box_px: float = 2.0
    """Dropped when its clipped width or height is under this many pixels."""


@dataclass
class BoxDrops:
    """Boxes the variants dropped, by reason: mostly ``outside`` the image, or too ``thin``."""

    outside: int = 0
    thin: int = 0

    def add(self, other: BoxDrops) -> None:
        self.outside += other.outside
        self.thin += other.thin


def filter_boxes(
    boxes: np.ndarray, shape: Mapping[str, int], rules: BoxRules
) -> tuple[np.ndarray, BoxDrops]:
    """Clips boxes (Albumentations' normalised ``x1 y1 x2 y2`` plus extra columns) to the image
    and drops those that break ``rules``; returns the kept rows and what was dropped."""
    if len(boxes) == 0:
        return boxes, BoxDrops()
    size = np.array([shape["width"], shape["height"]] * 2, np.float64)
    _, outside, thin = cut_to_window(
        boxes[:, :4] * size,
        (0.0, 0.0, float(shape["width"]), float(shape["height"])),
        min_visible_fraction=rules.min_visible_fraction,
        min_box_px=rules.min_box_px,
    )
    clipped = boxes.copy()
    clipped[:, :4] = np.clip(boxes[:, :4], 0.0, 1.0)  # the normalised form, as before
    drops = BoxDrops(outside=int(outside.sum()), thin=int(thin.sum()))
    return clipped[~outside & ~thin], drops


@functools.cache
def _ruled_boxes() -> type:
    """Albumentations' box processor with `filter_boxes` as its final filter (a class made on
    first use, as Albumentations is imported then).

    ``rules`` is set before each call; ``seen`` and ``drops`` tell what the last call filtered
    (a transform may remove a box that left the image entirely before the filter sees it).
    """
    from albumentations.core.bbox_utils import BboxProcessor

    class RuledBoxes(BboxProcessor):  # type: ignore[misc, valid-type]
        rules = BoxRules()
        seen = 0
        drops = BoxDrops()

        def filter(self, data: np.ndarray, shape: Mapping[str, int]) -> np.ndarray:  # type: ignore[override]
            self.seen = len(data)
            kept, self.drops = filter_boxes(data, shape, self.rules)
            return kept

    return RuledBoxes


def seed_pipeline(pipeline: A.Compose, seed: int) -> None:
    """Reseeds ``pipeline`` and gives each of its transforms an independent seed drawn from it."""
    pipeline.set_random_seed(seed)
    for transform, child in zip(
        pipeline.transforms, child_seeds(seed, len(pipeline.transforms)), strict=True
    ):
        transform.set_random_seed(child)


def augment(
    pipeline: A.Compose,
    image: np.ndarray,
    boxes: Sequence[Box],
    *,
    seed: int,
    rules: BoxRules = BoxRules(),
    drops: BoxDrops | None = None,
) -> tuple[np.ndarray, list[Box]]:
    """One variant of an image and its boxes.

    Args:
        pipeline: from `build_pipeline`; it is reseeded, so one pipeline serves every variant.
        image: BGR uint8, shape ``(h, w, 3)``.
        boxes: the source boxes (normalised YOLO).
        seed: the variant's seed (`functional.variant_seed`); the same seed gives the same result.
        rules: when a moved box is dropped (`filter_boxes`).
        drops: if given, what this variant dropped is added to it.

    Returns:
        The augmented image (same shape and dtype) and its clipped, filtered boxes.
    """
    seed_pipeline(pipeline, seed)
    bboxes, class_ids = boxes_to_arrays(boxes)
    processor = pipeline.processors["bboxes"]
    if isinstance(processor, _ruled_boxes()):
        processor.rules, processor.seen, processor.drops = rules, len(boxes), BoxDrops()
    result = pipeline(image=image, bboxes=bboxes, class_ids=class_ids)
    if drops is not None and isinstance(processor, _ruled_boxes()):
        gone = BoxDrops(outside=len(boxes) - processor.seen)  # removed by a transform
        gone.add(processor.drops)
        drops.add(gone)
    return result["image"], arrays_to_boxes(result["bboxes"], result["class_ids"])
