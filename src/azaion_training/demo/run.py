"""The main job on one machine: annotation events in, an encrypted model and an annotated video out.

`run_demo` drives every component through its real code path, in a fresh data root:

1. draws a synthetic aerial-like data set (`world`), three weather modes included;
2. sends it as the platform's annotation messages into the queue consumer (`queue`): through a
   real RabbitMQ stream when one is configured and reachable, otherwise straight into the
   consumer's handler (the same decoding, routing and position keeping, minus the broker); some
   annotations arrive from an Operator and are validated in bulk afterwards;
3. augments them (`augment`), forms the dated dataset and trains a small model on the CPU
   (`train`), which exports ONNX and publishes it to the embedded local model store;
4. fetches the model back from the store, decrypted in memory only (`store.models`);
5. runs `infer` on a generated video of the same kind of scene and scores the detections against
   the video's known boxes (recall and precision).

The result is a `DemoReport`: counts, mAP on the held-out test split, the video's recall, timings
and the paths of every artefact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from azaion_training.boxes import match_by_class
from azaion_training.config import QueueSettings, Settings
from azaion_training.errors import QueueError, TrainingError
from azaion_training.fs import AnnotationDir, DataTree, atomic_write_text, is_temporary
from azaion_training.labels import Box

logger = logging.getLogger(__name__)

DEMO_FOLDER = "demo"
"""Folder under the data root for the demo's own inputs and outputs."""

MODEL_NAME = "azaion.onnx"
"""The name the trained model is published under, and fetched back by."""

_CONSUME_TIMEOUT_S = 300.0
_KEY_PLOTS = ("results.png", "BoxPR_curve.png", "confusion_matrix_normalized.png")


@dataclass(frozen=True)
class DemoPlan:
    """How big the demo is. The defaults finish in about 5 minutes on 2 CPU cores.

    Attributes:
        annotations: synthetic annotations sent through the queue.
        image_size: their width and height in pixels.
        operator_share: every n-th annotation comes from an Operator and is validated in bulk.
        epochs / imgsz / batch: training on the CPU (``yolo11n.yaml``, from scratch).
        video_frames / video_size: the generated video for inference, ``(width, height)``.
        seed: every random choice derives from it.
    """

    annotations: int = 200
    image_size: int = 160
    operator_share: int = 4
    epochs: int = 10
    imgsz: int = 160
    batch: int = 16
    video_frames: int = 240
    video_size: tuple[int, int] = (320, 240)
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoPlan:
        """A reduced run that checks every step in about a minute (mAP is not meaningful)."""
        return cls(annotations=24, image_size=96, epochs=1, imgsz=64, video_frames=24)


@dataclass(frozen=True)
class DemoReport:
    """What the demo produced. Paths are absolute; seconds are wall time per step."""

    root: Path
    transport: str
    annotations_sent: int
    annotations_in_data: int
    samples: int
    split_sources: dict[str, int]
    test_map50: float
    test_map50_95: float
    valid_map50: float
    video_recall: float
    video_precision: float
    video_detections: int
    frames_inferred: int
    engine: str
    model_pt: Path
    model_onnx: Path
    store_size: int
    annotated_video: Path
    detections: Path
    plots: list[Path]
    samples_grid: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def text(self) -> str:
        """A short readable report."""
        splits = ", ".join(f"{name} {count}" for name, count in self.split_sources.items())
        steps = ", ".join(f"{name} {secs:.0f}s" for name, secs in self.seconds.items())
        return "\n".join(
            [
                f"azaion demo in {self.root}",
                f"  queue      {self.annotations_sent} annotations sent ({self.transport}), "
                f"{self.annotations_in_data} validated in data/",
                f"  augment    {self.samples} samples in data-processed/",
                f"  dataset    sources per split: {splits}",
                f"  training   test mAP50 {self.test_map50:.3f}, mAP50-95 {self.test_map50_95:.3f}"
                f" (valid mAP50 {self.valid_map50:.3f})",
                f"  store      {MODEL_NAME} published and fetched back "
                f"({self.store_size / 1e6:.1f} MB, decrypted in memory, SHA-256 verified)",
                f"  inference  {self.frames_inferred} frames on {self.engine}: "
                f"{self.video_detections} detections, recall {self.video_recall:.2f}, "
                f"precision {self.video_precision:.2f} against the video's true boxes",
                f"  model      {self.model_pt}",
                f"             {self.model_onnx}",
                f"  video      {self.annotated_video}",
                f"  detections {self.detections}",
                f"  samples    {self.samples_grid}",
                *(f"  plot       {plot}" for plot in self.plots),
                f"  time       {steps}, total {sum(self.seconds.values()):.0f}s",
            ]
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str) + "\n"


def demo_settings(settings: Settings, plan: DemoPlan) -> Settings:
    """The settings of a demo run: a small CPU training, the embedded local store.

    ``training.extra`` uses AdamW at a fixed learning rate and no mosaic: Ultralytics' automatic
    choice for short runs gives an 80-class head a learning rate too small to learn anything in a
    few epochs, and mosaic shrinks objects that are already small at these image sizes.
    """
    return settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={
                    "model": "yolo11n.yaml",
                    "epochs": plan.epochs,
                    "imgsz": plan.imgsz,
                    "batch": plan.batch,
                    "device": "cpu",
                    "workers": 0,
                    "patience": plan.epochs,
                    "extra": {
                        "optimizer": "AdamW",
                        "lr0": 0.002,
                        "mosaic": 0.0,
                        "close_mosaic": 0,
                        "warmup_epochs": 1.0 if plan.epochs > 2 else 0.0,
                        "seed": plan.seed,
                        "deterministic": True,
                    },
                }
            ),
            "export": settings.export.model_copy(update={"imgsz": plan.imgsz, "batch": 4}),
            "api": settings.api.model_copy(update={"url": None}),
        }
    )


def run_demo(
    settings: Settings,
    tree: DataTree,
    *,
    plan: DemoPlan | None = None,
    stream: bool | None = None,
    progress: bool = True,
) -> DemoReport:
    """Runs the whole pipeline in ``tree`` (which should be empty) and writes ``demo/report.*``.

    Args:
        settings: the loaded settings; `demo_settings` adapts training, export and the store.
        tree: a fresh data tree.
        plan: sizes; `DemoPlan` defaults when ``None``.
        stream: use the RabbitMQ stream (True), never (False), or when reachable (None).
        progress: show progress bars.

    Raises:
        AzaionError: a step failed; the message names it.
    """
    plan = plan or DemoPlan()
    settings = demo_settings(settings, plan)
    tree.create()
    folder = tree.root / DEMO_FOLDER
    seconds: dict[str, float] = {}
    with _timed(seconds, "generate"):
        incoming = _generate(folder / "incoming", plan)
    with _timed(seconds, "queue"):
        transport, sent = _deliver(settings.queue, tree, incoming, plan=plan, stream=stream)
    with _timed(seconds, "augment"):
        samples = _augment(settings, tree, progress=progress)
    with _timed(seconds, "train"):
        trained = _train(settings, tree, progress=progress)
    with _timed(seconds, "fetch"):
        model = _fetch_verified(settings, tree, trained.model_onnx)
    with _timed(seconds, "infer"):
        inference = _infer(settings, model, folder, plan=plan, progress=progress)
    grid = _samples_grid(tree, folder / "samples.png", seed=plan.seed)
    report = DemoReport(
        root=tree.root.resolve(),
        transport=transport,
        annotations_sent=sent,
        annotations_in_data=_count(tree.data),
        samples=samples,
        split_sources={name: counts.sources for name, counts in trained.counts.items()},
        test_map50=_map(trained, "test", "map50"),
        test_map50_95=_map(trained, "test", "map50_95"),
        valid_map50=_map(trained, "valid", "map50"),
        video_recall=inference["recall"],
        video_precision=inference["precision"],
        video_detections=inference["summary"].detections,
        frames_inferred=inference["summary"].frames_inferred,
        engine=inference["summary"].engine,
        model_pt=trained.model_pt,
        model_onnx=trained.model_onnx,
        store_size=len(model),
        annotated_video=inference["out"] / "annotated.mp4",
        detections=inference["out"] / "detections.jsonl",
        plots=[p for p in trained.plots if p.name in _KEY_PLOTS and p.parent == trained.run_dir],
        samples_grid=grid,
        seconds=seconds,
    )
    atomic_write_text(folder / "report.json", report.to_json())
    atomic_write_text(folder / "report.txt", report.text() + "\n")
    return report


@contextlib.contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    logger.info("demo: %s", step)
    started = time.perf_counter()
    yield
    seconds[step] = round(time.perf_counter() - started, 1)


def _generate(folder: Path, plan: DemoPlan) -> AnnotationDir:
    from azaion_training.demo.world import write_annotations

    target = AnnotationDir(folder)
    target.create()
    write_annotations(
        target,
        plan.annotations,
        seed=plan.seed,
        width=plan.image_size,
        height=plan.image_size,
        prefix="scene",
        objects=(2, 6),
    )
    return target


def demo_messages(incoming: AnnotationDir, *, operator_share: int) -> list[bytes]:
    """The platform's messages for a folder of annotations, as raw stream entries.

    Every ``operator_share``-th annotation is Created by an Operator (so it lands in
    ``data-seed/``) and the others by a Validator; a last bulk Validated message names the
    Operator's annotations, which moves them to ``data/``.
    """
    from azaion_training.queue import (
        AnnotationStatus,
        BulkAnnotations,
        Role,
        annotations_from_folder,
        encode_message,
    )

    by_validator = annotations_from_folder(incoming.path, role=Role.VALIDATOR)
    raws: list[bytes] = []
    operators: list[str] = []
    for index, message in enumerate(by_validator):
        if operator_share and index % operator_share == operator_share - 1:
            message = replace(message, role=Role.OPERATOR)
            operators.append(message.name)
        raws.append(encode_message(message, compress=index % 2 == 1))
    if operators:
        bulk = BulkAnnotations(status=AnnotationStatus.VALIDATED, names=tuple(operators))
        raws.append(encode_message(bulk))
    return raws


def _deliver(
    settings: QueueSettings,
    tree: DataTree,
    incoming: AnnotationDir,
    *,
    plan: DemoPlan,
    stream: bool | None,
) -> tuple[str, int]:
    """Sends the annotations through the queue consumer; returns (transport, annotations sent)."""
    from azaion_training.queue import AnnotationConsumer

    raws = demo_messages(incoming, operator_share=plan.operator_share)
    use_stream = _stream_reachable(settings) if stream is None else stream
    sent = _count(incoming)
    if not use_stream:
        consumer = AnnotationConsumer(settings, tree)
        for offset, raw in enumerate(raws):
            consumer.handle(raw, offset)
        consumer.checkpoint.commit()
        return "straight into the consumer's handler, without a stream", sent
    stream_settings = settings.model_copy(update={"stream": f"azaion-demo-{uuid.uuid4().hex[:8]}"})
    asyncio.run(_through_stream(stream_settings, tree, raws))
    return f"RabbitMQ stream {stream_settings.stream!r} at {settings.host}:{settings.port}", sent


def _stream_reachable(settings: QueueSettings) -> bool:
    if not settings.user or settings.password is None:
        return False
    try:
        with socket.create_connection((settings.host, settings.port), timeout=2):
            return True
    except OSError:
        return False


async def _through_stream(settings: QueueSettings, tree: DataTree, raws: list[bytes]) -> None:
    """Publishes the entries to a new stream and consumes them until the last one is applied."""
    from azaion_training.queue import AnnotationConsumer, delete_stream, publish

    await publish(raws, settings=settings)
    consumer = AnnotationConsumer(settings, tree)
    task = asyncio.ensure_future(consumer.run())
    deadline = time.monotonic() + _CONSUME_TIMEOUT_S
    last = len(raws) - 1
    try:
        while (consumer.checkpoint.applied or -1) < last:
            if task.done():
                task.result()
                raise QueueError("the consumer stopped before it read the demo's messages")
            if time.monotonic() > deadline:
                raise QueueError(f"the consumer did not read {len(raws)} messages in time")
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await task
    try:
        await delete_stream(settings)
    except QueueError as exc:  # the data is in; a leftover demo stream is only untidy
        logger.warning("%s", exc)


def _augment(settings: Settings, tree: DataTree, *, progress: bool) -> int:
    from azaion_training.augment import augment_tree

    summary = augment_tree(
        tree, settings.augment, once=True, stop=threading.Event(), progress=progress
    )
    if summary is None or summary.failed or summary.corrupted:
        raise TrainingError(f"augmentation did not make every sample: {summary}")
    logger.info("%s", summary.line())
    return _count(tree.data_processed)


def _train(settings: Settings, tree: DataTree, *, progress: bool) -> Any:
    from azaion_training.train.job import train

    result = train(settings, tree, publish=True, progress=progress)
    logger.info("training summary\n%s", result.summary())
    return result


def _fetch_verified(settings: Settings, tree: DataTree, onnx: Path) -> bytes:
    from azaion_training.store.models import fetch_model

    model = fetch_model(settings, tree, MODEL_NAME)
    if model != onnx.read_bytes():
        raise TrainingError(f"the model fetched from the store differs from {onnx}")
    return model


def _infer(
    settings: Settings, model: bytes, folder: Path, *, plan: DemoPlan, progress: bool
) -> dict[str, Any]:
    from azaion_training.demo.world import write_video
    from azaion_training.infer import infer_video, load_engine

    width, height = plan.video_size
    video = folder / "video.mp4"
    truths = write_video(
        video, frames=plan.video_frames, width=width, height=height, seed=plan.seed + 1
    )
    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    out = folder / "inference"
    engine = load_engine(model, kind="onnx")
    try:
        summary = infer_video(
            video,
            engine,
            out,
            settings=settings.infer,
            progress=progress,
            on_result=_collector(found),
        )
    finally:
        engine.close()
    recall, precision = video_scores(found, truths, width=width, height=height)
    return {"summary": summary, "recall": recall, "precision": precision, "out": out}


def _collector(found: list[tuple[int, np.ndarray, np.ndarray]]) -> Callable[[Any], None]:
    def collect(result: Any) -> None:
        found.append(
            (result.frame.index, result.detections.xyxy.copy(), result.detections.class_id.copy())
        )

    return collect


def video_scores(
    found: list[tuple[int, np.ndarray, np.ndarray]],
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


def _samples_grid(tree: DataTree, path: Path, *, seed: int) -> Path:
    from azaion_training.classes import ClassTable
    from azaion_training.visualise.grid import grid_figure
    from azaion_training.visualise.render import save_figure
    from azaion_training.visualise.source import list_images, pick

    items = pick(list_images(tree.data_processed), n=16, seed=seed)
    figure = grid_figure(items, ClassTable.default(), cell_px=200, title="augmented samples")
    return save_figure(figure, path)


def _count(folder: AnnotationDir) -> int:
    return sum(1 for p in folder.labels.glob("*.txt") if not is_temporary(p))


def _map(result: Any, split: str, attribute: str) -> float:
    metrics = result.metrics.get(split)
    return float(getattr(metrics, attribute)) if metrics is not None else float("nan")
