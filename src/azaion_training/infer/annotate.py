"""Drawing detections on a frame: a box in the class colour and a label with the class's short
name and the confidence (``Truck(W) 0.87``), as the original did with OpenCV."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from azaion_training.classes import ClassTable
from azaion_training.infer.postprocess import Detections

_FOREIGN_COLOUR = (128, 128, 128)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    *,
    classes: ClassTable,
    names: Sequence[str] = (),
) -> np.ndarray:
    """Draws ``detections`` on ``image`` in place and returns it.

    Args:
        image: ``(h, w, 3)`` uint8 BGR.
        detections: boxes in ``image`` pixels.
        classes: colours and short names by class id; ids outside the table are drawn grey
            and labelled with the bare id.
        names: the model's own class names (its metadata): a slot the table leaves unnamed
            (``Class-17``) is labelled with the model's name for it (a user's ``Tree``).
    """
    height = image.shape[0]
    scale = max(height / 1000, 0.35)
    thickness = max(round(height / 400), 1)
    for (x1, y1, x2, y2), confidence, class_id in zip(
        detections.xyxy.round().astype(int), detections.confidence, detections.class_id, strict=True
    ):
        colour, name = _look(classes, int(class_id), names)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        label = f"{name} {confidence:.2f}"
        (tw, th), baseline = cv2.getTextSize(label, _FONT, scale, 1)
        top = y1 - th - baseline if y1 - th - baseline >= 0 else y2
        cv2.rectangle(image, (x1, top), (x1 + tw, top + th + baseline), colour, cv2.FILLED)
        text_colour = (0, 0, 0) if _luma(colour) > 140 else (255, 255, 255)
        cv2.putText(image, label, (x1, top + th), _FONT, scale, text_colour, 1, cv2.LINE_AA)
    return image


def _look(
    classes: ClassTable, class_id: int, names: Sequence[str]
) -> tuple[tuple[int, int, int], str]:
    own = names[class_id] if 0 <= class_id < len(names) else ""
    if 0 <= class_id < len(classes):
        info = classes[class_id]
        if info.base_id is None and own and own != info.name:
            return _FOREIGN_COLOUR, own
        return info.bgr, info.short_name
    return _FOREIGN_COLOUR, own or str(class_id)


def _luma(bgr: tuple[int, int, int]) -> float:
    blue, green, red = bgr
    return 0.299 * red + 0.587 * green + 0.114 * blue
