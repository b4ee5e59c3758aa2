"""Which detection finds which object: precision, recall and F1 at a confidence, and confusion.

**Matching rule** (COCO's, at one IoU, ``match_iou`` = 0.5): in each frame the detections are
visited from the most confident down; each takes the still unmatched truth of its class that it
overlaps most, if that IoU is at least ``match_iou``; a detection that takes one is a true
positive, any other a false positive. Because the visit goes down the confidence, the detections
above a threshold match exactly as they would alone, so one matching at a low threshold gives
the scores at every higher one (the P/R/F1-confidence curves, and the deployed ``conf``).

**Confusion** (at the deployed ``conf``): a truth and a detection of *any* class pair up when
they overlap by at least ``match_iou``, the largest overlaps first, each at most once; a truth
left over is *missed*, a detection left over is a *false alarm*.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from azaion_training.boxes import box_iou
from azaion_training.evaluate.split import Truth
from azaion_training.infer.postprocess import Detections

BACKGROUND = -1
"""The class of a missed truth's "detection" and of a false alarm's "truth" in `confusion`."""

CURVE_POINTS = 101
"""Confidences of the curves: 0, 0.01, ..., 1."""


@dataclass(frozen=True)
class FrameMatches:
    """The matching of one frame.

    Attributes:
        true_positive: ``(d,)`` whether each detection found an object.
        found_by: ``(g,)`` the confidence of the detection that found each truth; -1: none.
    """

    true_positive: np.ndarray
    found_by: np.ndarray


def match_frame(truth: Truth, found: Detections, *, iou: float) -> FrameMatches:
    """COCO's greedy matching of one frame's detections to its truth, at IoU ``iou``."""
    true_positive = np.zeros(len(found.confidence), bool)
    found_by = np.full(len(truth.class_id), -1.0)
    if not len(truth.class_id) or not len(found.confidence):
        return FrameMatches(true_positive, found_by)
    overlaps = box_iou(found.xyxy.astype(np.float64), truth.xyxy.astype(np.float64))
    overlaps[found.class_id[:, None] != truth.class_id[None, :]] = -1.0
    for d in np.argsort(-found.confidence, kind="stable"):
        row = np.where(found_by < 0, overlaps[d], -1.0)
        g = int(row.argmax())
        if row[g] >= iou:
            true_positive[d] = True
            found_by[g] = float(found.confidence[d])
    return FrameMatches(true_positive, found_by)


def confusion(
    truth: Truth, found: Detections, *, conf: float, iou: float
) -> Counter[tuple[int, int]]:
    """``(true class, detected class)`` -> count for one frame (see the module's rule)."""
    kept = found.confidence > conf
    boxes, classes = found.xyxy[kept], found.class_id[kept]
    counts: Counter[tuple[int, int]] = Counter()
    pairs: list[tuple[int, int]] = []
    if len(truth.class_id) and len(classes):
        overlaps = box_iou(truth.xyxy, boxes)
        g_index, d_index = np.nonzero(overlaps >= iou)
        order = np.argsort(-overlaps[g_index, d_index], kind="stable")
        used_g: set[int] = set()
        used_d: set[int] = set()
        for g, d in zip(g_index[order].tolist(), d_index[order].tolist(), strict=True):
            if g not in used_g and d not in used_d:
                used_g.add(g)
                used_d.add(d)
                pairs.append((g, d))
    matched_g = {g for g, _ in pairs}
    matched_d = {d for _, d in pairs}
    counts.update((int(truth.class_id[g]), int(classes[d])) for g, d in pairs)
    counts.update((int(c), BACKGROUND) for g, c in enumerate(truth.class_id) if g not in matched_g)
    counts.update((BACKGROUND, int(c)) for d, c in enumerate(classes) if d not in matched_d)
    return counts


@dataclass(frozen=True)
class AtConfidence:
    """Precision, recall and F1 of detections above one confidence.

    Precision is 0 when no detection is above it; recall is ``None`` without truth.
    """

    precision: float
    recall: float | None
    f1: float
    true_positives: int
    detections: int
    truths: int


def at_confidence(
    scores: np.ndarray, true_positive: np.ndarray, truths: int, conf: float
) -> AtConfidence:
    """The scores of the detections (``scores``, ``true_positive``) above ``conf``."""
    kept = scores > conf
    detections, hits = int(kept.sum()), int(true_positive[kept].sum())
    precision = hits / detections if detections else 0.0
    recall = hits / truths if truths else None
    both = precision + (recall or 0.0)
    f1 = 2 * precision * (recall or 0.0) / both if both > 0 else 0.0
    return AtConfidence(precision, recall, f1, hits, detections, truths)


def curves(scores: np.ndarray, true_positive: np.ndarray, truths: int) -> dict[str, list[float]]:
    """Precision, recall and F1 against confidence (`CURVE_POINTS` points from 0 to 1)."""
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    points = [at_confidence(scores, true_positive, truths, float(c)) for c in grid]
    return {
        "confidence": [round(float(c), 4) for c in grid],
        "precision": [p.precision for p in points],
        "recall": [p.recall or 0.0 for p in points],
        "f1": [p.f1 for p in points],
    }
