"""`detect_frames`: the deployed detection path for still frames, and the batching it shares
with video.

This is what `azaion-infer` does to a frame, as one function that other components (the
evaluator, the demo) call, so a model is always scored exactly as it runs. Each frame is cut into
pieces by a `TilePlan` (the whole frame letterboxed, or its tiles at native resolution, see
`azaion_training.infer.tiles`); the pieces of one or more frames fill the engine's batch
(`Packer`: every call full but the last), and the rows of each piece are post-processed and
merged back into its frame's detections (`Assembler`). `VideoDetection` runs the same two on
its reader and calling threads.

Frames may differ in size; each gets its own letterbox and tiles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from azaion_training.infer.engine import Engine
from azaion_training.infer.postprocess import Detections
from azaion_training.infer.preprocess import to_input
from azaion_training.infer.tiles import OFF, Piece, TilePlan

DEFAULT_BATCH = 4
"""Pieces per engine call when the engine takes any batch size (SPEC 11)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Batch(Generic[T]):
    """One engine input and what it holds.

    Attributes:
        input: ``[B, 3, H, W]`` float32, padded to the engine's fixed batch.
        pieces: the pieces in its rows, in order.
        starts: the frames whose first piece is in this batch, with their number of pieces.
    """

    input: np.ndarray
    pieces: list[Piece]
    starts: list[tuple[T, int]]


class Packer(Generic[T]):
    """Cuts frames into pieces and packs them, in order, into batches of the engine's size.

    Args:
        engine: the engine (its input size and fixed batch, if any).
        plan: how frames are cut.
        batch: pieces per call for an engine without a fixed batch.
    """

    def __init__(self, engine: Engine, plan: TilePlan, batch: int) -> None:
        self._input_hw = engine.input_size
        self._fixed = engine.batch_size
        self.size = engine.batch_size or batch
        self._plan = plan
        self._pieces: list[Piece] = []
        self._starts: list[tuple[T, int]] = []

    def add(self, owner: T, frame: np.ndarray) -> Iterator[Batch[T]]:
        """Adds one ``(h, w, 3)`` BGR frame; yields the batches it fills."""
        pieces = self._plan.cut(frame, self._input_hw)
        self._starts.append((owner, len(pieces)))
        for piece in pieces:
            self._pieces.append(piece)
            if len(self._pieces) == self.size:
                yield self._take()

    def flush(self) -> Iterator[Batch[T]]:
        """Yields the last, short batch (padded for a fixed-batch engine), if any."""
        if self._pieces:
            yield self._take()

    def _take(self) -> Batch[T]:
        images = [piece.image for piece in self._pieces]
        batch = Batch(
            input=to_input(images, batch_size=self._fixed),
            pieces=self._pieces,
            starts=self._starts,
        )
        self._pieces, self._starts = [], []
        return batch


class Assembler(Generic[T]):
    """Turns the engine rows of successive batches into each frame's detections, in order.

    Args:
        plan: the plan the frames were cut by (it merges the pieces).
        conf, iou: thresholds of `postprocess`, applied to each piece.
    """

    def __init__(self, plan: TilePlan, *, conf: float, iou: float) -> None:
        self._plan = plan
        self._conf, self._iou = conf, iou
        self._open: deque[tuple[T, int, list[Detections]]] = deque()

    def take(self, batch: Batch[T], rows: np.ndarray) -> Iterator[tuple[T, Detections]]:
        """Yields ``(frame, detections)`` for each frame whose last piece is in ``batch``."""
        self._open.extend((owner, count, []) for owner, count in batch.starts)
        index = 0
        for piece, piece_rows in zip(batch.pieces, rows, strict=False):  # drops padded rows
            while len(self._open[index][2]) == self._open[index][1]:
                index += 1
            self._open[index][2].append(
                piece.detections(piece_rows, conf=self._conf, iou=self._iou)
            )
        while self._open and len(self._open[0][2]) == self._open[0][1]:
            owner, _, parts = self._open.popleft()
            yield owner, self._plan.combine(parts)


def detect_frames(
    engine: Engine,
    frames: Iterable[np.ndarray],
    *,
    conf: float,
    iou: float,
    batch: int = DEFAULT_BATCH,
    tiles: TilePlan = OFF,
) -> Iterator[Detections]:
    """Yields the detections of each frame, in frame order, boxes in frame pixels.

    Args:
        engine: a loaded `Engine`; its fixed batch size, if any, overrides ``batch``.
        frames: ``(h, w, 3)`` uint8 BGR images.
        conf, iou: thresholds of `postprocess`.
        batch: pieces per engine call for engines without a fixed batch.
        tiles: how frames are cut; whole frames by default.
    """
    packer: Packer[int] = Packer(engine, tiles, batch)
    assembler: Assembler[int] = Assembler(tiles, conf=conf, iou=iou)
    for index, frame in enumerate(frames):
        for full in packer.add(index, frame):
            yield from (found for _, found in assembler.take(full, engine.run(full.input)))
    for last in packer.flush():
        yield from (found for _, found in assembler.take(last, engine.run(last.input)))
