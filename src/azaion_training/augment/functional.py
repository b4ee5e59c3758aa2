"""Pure helpers of the augmenter: box arrays for Albumentations, and per-variant seeds.

Albumentations takes boxes as a float array and their classes as a separate list; our labels are
`Box` values. The seed of a variant is a stable hash of the annotation name and the variant
number, so the same annotation always gives the same samples, in any process, on any machine
(Python's own ``hash()`` is randomised per process and would not do).

Example:
    >>> bboxes, class_ids = boxes_to_arrays([Box(3, 0.5, 0.5, 0.2, 0.1)])
    >>> bboxes.shape, class_ids
    ((1, 4), [3])
    >>> arrays_to_boxes(bboxes, class_ids)[0].class_id
    3
    >>> variant_seed("frame_12", 1) == variant_seed("frame_12", 1) != variant_seed("frame_12", 2)
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from azaion_training.labels import Box

_SEED_BYTES = 8


def boxes_to_arrays(boxes: Sequence[Box]) -> tuple[np.ndarray, list[int]]:
    """Boxes as Albumentations wants them.

    Returns:
        ``(bboxes, class_ids)``: a float64 array of shape ``(N, 4)`` holding YOLO ``cx, cy, w, h``
        (normalised), and the ``N`` class ids in the same order.
    """
    bboxes = np.array([(b.cx, b.cy, b.w, b.h) for b in boxes], dtype=np.float64).reshape(-1, 4)
    return bboxes, [b.class_id for b in boxes]


def arrays_to_boxes(bboxes: np.ndarray, class_ids: Sequence[int]) -> list[Box]:
    """The inverse of `boxes_to_arrays`: ``(N, 4+)`` YOLO rows and ``N`` class ids to boxes."""
    if len(class_ids) == 0:
        return []
    rows = np.asarray(bboxes, dtype=np.float64).reshape(len(class_ids), -1)[:, :4]
    return [
        Box(int(class_id), float(cx), float(cy), float(w), float(h))
        for (cx, cy, w, h), class_id in zip(rows, class_ids, strict=True)
    ]


def variant_seed(name: str, index: int) -> int:
    """The random seed of variant ``index`` of annotation ``name``: a 64-bit BLAKE2b of both."""
    digest = hashlib.blake2b(f"{name}\0{index}".encode(), digest_size=_SEED_BYTES).digest()
    return int.from_bytes(digest, "big")


def child_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent 32-bit seeds drawn from ``seed`` (one per transform of a pipeline)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]
