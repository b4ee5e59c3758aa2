from __future__ import annotations

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from azaion_training.boxes import box_iou
from azaion_training.infer.postprocess import Detections, postprocess, remove_overlaps
from azaion_training.infer.preprocess import Letterbox


def _detections(rows: list[tuple[float, float, float, float, float, int]]) -> Detections:
    return Detections.from_rows(np.array(rows, np.float32).reshape(-1, 6))


def _kept(detections: Detections) -> list[tuple[float, int]]:
    return [
        (round(float(c), 3), int(k))
        for c, k in zip(detections.confidence, detections.class_id, strict=True)
    ]


@pytest.mark.parametrize(
    ("rows", "iou", "expected"),
    [
        # same place, 0.9 and 0.5: keep 0.9 (class-agnostic: the classes differ)
        ([(0, 0, 10, 10, 0.5, 1), (0, 0, 10, 10, 0.9, 2)], 0.3, [(0.9, 2)]),
        # far apart: both stay, most confident first
        ([(0, 0, 10, 10, 0.5, 1), (50, 50, 60, 60, 0.9, 2)], 0.3, [(0.9, 2), (0.5, 1)]),
        # IoU exactly 1/3 (two 10x10 boxes shifted by 5): above 0.3, the weaker goes
        ([(0, 0, 10, 10, 0.8, 0), (5, 0, 15, 10, 0.6, 0)], 0.3, [(0.8, 0)]),
        # the same pair with a threshold of 0.34: not above it, both stay
        ([(0, 0, 10, 10, 0.8, 0), (5, 0, 15, 10, 0.6, 0)], 0.34, [(0.8, 0), (0.6, 0)]),
        # chain A-B-C, only neighbours overlap: B goes, and a removed B removes nothing, so C stays
        (
            [(0, 0, 10, 10, 0.9, 0), (4, 0, 14, 10, 0.8, 0), (8, 0, 18, 10, 0.7, 0)],
            0.3,
            [(0.9, 0), (0.7, 0)],
        ),
        # chain where the strongest sits in the middle: it removes both neighbours
        (
            [(0, 0, 10, 10, 0.7, 0), (4, 0, 14, 10, 0.9, 0), (8, 0, 18, 10, 0.8, 0)],
            0.3,
            [(0.9, 0)],
        ),
        # tie in confidence: the lower class id stays, whatever the row order
        ([(0, 0, 10, 10, 0.6, 7), (0, 0, 10, 10, 0.6, 3)], 0.3, [(0.6, 3)]),
        ([(0, 0, 10, 10, 0.6, 3), (0, 0, 10, 10, 0.6, 7)], 0.3, [(0.6, 3)]),
        # iou=1 turns the removal off
        ([(0, 0, 10, 10, 0.5, 1), (0, 0, 10, 10, 0.9, 2)], 1.0, [(0.9, 2), (0.5, 1)]),
        # one box, and none
        ([(0, 0, 10, 10, 0.5, 1)], 0.3, [(0.5, 1)]),
        ([], 0.3, []),
    ],
)
def test_remove_overlaps(rows: list, iou: float, expected: list[tuple[float, int]]) -> None:
    assert _kept(remove_overlaps(_detections(rows), iou=iou)) == expected


def test_remove_overlaps_keeps_the_boxes_of_the_kept_rows() -> None:
    rows = [(0, 0, 10, 10, 0.5, 1), (50, 50, 60, 60, 0.9, 2), (1, 1, 11, 11, 0.95, 4)]
    kept = remove_overlaps(_detections(rows), iou=0.3)
    assert kept.xyxy.tolist() == [[1, 1, 11, 11], [50, 50, 60, 60]]
    assert kept.class_id.tolist() == [4, 2]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),  # identical
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),  # disjoint
        ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3),  # half overlap
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # degenerate: no division by zero
    ],
)
def test_box_iou(a: tuple, b: tuple, expected: float) -> None:
    iou = box_iou(np.array([a], np.float32), np.array([b], np.float32))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected, abs=1e-6)


def test_postprocess_thresholds_maps_back_and_removes_overlaps() -> None:
    letterbox = Letterbox.fit(source_hw=(240, 320), target_hw=(128, 128))  # scale 0.4, 16 px bars
    rows = np.zeros((300, 6), np.float32)
    rows[0] = (0, 16, 40, 56, 0.9, 15)  # -> (0, 0, 100, 100) in the frame
    rows[1] = (2, 18, 42, 58, 0.8, 0)  # overlaps row 0: removed
    rows[2] = (80, 56, 120, 96, 0.3, 2)  # exactly at the threshold: dropped (strictly above)
    rows[3] = (80, 56, 120, 96, 0.31, 2)  # -> (200, 100, 300, 200)
    detections = postprocess(rows, letterbox=letterbox, conf=0.3, iou=0.3)
    assert detections.class_id.tolist() == [15, 2]
    np.testing.assert_allclose(detections.xyxy, [[0, 0, 100, 100], [200, 100, 300, 200]], atol=1e-4)
    np.testing.assert_allclose(detections.confidence, [0.9, 0.31], atol=1e-6)


def test_postprocess_of_the_zero_padding_is_empty() -> None:
    letterbox = Letterbox.fit(source_hw=(240, 320), target_hw=(128, 128))
    detections = postprocess(np.zeros((300, 6), np.float32), letterbox=letterbox, conf=0.0, iou=0.3)
    assert len(detections) == 0


@pytest.mark.parametrize(
    ("xyxy", "confidence", "class_id", "expectation"),
    [
        # consistent
        (np.zeros((2, 4)), np.zeros(2), np.zeros(2, int), does_not_raise()),
        # boxes of the wrong width
        (np.zeros((2, 3)), np.zeros(2), np.zeros(2, int), pytest.raises(ValueError)),
        # one class id short
        (np.zeros((2, 4)), np.zeros(2), np.zeros(1, int), pytest.raises(ValueError)),
    ],
)
def test_detections_checks_its_arrays(xyxy, confidence, class_id, expectation) -> None:
    with expectation:
        Detections(xyxy=xyxy, confidence=confidence, class_id=class_id)


def test_empty_detections() -> None:
    empty = Detections.empty()
    assert len(empty) == 0
    assert empty.xyxy.shape == (0, 4)
