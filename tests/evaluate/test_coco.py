"""Our COCO scores equal pycocotools' (the reference implementation) on the same boxes.

The evaluator scores with faster-coco-eval; the oracle here is pycocotools, fed COCO dicts built
independently from the same arrays, one ``COCOeval`` per size bucket and per class, read through
its own ``summarize``. Frames hold at most 100 detections, so pycocotools' ``maxDets`` 100 and
the evaluator's 300 count the same ones.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from azaion_training.evaluate.coco import coco_scores
from azaion_training.evaluate.sizes import BUCKETS
from azaion_training.evaluate.split import Truth
from azaion_training.infer.postprocess import Detections

pycocotools = pytest.importorskip("pycocotools.cocoeval")


def _frames(seed: int = 7, count: int = 12):
    """Frames with objects of every bucket (2-120 px) and noisy, partly wrong detections."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        height, width = 600, 800
        n = int(rng.integers(3, 16))
        side = np.exp(rng.uniform(np.log(2.5), np.log(120), n))
        aspect = rng.uniform(0.6, 1.6, n)
        w, h = side * aspect**0.5, side / aspect**0.5
        x1, y1 = rng.uniform(0, width - 130, n), rng.uniform(0, height - 130, n)
        truth = Truth(
            np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32),
            rng.integers(0, 4, n).astype(np.int64),
        )
        keep = rng.random(n) < 0.8  # some objects are missed
        jitter = rng.normal(0, 0.15, (n, 4)) * np.stack([w, h, w, h], 1)
        found = truth.xyxy[keep] + jitter[keep].astype(np.float32)
        classes = np.where(rng.random(n) < 0.85, truth.class_id, rng.integers(0, 5, n))[keep]
        m = int(rng.integers(0, 8))  # false alarms
        fx, fy, fs = rng.uniform(0, 700, m), rng.uniform(0, 500, m), rng.uniform(2, 80, m)
        found = np.concatenate([found, np.stack([fx, fy, fx + fs, fy + fs], 1)]).astype(np.float32)
        classes = np.concatenate([classes, rng.integers(0, 5, m)]).astype(np.int64)
        scores = rng.uniform(0.01, 1.0, len(classes)).astype(np.float32)
        frames.append(((height, width), truth, Detections(found, scores, classes)))
    return frames


def _pycocotools(frames, *, area_range, cat_ids=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, ((height, width), truth, found) in enumerate(frames, start=7):
        images.append({"id": image_id, "height": height, "width": width})
        for (x1, y1, x2, y2), c in zip(truth.xyxy.tolist(), truth.class_id.tolist(), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 100 + c,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        for (x1, y1, x2, y2), s, c in zip(
            found.xyxy.tolist(), found.confidence.tolist(), found.class_id.tolist(), strict=True
        ):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 100 + c,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": s,
                }
            )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 100 + c} for c in range(5)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.params.areaRng = [list(area_range)] * 4  # 'all', 'small', ... all this bucket
        if cat_ids is not None:
            evaluator.params.catIds = [100 + c for c in cat_ids]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats  # [0] AP50-95, [1] AP50, [8] AR@100


def test_size_buckets_and_classes_equal_pycocotools() -> None:
    frames = _frames()
    assert max(len(f[2].confidence) for f in frames) <= 100
    ours = coco_scores(frames)
    whole = _pycocotools(frames, area_range=(0, 1e10))
    assert ours.all.map50_95 == pytest.approx(whole[0], abs=1e-9)
    assert ours.all.map50 == pytest.approx(whole[1], abs=1e-9)
    assert ours.all.recall == pytest.approx(whole[8], abs=1e-9)
    assert 0.1 < whole[0] < 0.9  # a real mix of hits and misses, not a trivial case
    populated = 0
    for bucket in BUCKETS:
        row = ours.sizes[bucket.key]
        stats = _pycocotools(frames, area_range=bucket.area_range)
        if stats[0] < 0:  # no truth of that size
            assert row.truths == 0 and row.map50_95 is None
            continue
        populated += 1
        assert row.truths > 0
        assert row.map50_95 == pytest.approx(stats[0], abs=1e-9), bucket.key
        assert row.map50 == pytest.approx(stats[1], abs=1e-9), bucket.key
        assert row.recall == pytest.approx(stats[8], abs=1e-9), bucket.key
    assert populated == len(BUCKETS)
    for class_id, row in ours.classes.items():
        stats = _pycocotools(frames, area_range=(0, 1e10), cat_ids=[class_id])
        assert row.map50_95 == pytest.approx(stats[0], abs=1e-9), class_id
        assert row.map50 == pytest.approx(stats[1], abs=1e-9), class_id
    assert sorted(ours.classes) == [0, 1, 2, 3]  # class 4 only in detections: no AP


def test_no_detections_scores_zero_and_no_truth_scores_none() -> None:
    frames = _frames(count=3)
    empty = [(shape, truth, Detections.empty()) for shape, truth, _ in frames]
    scores = coco_scores(empty)
    assert scores.all.map50_95 == 0.0 and scores.all.truths > 0
    nothing = Truth(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    blank = [(shape, nothing, found) for shape, _, found in frames]
    scores = coco_scores(blank)
    assert scores.all.map50_95 is None and scores.classes == {}
