"""The augmentation pipeline of SPEC section 6, seeded per variant.

Transforms, in order (KEEP, the original's list): HorizontalFlip p=0.6; RandomBrightnessContrast
p=0.4; Affine (scale 0.8-1.2, rotate ±35°, shear ±10°) p=0.8; MotionBlur p=0.1;
HueSaturationValue p=0.4. Boxes travel with the image in YOLO form; afterwards they are clipped
to the image and those below the minimum area are dropped (`labels.clip_boxes`).

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

import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from azaion_training.augment.functional import arrays_to_boxes, boxes_to_arrays, child_seeds
from azaion_training.labels import MIN_BOX_AREA, Box, clip_boxes

if TYPE_CHECKING:
    import albumentations as A


def _import_albumentations() -> ModuleType:
    """Imports Albumentations without the two things its ``__init__`` does on the side.

    It asks PyPI for a newer version (a network call with a 2 s timeout, at every import, in every
    worker: against SPEC section 7, and slow offline), unless ``NO_ALBUMENTATIONS_UPDATE`` is set;
    and it imports its PyTorch helpers, and so torch (seconds per process), whenever torch is
    installed. We use neither, so the first is switched off and the second skipped for this
    import only (``albumentations.pytorch`` stays importable for whoever wants it later).
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    skip_torch = "albumentations" not in sys.modules and "albumentations.pytorch" not in sys.modules
    if skip_torch:
        sys.modules["albumentations.pytorch"] = None  # type: ignore[assignment]
    try:
        import albumentations
    finally:
        if skip_torch:
            del sys.modules["albumentations.pytorch"]
    return albumentations


A = _import_albumentations()

PIPELINE_VERSION = 1
"""Bump when the transforms change: every annotation's samples are then made again."""


def default_transforms() -> list[A.BasicTransform]:
    """The transforms of SPEC section 6, in order, with their probabilities."""
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
    return A.Compose(
        list(transforms if transforms is not None else default_transforms()),
        bbox_params=A.BboxParams(
            format="yolo", label_fields=["class_ids"], clip=True, check_each_transform=False
        ),
    )


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
    min_area: float = MIN_BOX_AREA,
) -> tuple[np.ndarray, list[Box]]:
    """One variant of an image and its boxes.

    Args:
        pipeline: from `build_pipeline`; it is reseeded, so one pipeline serves every variant.
        image: BGR uint8, shape ``(h, w, 3)``.
        boxes: the source boxes (normalised YOLO).
        seed: the variant's seed (`functional.variant_seed`); the same seed gives the same result.
        min_area: boxes smaller than this fraction of the image after clipping are dropped.

    Returns:
        The augmented image (same shape and dtype) and its clipped, filtered boxes.
    """
    seed_pipeline(pipeline, seed)
    bboxes, class_ids = boxes_to_arrays(boxes)
    result = pipeline(image=image, bboxes=bboxes, class_ids=class_ids)
    moved = arrays_to_boxes(result["bboxes"], result["class_ids"])
    return result["image"], clip_boxes(moved, min_area=min_area)
