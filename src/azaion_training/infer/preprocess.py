"""Letterboxing exactly as Ultralytics does it, and the way back to the original pixels.

`Letterbox.fit` reproduces ``ultralytics.data.augment.LetterBox(new_shape, auto=False,
scaleup=True, center=True, padding_value=114)``, the transform its predictor applies to a
fixed-size export: scale by ``r = min(H / h, W / w)``, resize each side to ``round(side * r)``
with bilinear interpolation, and pad with grey 114, splitting the padding so that the image sits
in the middle (``top = round(dh / 2 - 0.1)``). `Letterbox.boxes_to_source` is the inverse of its
predictor's ``scale_boxes``: subtract the padding, divide by the gain of each axis, and clip to
the image. All functions are pure.

Example:
    >>> box = Letterbox.fit(source_hw=(240, 320), target_hw=(128, 128))
    >>> box.resized_hw, (box.top, box.left)
    ((96, 128), (16, 0))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114
"""Grey of the letterbox bars (Ultralytics' default)."""


@dataclass(frozen=True)
class Letterbox:
    """The geometry of one letterbox: from a source image to the model input and back.

    Attributes:
        source_hw: ``(h, w)`` of the original image.
        target_hw: ``(H, W)`` of the model input.
        resized_hw: ``(h', w')`` of the scaled image inside the input.
        top, bottom, left, right: grey bars, in input pixels.
    """

    source_hw: tuple[int, int]
    target_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    top: int
    bottom: int
    left: int
    right: int

    @classmethod
    def fit(
        cls, *, source_hw: tuple[int, int], target_hw: tuple[int, int], scaleup: bool = True
    ) -> Letterbox:
        """The letterbox that fits ``source_hw`` into ``target_hw`` (centred, aspect kept).

        Args:
            scaleup: allow enlarging a source smaller than the target (Ultralytics' default).
        """
        (h, w), (th, tw) = source_hw, target_hw
        ratio = min(th / h, tw / w)
        if not scaleup:
            ratio = min(ratio, 1.0)
        rh, rw = max(round(h * ratio), 1), max(round(w * ratio), 1)
        dh, dw = (th - rh) / 2, (tw - rw) / 2
        return cls(
            source_hw=(h, w),
            target_hw=(th, tw),
            resized_hw=(rh, rw),
            top=round(dh - 0.1),
            bottom=round(dh + 0.1),
            left=round(dw - 0.1),
            right=round(dw + 0.1),
        )

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Letterboxes an image: ``(h, w, 3)`` uint8 -> ``(H, W, 3)`` uint8, same channel order."""
        if image.shape[:2] != self.source_hw:
            raise ValueError(
                f"image is {image.shape[:2]}, the letterbox was fitted to {self.source_hw}"
            )
        rh, rw = self.resized_hw
        if (rh, rw) != self.source_hw:
            image = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
        return cv2.copyMakeBorder(
            image,
            self.top,
            self.bottom,
            self.left,
            self.right,
            cv2.BORDER_CONSTANT,
            value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
        )

    def boxes_to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Maps boxes from input pixels back to source pixels, clipped to the source image.

        Args:
            xyxy: ``(n, 4)`` ``[x1, y1, x2, y2]`` in model-input pixels.

        Returns:
            A new ``(n, 4)`` float32 array ``[x1, y1, x2, y2]`` in source pixels.
        """
        (h, w), (rh, rw) = self.source_hw, self.resized_hw
        gain = np.array([rw / w, rh / h, rw / w, rh / h], np.float32)
        pad = np.array([self.left, self.top, self.left, self.top], np.float32)
        boxes = (np.asarray(xyxy, np.float32).reshape(-1, 4) - pad) / gain
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        return boxes


def to_input(images: Sequence[np.ndarray], *, batch_size: int | None = None) -> np.ndarray:
    """Stacks letterboxed BGR images into an engine input, zero-padded to ``batch_size``.

    Args:
        images: ``(H, W, 3)`` uint8 BGR images of one size.
        batch_size: rows of the result; ``None`` for ``len(images)``. The rows past the images
            are zeros (their results are dropped).

    Returns:
        ``[B, 3, H, W]`` float32, RGB, values 0..1.
    """
    rows = batch_size if batch_size is not None else len(images)
    if len(images) > rows:
        raise ValueError(f"{len(images)} images do not fit a batch of {rows}")
    blob = cv2.dnn.blobFromImages(list(images), scalefactor=1 / 255, swapRB=True, crop=False)
    if rows == len(images):
        return blob
    padded = np.zeros((rows, *blob.shape[1:]), np.float32)
    padded[: len(images)] = blob
    return padded
