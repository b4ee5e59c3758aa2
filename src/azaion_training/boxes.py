"""Box maths on arrays, written once: intersection over union, greedy overlap removal and
class-aware matching (inference, export checks and the demo's scoring use these).

Example:
    >>> a, b = np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]])
    >>> box_iou(a, b).round(3).tolist()
    [[0.333, 0.0]]
    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 9]], np.float32)
    >>> greedy_nms(boxes, [0, 1, 2], iou=0.5).tolist()
    [0]
    >>> greedy_nms(boxes, [0, 1, 2], iou=0.5, classes=np.array([1, 2, 1])).tolist()
    [0, 1]
    >>> index, overlap = match_by_class(boxes[:2], np.array([1, 3]), boxes[2:], np.array([1]))
    >>> index.tolist(), overlap.round(2).tolist()
    ([0, -1], [0.9, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_DETECTIONS = 300
"""Detections per image an exported model returns (its ``max_det``; rows of ``[B, 300, 6]``)."""


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair: ``(n, 4)`` x ``(m, 4)`` xyxy -> ``(n, m)``.

    Pairs whose union is empty (two degenerate boxes) get 0.
    """
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass(frozen=True)
class Window:
    """A window of a frame (a tile): its top-left corner and size in frame pixels."""

    x: int
    y: int
    w: int
    h: int


def windows(frame_hw: tuple[int, int], tile_hw: tuple[int, int], overlap: float) -> list[Window]:
    """The tile windows of a frame, rows top to bottom, each left to right.

    Per axis: starts ``0, step, 2 step, ...`` with ``step = size - int(overlap * size)`` while a
    window still ends inside the frame, then one last window flush with the far edge
    (``length - size``): SAHI's ``get_slice_bboxes`` with a slice size and overlap ratios given.
    An axis shorter than the tile has one window of the frame's length. Inference
    (`azaion_training.infer.tiles`) and training tiles (`azaion_training.dataset.tiles`) share it.

    Example:
        >>> [w.x for w in windows((100, 300), (100, 128), overlap=0.2)]
        [0, 103, 172]
    """
    rows = _starts(frame_hw[0], tile_hw[0], overlap)
    columns = _starts(frame_hw[1], tile_hw[1], overlap)
    h, w = min(tile_hw[0], frame_hw[0]), min(tile_hw[1], frame_hw[1])
    return [Window(x=x, y=y, w=w, h=h) for y in rows for x in columns]


def _starts(length: int, size: int, overlap: float) -> list[int]:
    if length <= size:
        return [0]
    step = size - int(overlap * size)
    return [*range(0, length - size, step), length - size]


def cut_to_window(
    xyxy: np.ndarray,
    window: tuple[float, float, float, float],
    *,
    min_visible_fraction: float,
    min_box_px: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes cut by a window (an augmented image's frame, a tile), by the one rule of SPEC 6.

    A box is clipped to the window; it is dropped as *outside* when less than
    ``min_visible_fraction`` of its own area stays inside, else as *thin* when its clipped width or
    height is under ``min_box_px``. Augmentation variants and training tiles both use it.

    Args:
        xyxy: ``(n, 4)`` boxes in pixels.
        window: ``(x1, y1, x2, y2)`` in the same pixels.

    Returns:
        ``(clipped, outside, thin)``: the ``(n, 4)`` clipped boxes and two ``(n,)`` masks.
    """
    x1, y1, x2, y2 = window
    clipped = np.empty_like(xyxy, dtype=np.float64)
    clipped[:, 0::2] = np.clip(xyxy[:, 0::2], x1, x2)
    clipped[:, 1::2] = np.clip(xyxy[:, 1::2], y1, y2)
    own = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    width, height = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    inside = np.maximum(width, 0) * np.maximum(height, 0)
    visible = np.divide(inside, own, out=np.zeros_like(inside), where=own > 0)
    outside = visible < min_visible_fraction - 1e-9
    thin = ~outside & (np.minimum(width, height) < min_box_px - 1e-9)
    return clipped, outside, thin


def greedy_nms(
    boxes: np.ndarray,
    order: Sequence[int] | np.ndarray,
    *,
    iou: float,
    classes: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy overlap removal: the indices of ``boxes`` kept, in visiting order.

    Boxes are visited in ``order`` (the caller's ranking, most wanted first). A box is dropped when
    its IoU with a box already kept is above ``iou``; a dropped box drops nothing. With
    ``classes`` only boxes of the same class drop each other (class-aware); without, any do.

    Args:
        boxes: ``(n, 4)`` xyxy.
        order: a permutation (or subset) of ``range(n)``.
        iou: the overlap above which the later box goes; ``1`` keeps every box.
        classes: ``(n,)`` class ids, or ``None`` for class-agnostic removal.
    """
    order = np.asarray(order, np.int64)
    if len(order) <= MATRIX_LIMIT:
        return _greedy_by_matrix(boxes, order, iou=iou, classes=classes)
    remaining, kept = order, []
    while len(remaining):  # one IoU row per kept box: memory stays linear in the boxes
        first, rest = remaining[0], remaining[1:]
        kept.append(int(first))
        dropped = box_iou(boxes[first][None], boxes[rest])[0] > iou
        if classes is not None:
            dropped &= classes[rest] == classes[first]
        remaining = rest[~dropped]
    return np.asarray(kept, np.int64)


MATRIX_LIMIT = 1024
"""Up to this many boxes `greedy_nms` computes all overlaps at once (fast for the few hundred of
one image); above it, one row per kept box (for the thousands of raw anchors of an export check)."""


def _greedy_by_matrix(
    boxes: np.ndarray, order: np.ndarray, *, iou: float, classes: np.ndarray | None
) -> np.ndarray:
    ranked = boxes[order]
    overlaps = box_iou(ranked, ranked)
    if classes is not None:
        ranked_classes = classes[order]
        overlaps = np.where(ranked_classes[:, None] == ranked_classes[None, :], overlaps, 0.0)
    kept: list[int] = []
    for i in range(len(order)):
        if not kept or overlaps[i, kept].max() <= iou:
            kept.append(i)
    return order[kept]


def match_by_class(
    boxes: np.ndarray, classes: np.ndarray, others: np.ndarray, other_classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For every box, the box of the same class among ``others`` that overlaps it most.

    Args:
        boxes: ``(n, 4)`` xyxy; ``classes`` their ``(n,)`` class ids.
        others: ``(m, 4)`` xyxy; ``other_classes`` their ``(m,)`` class ids.

    Returns:
        ``(index, iou)``, both ``(n,)``: the index into ``others`` of the best match (the first
        of equals) and its IoU; ``-1`` and ``0`` where ``others`` has no box of that class.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    others = np.asarray(others, np.float32).reshape(-1, 4)
    if not len(boxes) or not len(others):
        return np.full(len(boxes), -1, np.int64), np.zeros(len(boxes))
    same = np.asarray(classes)[:, None] == np.asarray(other_classes)[None, :]
    overlaps = np.where(same, box_iou(boxes, others), -1.0)
    index = overlaps.argmax(axis=1)
    best = overlaps[np.arange(len(boxes)), index]
    return np.where(same.any(axis=1), index, -1), np.clip(best, 0.0, None).astype(np.float64)
