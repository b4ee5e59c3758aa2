"""Box maths on arrays: the one intersection-over-union used by inference, export checks and the
demo's scoring.

Example:
    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]])).round(3)
    array([[0.333, 0.   ]])
"""

from __future__ import annotations

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
