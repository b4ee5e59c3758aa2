"""COCO average precision of detections against truth, by class and by object size.

The scoring is faster-coco-eval's (a maintained C++ implementation of pycocotools' ``COCOeval``,
equal to it number for number; ``tests/evaluate/test_coco.py`` checks that against pycocotools
itself): boxes in the pixels of the full frame, IoU thresholds 0.50:0.05:0.95, 101 recall points,
up to `MAX_DETECTIONS` detections per image, one area range per size bucket (`sizes`). A class
or bucket without truth has no AP (``None``), as in COCO, and does not count in the means.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from azaion_training.boxes import MAX_DETECTIONS
from azaion_training.evaluate.sizes import ALL, BUCKETS, Bucket
from azaion_training.evaluate.split import Truth
from azaion_training.infer.postprocess import Detections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApRow:
    """COCO scores of one class or one size bucket.

    Attributes:
        truths: labelled objects in it.
        map50: AP at IoU 0.5 (mean over classes for a bucket); ``None`` without truth.
        map50_95: AP over IoU 0.50..0.95.
        recall: COCO's average recall (IoU 0.50..0.95, every detection kept).
    """

    truths: int
    map50: float | None
    map50_95: float | None
    recall: float | None


@dataclass(frozen=True)
class CocoScores:
    """The COCO scores of one evaluation: over all, per class slot, per size bucket key."""

    all: ApRow
    classes: dict[int, ApRow]
    sizes: dict[str, ApRow]


def coco_scores(
    frames: Sequence[tuple[tuple[int, int], Truth, Detections]],
    *,
    max_detections: int = MAX_DETECTIONS,
) -> CocoScores:
    """Scores detections against truth, frame by frame.

    Args:
        frames: per frame its ``(height, width)``, truth and detections (pixels of the frame).
        max_detections: the most confident detections per frame that count.
    """
    from faster_coco_eval import COCO, COCOeval_faster

    ground, results = coco_dicts(frames)
    ranges = [ALL, *BUCKETS]
    truth_classes = sorted({a["category_id"] for a in ground["annotations"]})
    if not truth_classes or not results:
        return _without_matches(ground, truth_classes, ranges)
    gt = COCO(ground, print_function=logger.debug)
    dt = gt.loadRes(results)
    evaluator = COCOeval_faster(gt, dt, iouType="bbox", print_function=logger.debug)
    evaluator.params.maxDets = [max_detections]
    evaluator.params.areaRng = [list(r.area_range) for r in ranges]
    evaluator.params.areaRngLbl = [r.key for r in ranges]
    evaluator.evaluate()
    evaluator.accumulate()
    precision = evaluator.eval["precision"][..., -1]  # [T, R, K, A]
    recall = evaluator.eval["recall"][..., -1]  # [T, K, A]
    cats = list(evaluator.params.catIds)
    areas = _truth_areas(ground)
    classes = {
        cat - 1: _row(precision[:, :, [k], 0], recall[:, [k], 0], _count(areas, cat, ALL))
        for k, cat in enumerate(cats)
        if cat in truth_classes
    }
    sizes = {
        r.key: _row(precision[:, :, :, a], recall[:, :, a], _count(areas, None, r))
        for a, r in enumerate(ranges)
    }
    return CocoScores(all=sizes.pop(ALL.key), classes=classes, sizes=sizes)


def coco_dicts(
    frames: Sequence[tuple[tuple[int, int], Truth, Detections]],
) -> tuple[dict, list[dict]]:
    """The COCO ground-truth dataset and result list of the frames.

    Image ids count from 1 in frame order; category ids are class slots + 1 (COCO's tools treat
    id 0 as unset in places).
    """
    images, annotations, results = [], [], []
    for image_id, ((height, width), truth, found) in enumerate(frames, start=1):
        images.append({"id": image_id, "height": int(height), "width": int(width)})
        for box, class_id in zip(truth.xyxy.tolist(), truth.class_id.tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": class_id + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score, class_id in zip(
            found.xyxy.tolist(), found.confidence.tolist(), found.class_id.tolist(), strict=True
        ):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(class_id) + 1,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": float(score),
                }
            )
    cats = sorted({a["category_id"] for a in annotations} | {r["category_id"] for r in results})
    ground = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c - 1)} for c in cats],
    }
    return ground, results


def _row(precision: np.ndarray, recall: np.ndarray, truths: int) -> ApRow:
    if truths == 0:
        return ApRow(0, None, None, None)
    return ApRow(
        truths=truths,
        map50=_mean(precision[0]),
        map50_95=_mean(precision),
        recall=_mean(recall),
    )


def _mean(values: np.ndarray) -> float | None:
    kept = values[values > -1]
    return float(kept.mean()) if kept.size else None


def _truth_areas(ground: dict) -> list[tuple[int, float]]:
    return [(a["category_id"], a["area"]) for a in ground["annotations"]]


def _count(areas: list[tuple[int, float]], cat: int | None, r: Bucket) -> int:
    low, high = r.area_range
    return sum(1 for c, area in areas if (cat is None or c == cat) and low <= area <= high)


def _without_matches(ground: dict, truth_classes: list[int], ranges: list[Bucket]) -> CocoScores:
    """Scores when nothing can match: no truth (no AP at all) or no detection (AP 0)."""
    areas = _truth_areas(ground)

    def row(cat: int | None, r: Bucket) -> ApRow:
        n = _count(areas, cat, r)
        return ApRow(n, 0.0, 0.0, 0.0) if n else ApRow(0, None, None, None)

    sizes = {r.key: row(None, r) for r in ranges}
    classes = {cat - 1: row(cat, ALL) for cat in truth_classes}
    return CocoScores(all=sizes.pop(ALL.key), classes=classes, sizes=sizes)
