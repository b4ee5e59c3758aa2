"""Tiles: cutting a large frame into engine inputs at native resolution, and merging the boxes.

A frame much larger than the model input loses its small targets when it is letterboxed whole (a
12 px target in a 4000 px frame arrives at ~4 px in a 1280 px input). A `TilePlan` cuts it into
windows of the tile size (the model input by default) instead, each run at native resolution:

1. **Windows** (`azaion_training.boxes.windows`, shared with the training tiles): per axis,
   tiles ``overlap`` apart, the last one flush with the frame's far edge (SAHI's
   ``get_slice_bboxes``); an axis shorter than the tile has one window, padded with grey.
2. **Pieces** (`cut`): each window (padded to the tile size) is letterboxed into the model input,
   which is the identity when the tile is the input size; with ``full_frame`` one more piece is
   the whole frame letterboxed, for objects larger than a tile.
3. **Per piece**, the path of whole frames (`postprocess`: confidence, back to the piece's pixels,
   overlap removal), then the boxes are clipped to the window and shifted into the frame.
4. **Merge** (`merge`) across the pieces of a frame: class-aware greedy non-maximum merging as
   SAHI's default postprocess (``GREEDYNMM``, ``IOS``, 0.5): boxes from the most confident down
   (equal confidence: by x1, y1, x2, y2); a kept box absorbs every later box of its class whose
   intersection over the smaller area is at least ``match`` (in that order, each still matching
   the grown box); the absorbed boxes widen it to their union and it keeps the highest
   confidence. So the two halves of an object cut by a tile edge become one box.

SAHI itself is not imported: its slicing and merging run on one image of `ObjectPrediction`
objects, while ours must fill an engine's batch with the tiles of several frames and run on an
RK3588 board with numpy and OpenCV alone; SAHI's `get_sliced_prediction` is the oracle in
``tests/infer/test_tiles.py``.

Example:
    >>> plan = TilePlan.parse("auto")
    >>> plan.tile_size((1080, 1920), (640, 640)), plan.pieces((1080, 1920), (640, 640))
    ((640, 640), 9)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from azaion_training.boxes import Window, windows
from azaion_training.config import InferSettings
from azaion_training.infer.postprocess import Detections, postprocess
from azaion_training.infer.preprocess import PAD_VALUE, Letterbox

TileMode = Literal["off", "auto", "fixed"]

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Piece:
    """One engine input cut from a frame: a tile, or the whole frame letterboxed.

    Attributes:
        window: the part of the frame it shows.
        letterbox: from the window (padded to the tile size) to the model input.
        image: ``(H, W, 3)`` uint8 BGR, the model input.
    """

    window: Window
    letterbox: Letterbox
    image: np.ndarray

    def detections(self, rows: np.ndarray, *, conf: float, iou: float) -> Detections:
        """This piece's engine rows -> detections in frame pixels (step 3 of the module doc)."""
        found = postprocess(rows, letterbox=self.letterbox, conf=conf, iou=iou)
        if not len(found):
            return found
        w = self.window
        xyxy = found.xyxy.copy()
        np.clip(xyxy[:, 0::2], 0, w.w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, w.h, out=xyxy[:, 1::2])
        xyxy += np.array([w.x, w.y, w.x, w.y], np.float32)
        return Detections(xyxy=xyxy, confidence=found.confidence, class_id=found.class_id)


@dataclass(frozen=True)
class TilePlan:
    """How frames are cut into pieces (see the module docstring).

    Attributes:
        mode: ``off`` (whole frames), ``auto`` (tiles of the model input when a frame exceeds it
            by more than ``factor`` on either side) or ``fixed`` (tiles of ``tile_hw``).
        tile_hw: ``(h, w)`` of a tile for ``fixed``; ``auto`` uses the model input.
        overlap: fraction of a tile shared with its neighbour, 0 <= overlap < 1.
        factor: for ``auto``: frame side / input side above which a frame is tiled.
        full_frame: also run the whole frame letterboxed (for objects larger than a tile).
        match: intersection over the smaller box above which `merge` joins two boxes.
    """

    mode: TileMode = "auto"
    tile_hw: tuple[int, int] | None = None
    overlap: float = 0.2
    factor: float = 1.5
    full_frame: bool = True
    match: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < 1:
            raise ValueError(f"tile overlap must be in [0, 1), got {self.overlap}")
        if self.mode == "fixed" and (self.tile_hw is None or min(self.tile_hw) < 1):
            raise ValueError("fixed tiles need a tile size")

    @classmethod
    def parse(cls, text: str, **options: object) -> TilePlan:
        """A plan from ``auto``, ``off`` or ``WxH`` (e.g. ``640x640``) and the other fields.

        Raises:
            ValueError: naming the accepted forms.
        """
        value = text.strip().lower()
        if value in ("auto", "off"):
            return cls(mode=value, **options)  # type: ignore[arg-type]
        found = _SIZE.match(value)
        if found is None or min(int(found[1]), int(found[2])) < 1:
            raise ValueError(f"tiles must be auto, off or WxH (e.g. 640x640), got {text!r}")
        return cls(mode="fixed", tile_hw=(int(found[2]), int(found[1])), **options)  # type: ignore[arg-type]

    @classmethod
    def from_settings(cls, settings: InferSettings) -> TilePlan:
        """The plan of the ``infer`` settings (``tiles``, ``tile_overlap``, ``tile_factor``...)."""
        return cls.parse(
            settings.tiles,
            overlap=settings.tile_overlap,
            factor=settings.tile_factor,
            full_frame=settings.tile_full_frame,
            match=settings.tile_match,
        )

    def describe(self) -> str:
        """The choice as written into summaries and model metadata: ``auto``, ``off``, ``WxH``."""
        if self.mode == "fixed" and self.tile_hw is not None:
            return f"{self.tile_hw[1]}x{self.tile_hw[0]}"
        return self.mode

    def tile_size(self, frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
        """The tile ``(h, w)`` for a frame, or the frame's own size when it is not tiled."""
        if self.mode == "fixed" and self.tile_hw is not None:
            tile = self.tile_hw
        elif (
            self.mode == "auto"
            and max(frame_hw[0] / input_hw[0], frame_hw[1] / input_hw[1]) > self.factor
        ):
            tile = input_hw
        else:
            return frame_hw
        if frame_hw[0] <= tile[0] and frame_hw[1] <= tile[1]:
            return frame_hw  # one tile would be the whole frame
        return tile

    def pieces(self, frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> int:
        """How many engine inputs `cut` makes of a frame of this size."""
        tile = self.tile_size(frame_hw, input_hw)
        if tile == frame_hw:
            return 1
        return len(windows(frame_hw, tile, self.overlap)) + int(self.full_frame)

    def cut(self, frame: np.ndarray, input_hw: tuple[int, int]) -> list[Piece]:
        """The pieces of one ``(h, w, 3)`` frame: its tiles (+ the whole frame), or the frame."""
        frame_hw = (frame.shape[0], frame.shape[1])
        tile = self.tile_size(frame_hw, input_hw)
        whole = _whole(frame, input_hw)
        if tile == frame_hw:
            return [whole]
        pieces = [
            _tile(frame, window, tile, input_hw) for window in windows(frame_hw, tile, self.overlap)
        ]
        return [*pieces, whole] if self.full_frame else pieces

    def combine(self, parts: Sequence[Detections]) -> Detections:
        """The detections of a frame from those of its pieces (`merge` when there are several)."""
        if len(parts) == 1:
            return parts[0]
        return merge(parts, match=self.match)


OFF = TilePlan(mode="off")
"""Whole frames only (the path without tiles)."""


def _whole(frame: np.ndarray, input_hw: tuple[int, int]) -> Piece:
    h, w = frame.shape[:2]
    box = Letterbox.fit(source_hw=(h, w), target_hw=input_hw)
    return Piece(window=Window(x=0, y=0, w=w, h=h), letterbox=box, image=box.apply(frame))


def _tile(
    frame: np.ndarray, window: Window, tile_hw: tuple[int, int], input_hw: tuple[int, int]
) -> Piece:
    crop = frame[window.y : window.y + window.h, window.x : window.x + window.w]
    if (window.h, window.w) != tile_hw:
        crop = cv2.copyMakeBorder(
            crop,
            0,
            tile_hw[0] - window.h,
            0,
            tile_hw[1] - window.w,
            cv2.BORDER_CONSTANT,
            value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
        )
    box = Letterbox.fit(source_hw=tile_hw, target_hw=input_hw)
    image = box.apply(crop) if tile_hw != input_hw else np.ascontiguousarray(crop)
    return Piece(window=window, letterbox=box, image=image)


def merge(parts: Sequence[Detections], *, match: float = 0.5) -> Detections:
    """Class-aware greedy non-maximum merging of the pieces' detections (step 4 above).

    Returns:
        The merged detections, most confident first.
    """
    found = _concatenate(parts)
    if len(found) < 2:
        return found
    xyxy, confidence = found.xyxy.astype(np.float64), found.confidence
    order = np.lexsort((xyxy[:, 3], xyxy[:, 2], xyxy[:, 1], xyxy[:, 0], -confidence))
    ios = _intersection_over_smaller(xyxy, xyxy)
    taken = np.zeros(len(found), bool)
    boxes, scores, classes = [], [], []
    for position, keeper in enumerate(order):
        if taken[keeper]:
            continue
        taken[keeper] = True
        later = order[position + 1 :]
        later = later[~taken[later] & (found.class_id[later] == found.class_id[keeper])]
        absorbed = later[ios[keeper, later] >= match]
        taken[absorbed] = True
        box = xyxy[keeper].copy()
        for other in absorbed:  # SAHI checks each against the grown box before joining it
            if _intersection_over_smaller(box[None], xyxy[other][None])[0, 0] >= match:
                box[:2] = np.minimum(box[:2], xyxy[other, :2])
                box[2:] = np.maximum(box[2:], xyxy[other, 2:])
        boxes.append(box)
        scores.append(confidence[keeper])
        classes.append(found.class_id[keeper])
    merged = Detections(
        xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
        confidence=np.asarray(scores, np.float32),
        class_id=np.asarray(classes, np.int64),
    )
    return merged[np.argsort(-merged.confidence, kind="stable")]


def _concatenate(parts: Sequence[Detections]) -> Detections:
    if not parts:
        return Detections.empty()
    return Detections(
        xyxy=np.concatenate([p.xyxy for p in parts]),
        confidence=np.concatenate([p.confidence for p in parts]),
        class_id=np.concatenate([p.class_id for p in parts]),
    )


def _intersection_over_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)
