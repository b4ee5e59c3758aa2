from __future__ import annotations

import numpy as np
import pytest

from azaion_training.infer.head import NMS_CONFIDENCE, NMS_IOU, decode_predictions, to_rows


def raw_head(
    anchors: list[tuple[float, float, float, float, int, float]], nc: int = 3
) -> np.ndarray:
    """``[1, 4 + nc, anchors]`` from rows ``cx, cy, w, h`` (input fractions), class, score."""
    raw = np.zeros((1, 4 + nc, len(anchors)), np.float32)
    for index, (cx, cy, w, h, cls, score) in enumerate(anchors):
        raw[0, :4, index] = cx, cy, w, h
        raw[0, 4 + cls, index] = score
    return raw


@pytest.mark.parametrize(
    ("anchors", "expected"),
    [
        ([], []),  # nothing at all
        ([(0.5, 0.5, 0.2, 0.1, 1, 0.1)], []),  # below the confidence cut
        ([(0.5, 0.5, 0.2, 0.1, 1, 0.25)], []),  # at the cut: the graph keeps only what is above
        ([(0.5, 0.5, 0.2, 0.1, 1, 0.9)], [(40, 45, 60, 55, 0.9, 1)]),  # one box, scaled to pixels
        (
            [(0.5, 0.5, 0.2, 0.2, 0, 0.9), (0.51, 0.5, 0.2, 0.2, 0, 0.8)],
            [(40, 40, 60, 60, 0.9, 0)],
        ),  # same class, overlapping (IoU 0.9): the weaker is suppressed
        (
            [(0.5, 0.5, 0.2, 0.2, 0, 0.9), (0.55, 0.5, 0.2, 0.2, 0, 0.8)],
            [(40, 40, 60, 60, 0.9, 0), (45, 40, 65, 60, 0.8, 0)],
        ),  # same class, IoU 0.6 (below the graph's 0.7): both kept
        (
            [(0.5, 0.5, 0.2, 0.2, 0, 0.9), (0.51, 0.5, 0.2, 0.2, 2, 0.8)],
            [(40, 40, 60, 60, 0.9, 0), (41, 40, 61, 60, 0.8, 2)],
        ),  # different classes are kept apart
        (
            [(0.2, 0.2, 0.1, 0.1, 0, 0.5), (0.8, 0.8, 0.1, 0.1, 0, 0.7)],
            [(75, 75, 85, 85, 0.7, 0), (15, 15, 25, 25, 0.5, 0)],
        ),  # apart: both kept, the stronger first
    ],
)
def test_decode_predictions(anchors: list, expected: list) -> None:
    (boxes,) = decode_predictions(raw_head(anchors), imgsz=100)
    assert boxes.shape == (len(expected), 6)
    np.testing.assert_allclose(boxes, np.array(expected, np.float32).reshape(-1, 6), atol=1e-4)


def test_defaults_are_the_onnx_graphs_nms() -> None:
    assert (NMS_CONFIDENCE, NMS_IOU) == (0.25, 0.7)  # Ultralytics' export defaults


def test_decode_takes_the_best_class_and_caps_the_count() -> None:
    raw = raw_head([(0.1 * i + 0.05, 0.5, 0.05, 0.05, 0, 0.6) for i in range(10)])
    raw[0, 4 + 2, 3] = 0.95  # anchor 3 is more of class 2 than of class 0
    (boxes,) = decode_predictions(raw, imgsz=100, max_det=4)
    assert len(boxes) == 4
    assert boxes[0, 5] == 2 and boxes[0, 4] == pytest.approx(0.95)


@pytest.mark.parametrize("counts", [[], [0], [2, 0, 300]])
def test_to_rows_pads_each_image_to_the_engine_contract(counts: list[int]) -> None:
    detections = [np.full((count, 6), index + 1, np.float32) for index, count in enumerate(counts)]
    rows = to_rows(detections)
    assert rows.shape == (len(counts), 300, 6) and rows.dtype == np.float32
    for index, count in enumerate(counts):
        assert (rows[index, :count] == index + 1).all()
        assert (rows[index, count:] == 0).all()


def test_to_rows_refuses_too_many_detections() -> None:
    with pytest.raises(ValueError, match="301 detections do not fit in 300 rows"):
        to_rows([np.zeros((301, 6), np.float32)])
