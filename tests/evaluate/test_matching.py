"""COCO's greedy matching at one IoU, the scores above a confidence, and the confusion counts."""

from __future__ import annotations

import numpy as np

from azaion_training.evaluate.matching import (
    BACKGROUND,
    at_confidence,
    confusion,
    curves,
    match_frame,
)
from azaion_training.evaluate.split import Truth
from azaion_training.infer.postprocess import Detections

TRUTH = Truth(
    np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32),
    np.array([1, 1, 2], np.int64),
)
FOUND = Detections(
    np.array(
        [
            [0, 0, 10, 10],  # hits truth 0
            [0, 0, 10, 9],  # the same object again: a false positive
            [20, 0, 30, 10],  # right place, wrong class (2 for 1)
            [40, 0, 50, 10],  # hits truth 2, but only at 0.2
        ],
        np.float32,
    ),
    np.array([0.6, 0.9, 0.8, 0.2], np.float32),
    np.array([1, 1, 2, 2], np.int64),
)


def test_the_most_confident_detection_takes_the_object() -> None:
    matches = match_frame(TRUTH, FOUND, iou=0.5)
    assert matches.true_positive.tolist() == [False, True, False, True]
    assert matches.found_by.round(2).tolist() == [0.9, -1.0, 0.2]


def test_scores_above_a_confidence_count_only_those_detections() -> None:
    matches = match_frame(TRUTH, FOUND, iou=0.5)
    high = at_confidence(FOUND.confidence, matches.true_positive, 3, 0.3)
    assert (high.true_positives, high.detections) == (1, 3)
    assert high.precision == 1 / 3 and high.recall == 1 / 3 and abs(high.f1 - 1 / 3) < 1e-12
    low = at_confidence(FOUND.confidence, matches.true_positive, 3, 0.0)
    assert (low.precision, low.recall) == (0.5, 2 / 3)
    curve = curves(FOUND.confidence, matches.true_positive, 3)
    assert curve["recall"][0] == 2 / 3 and curve["recall"][50] == 1 / 3
    assert curve["precision"][-1] == 0.0  # nothing above 1.0


def test_confusion_pairs_any_class_and_counts_misses_and_false_alarms() -> None:
    counts = confusion(TRUTH, FOUND, conf=0.3, iou=0.5)
    assert counts == {
        (1, 1): 1,  # truth 0 with the 0.6 or 0.9 box (equal overlap: one of them)
        (BACKGROUND, 1): 1,  # the other
        (1, 2): 1,  # truth 1 seen as class 2
        (2, BACKGROUND): 1,  # truth 2's only detection is below conf
    }
