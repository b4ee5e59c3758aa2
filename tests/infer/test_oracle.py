"""Our detections agree with Ultralytics' own predictor on the same ONNX model and frames.

Ultralytics runs an NMS-in-graph export through its confidence filter alone (rows above
``conf``), so our overlap removal is switched off here (``iou=1``, where it removes nothing) and
checked separately against the table in ``test_postprocess.py``. Everything else is ours: frame
sampling, letterbox, engine call, threshold and the mapping back to frame pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from azaion_training.infer.postprocess import Detections, remove_overlaps
from azaion_training.infer.video import VideoDetection

from .conftest import MODEL_IMGSZ, Detector

CONF = 0.3


def _sorted(xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray) -> np.ndarray:
    rows = np.column_stack([class_id, xyxy, confidence]).astype(np.float64)
    return rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]


def _frames(video: Path, indices: list[int]) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames, index = [], 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index in indices:
            frames.append(image)
        index += 1
    capture.release()
    return frames


@pytest.mark.slow
def test_detections_match_the_ultralytics_predictor(
    detector: Detector, onnx_engine, video_100: Path
) -> None:
    from ultralytics import YOLO

    with VideoDetection(video_100, onnx_engine, every=4, batch=4, conf=CONF, iou=1.0) as run:
        ours = {r.frame.index: r.detections for r in run}
    indices = sorted(ours)
    frames = _frames(video_100, indices)
    assert len(frames) == len(indices) == 25

    model = YOLO(str(detector.onnx), task="detect")
    theirs = []
    for start in range(0, len(frames), 4):
        theirs += model.predict(
            frames[start : start + 4], imgsz=MODEL_IMGSZ, conf=CONF, verbose=False
        )

    total = 0
    for index, result in zip(indices, theirs, strict=True):
        mine, boxes = ours[index], result.boxes
        expected = _sorted(boxes.xyxy.numpy(), boxes.conf.numpy(), boxes.cls.numpy())
        got = _sorted(mine.xyxy, mine.confidence, mine.class_id)
        assert got.shape == expected.shape, f"frame {index}: {len(got)} vs {len(expected)} boxes"
        np.testing.assert_array_equal(got[:, 0], expected[:, 0], err_msg=f"classes, frame {index}")
        np.testing.assert_allclose(
            got[:, 1:5], expected[:, 1:5], atol=1.0, err_msg=f"boxes, frame {index}"
        )
        np.testing.assert_allclose(
            got[:, 5], expected[:, 5], atol=1e-3, err_msg=f"conf, frame {index}"
        )
        total += len(got)
    assert total >= 25, f"only {total} detections: the comparison would say little"


def test_overlap_removal_only_removes(onnx_engine, video_100: Path) -> None:
    """With the default threshold each frame keeps a subset of the unfiltered detections."""
    with VideoDetection(video_100, onnx_engine, every=4, batch=4, conf=CONF, iou=1.0) as run:
        unfiltered = {r.frame.index: r.detections for r in run}
    with VideoDetection(video_100, onnx_engine, every=4, batch=4, conf=CONF, iou=0.3) as run:
        filtered = {r.frame.index: r.detections for r in run}
    assert filtered.keys() == unfiltered.keys()
    for index, kept in filtered.items():
        expected: Detections = remove_overlaps(unfiltered[index], iou=0.3)
        np.testing.assert_array_equal(kept.xyxy, expected.xyxy)
        assert len(kept) <= len(unfiltered[index])
