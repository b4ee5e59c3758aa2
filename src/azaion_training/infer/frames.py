"""`detect_frames`: the deployed detection path for whole still frames.

This is what `azaion-infer` does to a frame, as one function that other components (the
evaluator, the demo) call, so a model is always scored exactly as it runs: each frame is
letterboxed into the engine's input, frames fill the engine's batch, the rows are post-processed
(`postprocess`: confidence, back to frame pixels, overlap removal).

Frames may differ in size; each gets its own letterbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from azaion_training.infer.engine import Engine
from azaion_training.infer.postprocess import Detections, postprocess
from azaion_training.infer.preprocess import Letterbox, to_input

DEFAULT_BATCH = 4
"""Frames per engine call when the engine takes any batch size (SPEC 11)."""


def detect_frames(
    engine: Engine,
    frames: Iterable[np.ndarray],
    *,
    conf: float,
    iou: float,
    batch: int = DEFAULT_BATCH,
) -> Iterator[Detections]:
    """Yields the detections of each frame, in frame order, boxes in frame pixels.

    Args:
        engine: a loaded `Engine`; its fixed batch size, if any, overrides ``batch``.
        frames: ``(h, w, 3)`` uint8 BGR images.
        conf, iou: thresholds of `postprocess`.
        batch: frames per engine call for engines without a fixed batch.
    """
    size = engine.batch_size or batch
    pending: list[tuple[Letterbox, np.ndarray]] = []
    for frame in frames:
        box = Letterbox.fit(source_hw=frame.shape[:2], target_hw=engine.input_size)
        pending.append((box, box.apply(frame)))
        if len(pending) == size:
            yield from _run(engine, pending, conf=conf, iou=iou)
            pending = []
    if pending:
        yield from _run(engine, pending, conf=conf, iou=iou)


def _run(
    engine: Engine, pending: list[tuple[Letterbox, np.ndarray]], *, conf: float, iou: float
) -> Iterator[Detections]:
    rows = engine.run(to_input([image for _, image in pending], batch_size=engine.batch_size))
    for (box, _), frame_rows in zip(pending, rows, strict=False):  # drops padded rows
        yield postprocess(frame_rows, letterbox=box, conf=conf, iou=iou)
