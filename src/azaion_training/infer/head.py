"""Decoding a detection model's raw head into the rows the NMS-in-graph export gives.

A model exported without NMS (the RKNN model) returns ``[B, 4 + nc, anchors]``: ``cx, cy, w, h``
as fractions of the input, then the class scores (0..1). `decode_predictions` keeps the best class
of every anchor above a confidence, removes overlaps per class (NMS) and keeps the strongest
``max_det``; `to_rows` pads that to the engine contract ``[B, 300, 6]``. The defaults are those of
the ONNX graph's NMS (Ultralytics' export: confidence above 0.25, IoU 0.7 per class, 300 rows), so
the RKNN engine gives what ONNX Runtime gives. The export's simulator check uses the same decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from azaion_training.boxes import MAX_DETECTIONS, greedy_nms

NMS_CONFIDENCE = 0.25
"""The ONNX graph's NMS keeps boxes above this confidence (Ultralytics' export default)."""
NMS_IOU = 0.7
"""Boxes of one class overlapping more than this are suppressed (Ultralytics' ``iou``)."""


def decode_predictions(
    raw: np.ndarray,
    *,
    imgsz: int,
    conf: float = NMS_CONFIDENCE,
    iou: float = NMS_IOU,
    max_det: int = MAX_DETECTIONS,
) -> list[np.ndarray]:
    """Turns raw head outputs into boxes: best class per anchor, confidence cut, per-class NMS.

    Args:
        raw: ``[n, 4 + nc, anchors]``: ``cx, cy, w, h`` as fractions of the input, then class
            scores 0..1 (the RKNN model's output).
        imgsz: the input size, to scale the boxes to pixels.
        conf: boxes above this confidence are kept.
        iou: boxes of the same class overlapping more than this are suppressed.
        max_det: most boxes kept per image.

    Returns:
        Per image, ``(k, 6)`` float32 ``x1, y1, x2, y2, confidence, class`` in input pixels,
        highest confidence first.
    """
    decoded = []
    for prediction in np.asarray(raw, np.float32):
        rows = prediction.T  # (anchors, 4 + nc)
        classes = rows[:, 4:].argmax(axis=1)
        scores = rows[np.arange(len(rows)), 4 + classes]
        keep = scores > conf
        centre, size = rows[keep, :2] * imgsz, rows[keep, 2:4] * imgsz
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        order = np.argsort(-scores[keep], kind="stable")
        chosen = greedy_nms(boxes, order, iou=iou, classes=classes[keep])[:max_det]
        decoded.append(
            np.column_stack(
                [boxes[chosen], scores[keep][chosen], classes[keep][chosen].astype(np.float32)]
            ).astype(np.float32)
        )
    return decoded


def to_rows(detections: Sequence[np.ndarray], *, rows: int = MAX_DETECTIONS) -> np.ndarray:
    """``[B, rows, 6]`` float32: each image's detections, then zero rows (the engine contract).

    Raises:
        ValueError: an image has more than ``rows`` detections.
    """
    out = np.zeros((len(detections), rows, 6), np.float32)
    for index, found in enumerate(detections):
        if len(found) > rows:
            raise ValueError(f"{len(found)} detections do not fit in {rows} rows")
        out[index, : len(found)] = found
    return out
