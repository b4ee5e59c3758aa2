"""The demo's scores: detections over the generated video against its known boxes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from azaion_training.boxes import match_by_class
from azaion_training.labels import Box

if TYPE_CHECKING:
    from azaion_training.infer import FrameResult, InferSummary

Found = list[tuple[int, np.ndarray, np.ndarray]]
"""Per inferred frame: ``(frame index, (n, 4) xyxy pixels, (n,) class ids)``."""


@dataclass(frozen=True)
class VideoOutcome:
    """Inference over the video; ``recall`` and ``precision`` only where the truth is known.

    Attributes:
        found: the detections of each inferred frame.
        truths: the true boxes of every frame, when known.
        video: the video inferred.
    """

    summary: InferSummary
    folder: Path
    recall: float | None
    precision: float | None
    found: Found = field(default_factory=list, repr=False)
    truths: list[list[Box]] | None = field(default=None, repr=False)
    video: Path | None = None

    @property
    def line(self) -> str:
        summary = self.summary
        tiling = (
            f"tiles {summary.tile_size} at native resolution, {summary.pieces_per_frame} "
            "inputs a frame"
            if summary.tile_size != "whole"
            else "whole frames"
        )
        head = (
            f"{summary.frames_inferred} frames ({tiling}) on {summary.engine}: "
            f"{summary.detections} detections"
        )
        if self.recall is None or self.precision is None:
            return head + " (no true boxes to score against)"
        return (
            f"{head}, recall {self.recall:.2f}, precision {self.precision:.2f} "
            "against the video's true boxes"
        )


def collector(found: Found) -> Callable[[FrameResult], None]:
    """An ``on_result`` callback for `infer.infer_video` that appends each frame to ``found``."""

    def collect(result: FrameResult) -> None:
        found.append(
            (result.frame.index, result.detections.xyxy.copy(), result.detections.class_id.copy())
        )

    return collect


def video_scores(
    found: Found,
    truths: list[list[Box]],
    *,
    width: int,
    height: int,
    iou: float = 0.5,
) -> tuple[float, float]:
    """Recall and precision of the detections against the video's true boxes.

    A true box is found when a detection of the same class overlaps it with IoU >= ``iou``
    (recall); a detection is right when it overlaps a true box of its class so (precision). Only
    the inferred frames count.

    Args:
        found: per inferred frame, ``(frame index, (n, 4) xyxy pixels, (n,) class ids)``.
        truths: the true boxes of every frame of the video (normalised).

    Returns:
        ``(recall, precision)``, each 0 when there is nothing to count.
    """
    found_truths = truths_total = right = detections = 0
    for index, xyxy, class_ids in found:
        scale = np.array([width, height, width, height], np.float32)
        true_xyxy = np.array([box.xyxy for box in truths[index]], np.float32).reshape(-1, 4) * scale
        true_ids = np.array([box.class_id for box in truths[index]], np.int64)
        index, overlap = match_by_class(true_xyxy, true_ids, xyxy, class_ids)
        found_truths += int(((index >= 0) & (overlap >= iou)).sum())
        index, overlap = match_by_class(xyxy, class_ids, true_xyxy, true_ids)
        right += int(((index >= 0) & (overlap >= iou)).sum())
        truths_total += len(true_ids)
        detections += len(class_ids)
    recall = found_truths / truths_total if truths_total else 0.0
    precision = right / detections if detections else 0.0
    return recall, precision
