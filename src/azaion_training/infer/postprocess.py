"""From engine rows to `Detections`: the confidence threshold and the overlap removal.

Both steps are pure and run on one image's ``[300, 6]`` rows:

1. **Confidence.** A row is kept when its confidence is *above* ``conf`` (strictly, as Ultralytics
   filters an NMS-in-graph export, so the zero rows that pad the output never pass).
2. **Back to the source.** Boxes are mapped from model-input pixels to the original image
   (`Letterbox.boxes_to_source`).
3. **Overlap removal**, class-agnostic and greedy. Boxes are visited from the most confident down
   (equal confidence: the lower class id first; then the earlier row). A box is dropped when its
   IoU with a box already *kept* is above ``iou``; a dropped box drops nothing. So of two boxes
   that overlap by more than ``iou`` the more confident stays, and in a chain A-B-C where only
   neighbours overlap, A and C stay while B goes. ``iou=1`` turns the step off.

Example:
    >>> dets = Detections.from_rows(np.array([[0, 0, 10, 10, 0.9, 2], [1, 1, 11, 11, 0.5, 1]]))
    >>> remove_overlaps(dets, iou=0.3).class_id.tolist()  # the more confident box stays
    [2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from azaion_training.boxes import greedy_nms
from azaion_training.infer.preprocess import Letterbox


@dataclass(frozen=True)
class Detections:
    """The detections of one image, as parallel arrays.

    Attributes:
        xyxy: ``(n, 4)`` float32 ``[x1, y1, x2, y2]`` in pixels.
        confidence: ``(n,)`` float32 in 0..1.
        class_id: ``(n,)`` int64 class slots.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.confidence)
        if self.xyxy.shape != (n, 4) or self.class_id.shape != (n,) or self.confidence.ndim != 1:
            raise ValueError(
                f"inconsistent detections: xyxy {self.xyxy.shape}, confidence "
                f"{self.confidence.shape}, class_id {self.class_id.shape}"
            )

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
        )

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> Detections:
        """Detections from ``(n, 6)`` rows ``x1, y1, x2, y2, confidence, class``."""
        rows = np.asarray(rows, np.float32).reshape(-1, 6)
        return cls(
            xyxy=rows[:, :4].copy(),
            confidence=rows[:, 4].copy(),
            class_id=np.rint(rows[:, 5]).astype(np.int64),
        )

    def __len__(self) -> int:
        return len(self.confidence)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        """The detections selected by a boolean mask, an index array or a slice."""
        return Detections(
            xyxy=self.xyxy[index], confidence=self.confidence[index], class_id=self.class_id[index]
        )


def postprocess(rows: np.ndarray, *, letterbox: Letterbox, conf: float, iou: float) -> Detections:
    """One image's engine rows -> its detections in source pixels (steps 1-3 above).

    Args:
        rows: ``(300, 6)`` engine output for one image, in model-input pixels.
        letterbox: how that image was letterboxed.
        conf: confidence threshold; rows at or below it are dropped.
        iou: overlap threshold of `remove_overlaps`.
    """
    rows = np.asarray(rows)
    confident = Detections.from_rows(rows[rows[:, 4] > conf])
    placed = Detections(
        xyxy=letterbox.boxes_to_source(confident.xyxy),
        confidence=confident.confidence,
        class_id=confident.class_id,
    )
    return remove_overlaps(placed, iou=iou)


def remove_overlaps(detections: Detections, *, iou: float) -> Detections:
    """Greedy class-agnostic overlap removal: see the module docstring for the exact rule.

    Returns:
        The kept detections, most confident first (ties: lower class id first).
    """
    if len(detections) < 2:
        return detections
    order = np.lexsort((np.arange(len(detections)), detections.class_id, -detections.confidence))
    return detections[greedy_nms(detections.xyxy, order, iou=iou)]
