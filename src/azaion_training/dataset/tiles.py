"""Training tiles: a large train image also enters the dataset as tiles at native resolution.

A model trained at ``imgsz`` sees a 4000 px frame shrunk to ``imgsz``: its 12 px targets arrive
at ~4 px. Formation therefore adds, for every train sample (original or variant) larger than the
tile by ``tile_factor`` on either side, the tiles of the inference path (`boxes.windows`: tiles
of ``tile`` pixels, default the training ``imgsz``, ``tile_overlap`` apart, the last one flush
with the edge). The frame itself stays too (the whole-frame pass learns the large objects).

- A box cut by a tile edge follows the augmentation variants' rule (`boxes.cut_to_window`):
  kept, clipped, when at least ``augment.min_visible_fraction`` of it is inside and it is no
  thinner than ``augment.min_box_px``; else it is left out of that tile.
- A tile with no box is kept as background when a hash of its name falls under
  ``tile_empty_share`` (so the same tiles are kept every time).
- Tile ``{stem}.tile-{x}-{y}`` (its top-left corner in the frame) is written as JPEG beside its
  frame in ``train/``; it belongs to its frame's source annotation and group in the manifest,
  so it can never be in another split than its frame. Valid and test hold whole frames only:
  they are scored on whole frames by the deployed (tiled) path.

Tiles are written, not linked (a tile is new pixels): about one decode of the frame and one JPEG
encode per tile, at formation, so a dataset stays reproducible from ``data-processed/`` and the
settings and nothing else keeps tile files; see docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from azaion_training.boxes import Window, cut_to_window, windows
from azaion_training.config import Settings
from azaion_training.errors import MediaError
from azaion_training.fs import atomic_write_bytes
from azaion_training.imageheader import image_size
from azaion_training.labels import Box, format_label, read_label

TILE_MARK = ".tile-"
"""Between a sample's stem and a tile's corner in a tile's name."""

_SIZE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)$")


@dataclass(frozen=True)
class TrainTiles:
    """How formation cuts train samples into tiles (see the module docstring).

    Attributes:
        tile_hw: ``(h, w)`` of a tile in pixels.
        auto: tile only frames larger than the tile by ``factor`` (``auto``); else every frame
            larger than one tile.
        factor: see ``auto``.
        overlap: fraction of a tile shared with its neighbour.
        empty_share: share of tiles without boxes kept as background (0..1).
        min_visible_fraction, min_box_px: the rule for boxes cut by a tile edge.
        quality: JPEG quality of the tiles.
    """

    tile_hw: tuple[int, int]
    auto: bool = True
    factor: float = 1.5
    overlap: float = 0.2
    empty_share: float = 0.1
    min_visible_fraction: float = 0.3
    min_box_px: float = 2.0
    quality: int = 95

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainTiles | None:
        """The tiles of ``dataset.tiles`` (``off``: ``None``; ``auto``: of ``training.imgsz``)."""
        choice = settings.dataset.tiles
        if choice == "off":
            return None
        if choice == "auto":
            tile_hw = (settings.training.imgsz, settings.training.imgsz)
        else:
            found = _SIZE.match(choice)
            assert found is not None  # the setting's pattern
            tile_hw = (int(found[2]), int(found[1]))
        return cls(
            tile_hw=tile_hw,
            auto=choice == "auto",
            factor=settings.dataset.tile_factor,
            overlap=settings.dataset.tile_overlap,
            empty_share=settings.dataset.tile_empty_share,
            min_visible_fraction=settings.augment.min_visible_fraction,
            min_box_px=settings.augment.min_box_px,
            quality=settings.augment.jpeg_quality,
        )

    def describe(self) -> dict[str, object]:
        """The settings, as written into the dataset's manifest."""
        return {
            "tile": f"{self.tile_hw[1]}x{self.tile_hw[0]}",
            "auto": self.auto,
            "factor": self.factor,
            "overlap": self.overlap,
            "empty_share": self.empty_share,
            "min_visible_fraction": self.min_visible_fraction,
            "min_box_px": self.min_box_px,
        }

    def windows_of(self, frame_hw: tuple[int, int]) -> list[Window]:
        """The tile windows of a frame of this size; none when it is not tiled."""
        (h, w), (th, tw) = frame_hw, self.tile_hw
        limit = self.factor if self.auto else 1.0
        if h <= th * limit and w <= tw * limit:
            return []
        return windows(frame_hw, self.tile_hw, self.overlap)

    def write(self, image: Path, label: Path, images: Path, labels: Path) -> list[str]:
        """Writes the tiles of one sample (its image and label files) into ``images`` and
        ``labels``; returns the tiles' stems (none when the image is not larger than a tile).

        Raises:
            OSError: a tile cannot be written.
        """
        try:
            width, height = image_size(image)
        except MediaError:  # a format without a header reader: decode it to see
            width, height = _decoded_size(image)
        cuts = self.windows_of((height, width))
        if not cuts:
            return []
        frame = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if frame is None or frame.shape[:2] != (height, width):
            return []  # the snapshot checked the pair: an image that does not decode has no tiles
        boxes = read_label(label)
        stem = image.name[: image.name.rfind(".")]
        written = []
        for window in cuts:
            name = f"{stem}{TILE_MARK}{window.x}-{window.y}"
            kept = self.boxes_in(boxes, window, frame_hw=(height, width))
            if not kept and not _keeps_empty(name, self.empty_share):
                continue
            crop = frame[window.y : window.y + window.h, window.x : window.x + window.w]
            ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise OSError(f"cannot encode tile {name}")
            atomic_write_bytes(images / f"{name}.jpg", encoded.tobytes(), durable=False)
            atomic_write_bytes(labels / f"{name}.txt", format_label(kept).encode(), durable=False)
            written.append(name)
        return written

    def boxes_in(self, boxes: list[Box], window: Window, *, frame_hw: tuple[int, int]) -> list[Box]:
        """The boxes of a frame as its tile ``window`` shows them (the variants' rule)."""
        if not boxes:
            return []
        (h, w) = frame_hw
        scale = np.array([w, h, w, h], np.float64)
        xyxy = np.array([box.xyxy for box in boxes], np.float64) * scale
        bounds = (window.x, window.y, window.x + window.w, window.y + window.h)
        clipped, outside, thin = cut_to_window(
            xyxy,
            bounds,
            min_visible_fraction=self.min_visible_fraction,
            min_box_px=self.min_box_px,
        )
        shift = np.array([window.x, window.y, window.x, window.y], np.float64)
        size = np.array([window.w, window.h, window.w, window.h], np.float64)
        local = (clipped - shift) / size
        return [
            Box.from_xyxy(box.class_id, *map(float, local[i]))
            for i, box in enumerate(boxes)
            if not (outside[i] or thin[i])
        ]


def is_tile(stem: str) -> bool:
    """Whether a dataset file's stem is a tile's."""
    return TILE_MARK in stem


def _decoded_size(image: Path) -> tuple[int, int]:
    frame = cv2.imread(str(image), cv2.IMREAD_COLOR)
    return (0, 0) if frame is None else (frame.shape[1], frame.shape[0])


def _keeps_empty(name: str, share: float) -> bool:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
