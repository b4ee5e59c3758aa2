"""Stills of a video, for the report: frames as they are, or truth beside detections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from azaion_training.boxes import match_by_class
from azaion_training.classes import ClassTable
from azaion_training.demo.scoring import Found
from azaion_training.labels import Box


def video_frames(video: Path, *, count: int) -> list[bytes]:
    """JPEG bytes of ``count`` frames spread evenly over ``video`` (fewer if it is short)."""
    capture = cv2.VideoCapture(str(video))
    try:
        total = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # -1 when it does not open
        frames = []
        for index in np.linspace(0, max(total - 1, 0), num=min(count, total), dtype=int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            if ok:
                frames.append(cv2.imencode(".jpg", frame)[1].tobytes())
        return frames
    finally:
        capture.release()


def truth_and_detections(
    video: Path,
    found: Found,
    truths: Sequence[Sequence[Box]],
    *,
    count: int,
    classes: ClassTable,
    iou: float = 0.5,
) -> list[bytes]:
    """JPEG bytes of ``count`` inferred frames spread over ``video``, each the frame with its
    true boxes (left: found in green, missed in red) beside the same frame with the detections
    (right, in class colours); thin boxes, full class names.

    Args:
        found: per inferred frame, ``(frame index, (n, 4) xyxy pixels, (n,) class ids)``.
        truths: the true boxes of every frame (normalised).
        iou: the overlap at which a detection of its class finds a true box.
    """
    if not found:
        return []
    picks = np.linspace(0, len(found) - 1, num=min(count, len(found))).round().astype(int)
    capture = cv2.VideoCapture(str(video))
    try:
        stills = []
        for pick in picks:
            index, xyxy, class_ids = found[int(pick)]
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            if ok:
                stills.append(_pair(frame, truths[index], xyxy, class_ids, classes, iou, index))
        return stills
    finally:
        capture.release()


def _pair(
    frame: np.ndarray,
    truth: Sequence[Box],
    xyxy: np.ndarray,
    class_ids: np.ndarray,
    classes: ClassTable,
    iou: float,
    index: int,
) -> bytes:
    height, width = frame.shape[:2]
    scale = np.array([width, height, width, height], np.float32)
    true_xyxy = np.array([b.xyxy for b in truth], np.float32).reshape(-1, 4) * scale
    true_ids = np.array([b.class_id for b in truth], np.int64)
    match, overlap = match_by_class(true_xyxy, true_ids, xyxy, class_ids)
    hit = (match >= 0) & (overlap >= iou)
    left, right = frame.copy(), frame.copy()
    for box, class_id, was_found in zip(true_xyxy, true_ids, hit, strict=True):
        colour = (0, 170, 0) if was_found else (0, 0, 230)
        _box(left, box, colour, classes[int(class_id)].name + ("" if was_found else " (missed)"))
    for box, class_id in zip(xyxy, class_ids, strict=True):
        _box(right, box, classes[int(class_id)].bgr, classes[int(class_id)].name)
    missed = int((~hit).sum())
    _caption(left, f"frame {index}: truth ({len(true_ids)}, {missed} missed)")
    _caption(right, f"frame {index}: detections ({len(class_ids)})")
    gap = np.full((height, 6, 3), 255, np.uint8)
    return cv2.imencode(".jpg", np.hstack([left, gap, right]), [cv2.IMWRITE_JPEG_QUALITY, 92])[
        1
    ].tobytes()


def _box(image: np.ndarray, box: np.ndarray, colour: tuple[int, int, int], name: str) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1, cv2.LINE_AA)
    cv2.putText(
        image, name, (x1, max(y1 - 3, 9)), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1, cv2.LINE_AA
    )


def _caption(image: np.ndarray, text: str) -> None:
    cv2.rectangle(image, (0, 0), (image.shape[1], 14), (255, 255, 255), -1)
    cv2.putText(image, text, (3, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
