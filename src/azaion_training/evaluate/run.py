"""`evaluate_model`: a model scored as it is deployed, on the full frames of a dataset split.

Every frame goes through `azaion_training.infer.frames.detect_frames`, the path of
``azaion-infer`` (letterbox into the engine's input, batches, NMS-in-graph rows, confidence,
back to frame pixels, overlap removal at the deployed ``iou``), once, at the low threshold
``score_conf``. From those detections:

- COCO AP (`coco`): mAP50, mAP50-95, per class, per size bucket at native resolution;
- at the deployed ``conf`` (`matching`): precision, recall, F1, per class, recall per bucket,
  the confusion of the classes present; and the P/R/F1-confidence curves.

On whole frames the detections above ``conf`` are exactly those ``azaion-infer`` keeps at
``conf``: both steps of `postprocess` visit boxes from the most confident down, so a lower
threshold adds boxes after them and changes none of theirs (``tests/evaluate/test_run.py`` checks
it), and one engine pass serves both. A frame cut into tiles runs a second time at ``conf``,
since merging boxes across tiles joins low-confidence boxes into confident ones; its curves stay
those of the low-threshold pass.

Frames are read one at a time; only their truth and detections are kept.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from azaion_training.boxes import MAX_DETECTIONS
from azaion_training.classes import ClassTable
from azaion_training.evaluate import matching
from azaion_training.evaluate.coco import CocoScores, coco_scores
from azaion_training.evaluate.scores import (
    ClassScores,
    Confusion,
    EvaluatorSettings,
    Scores,
    SizeScores,
)
from azaion_training.evaluate.sizes import BUCKETS
from azaion_training.evaluate.split import Sample, Truth, read_split, split_images
from azaion_training.infer.engine import Engine
from azaion_training.infer.frames import DEFAULT_BATCH, detect_frames
from azaion_training.infer.postprocess import Detections
from azaion_training.infer.tiles import OFF, TilePlan

logger = logging.getLogger(__name__)

SCORE_CONF = 0.001
"""The default low threshold of the detections AP is computed from (as Ultralytics' validator)."""

MATCH_IOU = 0.5
"""The IoU at which a detection finds an object, for precision, recall, F1 and the confusion."""


@dataclass(frozen=True)
class ScoredFrame:
    """One frame's truth and detections.

    Attributes:
        detections: down to ``score_conf`` (for AP and the curves).
        deployed: what ``azaion-infer`` reports at ``conf``.
    """

    path: Path
    shape: tuple[int, int]
    truth: Truth
    detections: Detections
    deployed: Detections


@dataclass(frozen=True)
class Evaluation:
    """The scores, and the frames they were made from."""

    scores: Scores
    frames: tuple[ScoredFrame, ...]


def evaluate_model(
    engine: Engine,
    split: Path,
    *,
    conf: float,
    iou: float,
    model: str,
    engine_kind: str = "onnx",
    score_conf: float = SCORE_CONF,
    batch: int = DEFAULT_BATCH,
    tiles: TilePlan = OFF,
    match_iou: float = MATCH_IOU,
    max_detections: int = MAX_DETECTIONS,
    classes: ClassTable | None = None,
    progress: bool = True,
) -> Evaluation:
    """Scores a loaded engine on the full frames of a split folder (``images/``, ``labels/``).

    Args:
        engine: the model as deployed (any engine kind).
        split: the split folder (`split.resolve_split` finds it in a dataset).
        conf, iou: the deployed thresholds (``infer.conf``, ``infer.iou``).
        model, engine_kind: what the engine runs, for the record.
        score_conf: the low threshold for AP.
        batch: frames per engine call (a fixed-batch engine uses its own).
        tiles: how frames are cut (`infer.tiles`); whole frames by default.
        classes: names of the class slots.
        progress: show a progress bar.

    Raises:
        DatasetError: the split has no images, or an image or label is unreadable.
        EngineError: the engine failed.
    """
    started = time.monotonic()
    images = split_images(split)
    settings = EvaluatorSettings(
        model=model,
        engine=engine_kind,
        imgsz=tuple(engine.input_size),  # type: ignore[arg-type]
        batch=engine.batch_size or batch,
        tiles=tiles.describe(),
        tile_options=tile_options(tiles),
        conf=conf,
        iou=iou,
        score_conf=score_conf,
        match_iou=match_iou,
        max_detections=max_detections,
    )
    frames = tuple(_detect(engine, images, settings, tiles, progress=progress))
    scores = score_frames(frames, settings, split=str(split), classes=classes)
    scores = _with_seconds(scores, time.monotonic() - started)
    logger.info(
        "%s on %s: mAP50-95 %s, %d images in %.1f s",
        model,
        split,
        "-" if scores.map50_95 is None else f"{scores.map50_95:.4f}",
        scores.images,
        scores.seconds,
    )
    return Evaluation(scores, frames)


def score_frames(
    frames: Sequence[ScoredFrame],
    settings: EvaluatorSettings,
    *,
    split: str,
    classes: ClassTable | None = None,
) -> Scores:
    """The scores of frames whose detections are known (the pure half of `evaluate_model`)."""
    table = classes or ClassTable.default()
    frames = [_limit(f, settings.max_detections) for f in frames]
    coco = coco_scores(
        [(f.shape, f.truth, f.detections) for f in frames],
        max_detections=settings.max_detections,
    )
    matched = [matching.match_frame(f.truth, f.detections, iou=settings.match_iou) for f in frames]
    score = _cat([f.detections.confidence for f in frames], np.float64)
    hit = _cat([m.true_positive for m in matched], bool)
    det_class = _cat([f.detections.class_id for f in frames], np.int64)
    found_by = _cat([m.found_by for m in matched], np.float64)
    truth_class = _cat([f.truth.class_id for f in frames], np.int64)
    truth_side = np.sqrt(_cat([_areas(f.truth.xyxy) for f in frames], np.float64))
    overall = matching.at_confidence(score, hit, len(truth_class), settings.conf)
    confusion: Counter[tuple[int, int]] = Counter()
    for f in frames:
        confusion += matching.confusion(
            f.truth, f.detections, conf=settings.conf, iou=settings.match_iou
        )
    present = sorted(set(truth_class.tolist()) | set(det_class[score > settings.conf].tolist()))
    rows = []
    for class_id in present:
        mine = det_class == class_id
        at = matching.at_confidence(
            score[mine], hit[mine], int((truth_class == class_id).sum()), settings.conf
        )
        ap = coco.classes.get(class_id)
        rows.append(
            ClassScores(
                class_id=class_id,
                name=_name(table, class_id),
                truths=at.truths,
                detections=at.detections,
                map50=ap.map50 if ap else None,
                map50_95=ap.map50_95 if ap else None,
                precision=at.precision,
                recall=at.recall,
                f1=at.f1,
            )
        )
    return Scores(
        split=split,
        images=len(frames),
        truths=len(truth_class),
        map50=coco.all.map50,
        map50_95=coco.all.map50_95,
        precision=overall.precision,
        recall=overall.recall,
        f1=overall.f1,
        classes=tuple(rows),
        sizes=_sizes(coco, truth_side, found_by),
        curves=matching.curves(score, hit, len(truth_class)),
        confusion=_confusion(confusion, table),
        settings=settings,
        seconds=0.0,
    )


def tile_options(plan: TilePlan) -> dict[str, Any]:
    """The fields of a tile plan, for the record (JSON)."""
    return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(plan).items()}


def _detect(
    engine: Engine,
    images: list[Path],
    settings: EvaluatorSettings,
    tiles: TilePlan,
    *,
    progress: bool,
) -> Iterator[ScoredFrame]:
    from tqdm import tqdm

    waiting: deque[Sample] = deque()

    def pixels() -> Iterator[np.ndarray]:
        for sample in read_split(images):
            waiting.append(sample)
            yield sample.image

    options = {"iou": settings.iou, "batch": settings.batch, "tiles": tiles}
    low = detect_frames(engine, pixels(), conf=settings.score_conf, **options)
    with tqdm(total=len(images), desc="evaluate", unit="image", disable=not progress) as bar:
        for detections in low:
            sample = waiting.popleft()
            shape = sample.image.shape[:2]
            if tiles.pieces(shape, engine.input_size) > 1:  # merged tiles: run it as deployed
                deployed = next(
                    detect_frames(engine, [sample.image], conf=settings.conf, **options)
                )
            else:
                deployed = _above(detections, settings.conf)
            yield ScoredFrame(sample.path, shape, sample.truth, detections, deployed)
            bar.update()


def _above(found: Detections, conf: float) -> Detections:
    kept = found.confidence > conf
    return Detections(found.xyxy[kept], found.confidence[kept], found.class_id[kept])


def _limit(frame: ScoredFrame, most: int) -> ScoredFrame:
    found = frame.detections
    if len(found.confidence) <= most:
        return frame
    keep = np.argsort(-found.confidence, kind="stable")[:most]
    limited = Detections(found.xyxy[keep], found.confidence[keep], found.class_id[keep])
    return replace(frame, detections=limited)


def _sizes(coco: CocoScores, side: np.ndarray, found_by: np.ndarray) -> tuple[SizeScores, ...]:
    rows = []
    for b in BUCKETS:
        inside = (side >= b.low) & (side <= b.high)
        count = int(inside.sum())
        ap = coco.sizes[b.key]
        rows.append(
            SizeScores(
                key=b.key,
                label=b.label,
                truths=count,
                map50=ap.map50,
                map50_95=ap.map50_95,
                recall=ap.recall,
                recall_at_conf=float((found_by[inside] >= 0).mean()) if count else None,
            )
        )
    return tuple(rows)


def _confusion(counts: Counter[tuple[int, int]], table: ClassTable) -> Confusion:
    ids = sorted({c for pair in counts for c in pair} - {matching.BACKGROUND})
    order = [*ids, matching.BACKGROUND]
    return Confusion(
        class_ids=tuple(ids),
        names=tuple(_name(table, c) for c in ids),
        counts=tuple(tuple(counts[(t, d)] for d in order) for t in order),
    )


def _name(table: ClassTable, class_id: int) -> str:
    try:
        return table[class_id].name
    except KeyError:
        return f"class {class_id}"


def _areas(xyxy: np.ndarray) -> np.ndarray:
    return (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _with_seconds(scores: Scores, seconds: float) -> Scores:
    return replace(scores, seconds=round(seconds, 3))
