"""`infer_video`: a video and an engine in; detections, an annotated video and a summary out.

Files written under the output folder (each atomically, so a failed run leaves none half-written):

``detections.jsonl``
    One JSON object per *inferred* frame, in frame order, also when it found nothing::

        {"frame": 8, "time_ms": 320.0, "detections": [{"class_id": 15, "class_name": "Building",
          "confidence": 0.9312, "box": {"cx": 0.41, "cy": 0.52, "w": 0.18, "h": 0.21},
          "box_px": {"x1": 73.1, "y1": 74.3, "x2": 131.0, "y2": 124.7}}]}

    ``box`` is the YOLO form (centre, width, height, normalised to the frame); ``box_px`` the
    corners in frame pixels.
``annotated.mp4``
    The inferred frames only, with their detections drawn, at ``fps / every`` so that it plays at
    the speed of the source. (Drawing on every frame would mean decoding every frame, which the
    sampling exists to avoid.)
``summary.json``
    Frames read and inferred, the frame count the container declares and whether the video was
    read to it (``complete``), detections per class name, wall-clock seconds, frames per second
    (frames of the video read per second), the engine that ran and the tiling; see
    `InferSummary`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from azaion_training.classes import ClassTable
from azaion_training.config import InferSettings
from azaion_training.fs import atomic_write_text, atomic_writer
from azaion_training.infer.annotate import draw_detections
from azaion_training.infer.engine import Engine
from azaion_training.infer.tiles import TilePlan
from azaion_training.infer.video import (
    BackgroundWriter,
    FrameResult,
    PreviewWindow,
    VideoDetection,
    VideoFile,
)
from azaion_training.labels import Box

logger = logging.getLogger(__name__)

DETECTIONS_FILE = "detections.jsonl"
ANNOTATED_FILE = "annotated.mp4"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class InferSummary:
    """What one run did; written as ``summary.json``."""

    video: str
    engine: str
    frames_read: int
    frames_inferred: int
    frames_declared: int
    """The frame count the container declares (0: it declares none)."""
    complete: bool
    """False when the video ended before its declared frame count (cut or damaged)."""
    width: int
    height: int
    detections: int
    detections_per_class: dict[str, int]
    seconds: float
    fps: float
    every: int
    batch: int
    conf: float
    iou: float
    tiles: str
    """The ``--tiles`` choice: ``auto``, ``off`` or ``WxH``."""
    tile_size: str
    """``WxH`` of the tiles the frames were cut into, or ``whole`` (letterboxed whole)."""
    tile_overlap: float
    pieces_per_frame: int
    """Engine inputs per inferred frame: tiles (+ the whole frame), or 1."""
    engine_calls: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def line(self) -> str:
        """One line for the console: frames, detections per class, time and the engine."""
        per_class = ", ".join(f"{k} {v}" for k, v in self.detections_per_class.items())
        tiles = (
            f"tiles {self.tile_size} ({self.pieces_per_frame} inputs a frame)"
            if self.tile_size != "whole"
            else "whole frames"
        )
        line = (
            f"{self.frames_read} frames read, {self.frames_inferred} inferred, "
            f"{self.detections} detections ({per_class or 'none'}) in {self.seconds:.1f} s "
            f"({self.fps:.1f} frames/s) on {self.engine}, {tiles}"
        )
        if not self.complete:
            line += (
                f"; INCOMPLETE: the video ended after {self.frames_read} of the "
                f"{self.frames_declared} frames it declares"
            )
        return line


def infer_video(
    video: Path,
    engine: Engine,
    out_dir: Path,
    *,
    settings: InferSettings,
    classes: ClassTable | None = None,
    show: bool = False,
    progress: bool = True,
    on_result: Callable[[FrameResult], None] | None = None,
) -> InferSummary:
    """Runs ``engine`` over every ``settings.every``-th frame of ``video``; writes the three files.

    Args:
        video: the video file.
        engine: a loaded engine; the caller closes it.
        out_dir: the output folder (created).
        settings: sampling, batch and thresholds.
        classes: colours and short names for drawing; the default table when ``None``.
        show: also show the annotated frames in a window (the caller checks for a display).
        progress: show a progress bar (frames/s) on stderr.
        on_result: called on the calling thread with each inferred frame's result.

    Raises:
        MediaError: the video cannot be read, or the annotated video cannot be written.
        EngineError: the engine fails.
    """
    classes = classes or ClassTable.default()
    if engine.batch_size is not None and engine.batch_size != settings.batch:
        logger.info("the model takes batches of %d; using that", engine.batch_size)
    window = PreviewWindow(f"azaion-infer: {video.name}") if show else None
    plan = TilePlan.from_settings(settings)
    per_class: Counter[str] = Counter()
    started = time.perf_counter()
    with VideoDetection(
        video,
        engine,
        every=settings.every,
        batch=settings.batch,
        conf=settings.conf,
        iou=settings.iou,
        tiles=plan,
    ) as detection:
        info = detection.info
        tile_hw = detection.tile_size
        pieces = plan.pieces((info.height, info.width), engine.input_size)
        with (
            atomic_writer(out_dir / DETECTIONS_FILE) as lines,
            VideoFile(
                out_dir / ANNOTATED_FILE,
                fps=annotated_fps(info.fps, every=settings.every),
                size_wh=(info.width, info.height),
            ) as annotated,
            BackgroundWriter(
                _annotator(annotated, window, classes, engine.class_names),
                finish=window.close if window is not None else None,
                name="video-writer",
            ) as writer,
            tqdm(
                total=info.frame_count or None,
                unit="frame",
                desc=video.name,
                disable=not progress,
                dynamic_ncols=True,
            ) as bar,
        ):
            for result in detection:
                names = [
                    _class_name(engine.class_names, int(c)) for c in result.detections.class_id
                ]
                lines.write(detection_line(result, names, width=info.width, height=info.height))
                per_class.update(names)
                writer.put(result)
                if on_result is not None:
                    on_result(result)
                bar.update(detection.frames_read - bar.n)
            bar.update(detection.frames_read - bar.n)
    seconds = time.perf_counter() - started
    summary = InferSummary(
        video=str(video),
        engine=engine.name,
        frames_read=detection.frames_read,
        frames_inferred=detection.frames_inferred,
        frames_declared=info.frame_count,
        complete=detection.complete,
        width=info.width,
        height=info.height,
        detections=sum(per_class.values()),
        detections_per_class=dict(sorted(per_class.items())),
        seconds=round(seconds, 3),
        fps=round(detection.frames_read / seconds, 2) if seconds > 0 else 0.0,
        every=settings.every,
        batch=detection.batch,
        conf=settings.conf,
        iou=settings.iou,
        tiles=plan.describe(),
        tile_size="whole" if tile_hw == (info.height, info.width) else f"{tile_hw[1]}x{tile_hw[0]}",
        tile_overlap=plan.overlap,
        pieces_per_frame=pieces,
        engine_calls=detection.engine_calls,
    )
    atomic_write_text(out_dir / SUMMARY_FILE, summary.to_json())
    logger.info("%s: %s", video, summary.line())
    if not summary.complete:
        logger.warning(
            "%s ended after %d of the %d frames its container declares (cut or damaged)",
            video,
            summary.frames_read,
            summary.frames_declared,
        )
    return summary


def detection_line(result: FrameResult, names: list[str], *, width: int, height: int) -> bytes:
    """One ``detections.jsonl`` line (UTF-8, newline-terminated) for an inferred frame.

    Args:
        result: the frame and its detections in frame pixels.
        names: the class name of each detection.
        width, height: the frame size, to normalise the boxes.
    """
    detections = result.detections
    items = []
    for (x1, y1, x2, y2), confidence, class_id, name in zip(
        detections.xyxy.tolist(),
        detections.confidence.tolist(),
        detections.class_id.tolist(),
        names,
        strict=True,
    ):
        box = Box.from_xyxy(class_id, x1 / width, y1 / height, x2 / width, y2 / height)
        items.append(
            {
                "class_id": class_id,
                "class_name": name,
                "confidence": round(confidence, 4),
                "box": {k: round(getattr(box, k), 6) for k in ("cx", "cy", "w", "h")},
                "box_px": {
                    "x1": round(x1, 2),
                    "y1": round(y1, 2),
                    "x2": round(x2, 2),
                    "y2": round(y2, 2),
                },
            }
        )
    line = {
        "frame": result.frame.index,
        "time_ms": round(result.frame.time_ms, 3),
        "detections": items,
    }
    return (json.dumps(line) + "\n").encode("utf-8")


def annotated_fps(fps: float, *, every: int) -> float:
    """Frame rate of the annotated video: the source's divided by ``every`` (25 when unknown)."""
    return (fps if fps > 0 else 25.0) / every


def _class_name(names: list[str], class_id: int) -> str:
    return names[class_id] if 0 <= class_id < len(names) else f"Class-{class_id}"


def _annotator(
    video: VideoFile, window: PreviewWindow | None, classes: ClassTable, names: Sequence[str]
) -> Callable[[FrameResult], None]:
    def annotate(result: FrameResult) -> None:
        image = draw_detections(result.frame.image, result.detections, classes=classes, names=names)
        video.write(image)
        if window is not None:
            window.show(image)

    return annotate
